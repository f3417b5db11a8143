from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def carecall_file() -> Path:
    """The hand-made CareCall-memory-format fixture (8 episodes x 4 sessions, written for the tests)."""
    return FIXTURES / "carecall_memory_small.json"


@pytest.fixture(scope="session")
def tiny_classifier():
    """A tiny pair classifier trained in seconds on in-test NLI rows and hand-labelled operation pairs."""
    import torch

    from haneul.dialog.train import TrainConfig, train_operator

    torch.set_num_threads(1)
    from dialog_tiny_data import NLI_ROWS, OP_PAIRS

    model, info = train_operator(NLI_ROWS, OP_PAIRS, TrainConfig(preset="tiny", nli_epochs=2, op_epochs=60,
                                                                  batch_size=16, lr=1e-2, seed=0))
    return model, info
