from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from studio_helpers import Live, build_tiny_model, studio_app


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A servable model folder: a word-level tokenizer (one token per whitespace-separated word) and a
    randomly initialised 2-layer GPT with a 64-token context window."""
    return build_tiny_model(tmp_path_factory.mktemp("studio-model") / "tiny-ko")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Live]:
    """The haneul server with the studio plugin on 127.0.0.1 (one per test module), the tiny model
    registered as ``tiny-ko``."""
    import os

    from haneul.platform.testing import POSTGRES_URL_VAR, postgres_database

    home = tmp_path_factory.mktemp("studio-home")
    admin_url = os.environ.get(POSTGRES_URL_VAR)
    if not admin_url:
        with studio_app(home, tiny_model_dir) as server:
            yield server
        return
    with postgres_database(admin_url) as url, studio_app(home, tiny_model_dir, db_url=url) as server:
        yield server
