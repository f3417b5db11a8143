"""A BCQ quantised base decoded end to end: haneul's generator, ``haneul lm generate`` and the
OpenAI-compatible server, with and without an AlphaTuning task file, against a dense reference
whose projections are the BCQ layers' dequantised weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_lm_serve import _Server
from torch import nn

from haneul.cli.main import run
from haneul.errors import InvalidInput, NotFound
from haneul.lm.generate import Generator
from haneul.quant.alphatuning import load_task_alphas, save_task_alphas
from haneul.quant.model import bcq_layers, load_quantized, quantize_model, save_quantized
from haneul.quant.testing import byte_tokenizer, tiny_llama

PROMPTS = ["이 영화는", "배우들의 연기가 정말"]  # different lengths: the batch is left-padded
PROMPT = PROMPTS[0]


def _quantised_llama(seed: int) -> Any:
    model = tiny_llama(seed=seed)
    with torch.no_grad():  # sharper logits than the default init: greedy ids then tell models apart
        for p in model.parameters():
            p.mul_(6)
    quantize_model(model, bits=3, rounds=4)
    return model


def _perturb_alphas(model: Any, seed: int) -> None:
    """Stand in for AlphaTuning: every scale moves by up to +50 %."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in bcq_layers(model).values():
            layer.alpha.mul_(1 + 0.5 * torch.rand(layer.alpha.shape, generator=gen))


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-bit base with its tokenizer, a task file for it, and a task file of another base."""
    root = tmp_path_factory.mktemp("bcq-decode")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _quantised_llama(seed=0)
        save_quantized(model, root / "base", byte_tokenizer())
        _perturb_alphas(model, seed=0)
        save_task_alphas(model, root / "task.safetensors", "all", task="t")
        other = _quantised_llama(seed=1)
        save_quantized(other, root / "other-base")
        _perturb_alphas(other, seed=1)
        save_task_alphas(other, root / "other-task.safetensors", "all", task="t")
    finally:
        torch.set_num_threads(threads)
    return {"base": root / "base", "task": root / "task.safetensors", "other_task": root / "other-task.safetensors",
            "other_base": root / "other-base"}


def _dense_reference(base: Path, alphas: Path | None = None) -> Generator:
    """haneul's dense GPT with every BCQ layer replaced by ``nn.Linear(dequantize())``, built through
    transformers' loader (not :meth:`Generator.from_quantized`)."""
    hf, _ = load_quantized(base)
    if alphas is not None:
        load_task_alphas(hf, alphas)
    for name, layer in bcq_layers(hf).items():
        dense = nn.Linear(layer.in_features, layer.out_features, bias=False)
        dense.weight.data = layer.dequantize().detach().clone()
        parent, _, child = name.rpartition(".")
        setattr(hf.get_submodule(parent), child, dense)
    return Generator.from_hf(hf, byte_tokenizer(), name="dense")


def _greedy(gen: Generator, prompts: list[str] | str, n: int = 12) -> list[list[int]]:
    return [c.token_ids for c in gen.generate(prompts, temperature=0, max_tokens=n, stop_at_eos=False)]


def test_greedy_ids_equal_the_dense_dequantised_reference(bases: dict[str, Path]) -> None:
    quant = Generator.from_quantized(bases["base"])
    assert isinstance(quant.model.model.layers[0].mlp.down_proj, type(bcq_layers(quant.model)["model.layers.0.mlp.down_proj"]))
    assert len(bcq_layers(quant.model)) == 14  # 2 blocks x 7 projections stay packed
    ref = _dense_reference(bases["base"])
    ids = torch.tensor([quant.tokenizer.encode(PROMPTS[1])])
    with torch.inference_mode():
        logits = quant.model(ids)[0]
        assert torch.allclose(logits, ref.model(ids)[0], atol=1e-4, rtol=1e-4)
        hf, _ = load_quantized(bases["base"])  # transformers' own forward over the same BCQ layers
        assert torch.allclose(logits, hf(ids).logits, atol=1e-4, rtol=1e-4)
    plain = _greedy(quant, PROMPTS)
    assert plain == _greedy(ref, PROMPTS)
    assert plain[0] == _greedy(quant, PROMPT)[0]  # a padded batch row decodes as it does alone

    tuned = Generator.from_quantized(bases["base"], alphas=bases["task"])
    tuned_ids = _greedy(tuned, PROMPTS)
    assert tuned_ids != plain  # the task's scales change what the base says
    assert tuned_ids == _greedy(_dense_reference(bases["base"], bases["task"]), PROMPTS)


def test_kv_cache_decoding_equals_the_full_forward(bases: dict[str, Path]) -> None:
    from haneul.lm.model import KVCache

    quant = Generator.from_quantized(bases["base"], alphas=bases["task"])
    model = quant.model
    assert not model.fuse_projections()  # packed layers take the per-module path
    prompt = quant.tokenizer.encode(PROMPT)
    seq = torch.tensor(prompt + _greedy(quant, PROMPT, 6)[0])
    n = len(prompt)
    with torch.inference_mode():
        full = model(seq[None])[0][0, n - 1 : -1]
        cache = KVCache.empty(model.config, 1, len(seq), torch.device("cpu"), torch.float32)
        pos = torch.arange(len(seq))[None]
        rows = [model.forward_cached(seq[None, :n], cache, pos[:, :n], last_only=True)[0, -1]]
        for i in range(n, len(seq) - 1):  # one row per step: the lookup-table path
            rows.append(model.forward_cached(seq[None, i : i + 1], cache, pos[:, i : i + 1])[0, -1])
    stepped = torch.stack(rows)
    assert torch.allclose(stepped, full, atol=1e-4, rtol=1e-4)
    assert stepped.argmax(-1).tolist() == seq[n:].tolist()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_generate_prints_the_quantised_text(bases: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # plain greedy: the command's default repetition penalty (1.1) is turned off
    args = ["lm", "generate", str(bases["base"]), PROMPT, "--temperature", "0", "--max-tokens", "8",
            "--repetition-penalty", "1", "--json"]
    for alphas in (None, bases["task"]):
        expected = Generator.from_quantized(bases["base"], alphas=alphas).generate(PROMPT, temperature=0, max_tokens=8)[0]
        extra = ["--alphas", str(alphas)] if alphas is not None else []
        code, out, err = _run(args + extra, capsys)
        assert code == 0, err
        rows = json.loads(out)
        assert rows == [{"prompt": PROMPT, "text": expected.text, "finish_reason": expected.finish_reason,
                         "prompt_tokens": expected.prompt_tokens, "completion_tokens": len(expected.token_ids)}]


def test_registry_knows_quantised_bases(bases: dict[str, Path], tmp_path: Path) -> None:
    from haneul.lm.registry import list_models, register_model, resolve

    assert resolve(str(bases["base"])).kind == "bcq"
    root = tmp_path / "models"
    register_model("q3", bases["base"], root=root)
    plain = tmp_path / "plain"
    tiny_llama().save_pretrained(plain)
    register_model("plain", plain, root=root)
    kinds = {s.name: s.kind for s in list_models({"x": str(bases["base"])}, root=root)}
    assert (kinds["x"], kinds["q3"], kinds["plain"]) == ("bcq", "bcq", "folder")


@pytest.fixture(scope="module")
def server(bases: dict[str, Path]) -> Any:
    from haneul.lm.serve import create_app

    app = create_app({"q": str(bases["base"]), "qa": str(bases["base"])}, alphas={"qa": str(bases["task"])})
    with _Server(app) as url:
        yield url


@pytest.mark.parametrize(("name", "task"), [("q", False), ("qa", True)])
def test_openai_client_gets_the_quantised_text(server: str, bases: dict[str, Path], name: str, task: bool) -> None:
    from openai import OpenAI

    gen = Generator.from_quantized(bases["base"], alphas=bases["task"] if task else None)
    client = OpenAI(base_url=server, api_key="unused", max_retries=0)
    listed = {m.id: m.model_extra["haneul"] for m in client.models.list().data}
    assert listed[name]["kind"] == "bcq" and ("alphas" in listed[name]) == task

    expected = gen.generate(PROMPT, temperature=0, max_tokens=8)[0].text
    plain = client.completions.create(model=name, prompt=PROMPT, max_tokens=8, temperature=0)
    assert plain.choices[0].text == expected
    stream = client.completions.create(model=name, prompt=PROMPT, max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == expected

    messages = [{"role": "user", "content": "영화 어땠어?"}]
    chat_expected = gen.generate(gen.render_chat(messages), temperature=0, max_tokens=6)[0].text
    chat = client.chat.completions.create(model=name, messages=messages, max_tokens=6, temperature=0)
    assert chat.choices[0].message.content == chat_expected
    chunks = client.chat.completions.create(model=name, messages=messages, max_tokens=6, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == chat_expected


def test_a_task_file_of_another_base_is_refused(bases: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors import safe_open

    with safe_open(str(bases["other_task"]), framework="pt") as fh:
        other = str((fh.metadata() or {})["base_checksum"])
    mine = json.loads((bases["base"] / "quant.json").read_text())["checksum"]
    with pytest.raises(InvalidInput) as bad:
        Generator.from_quantized(bases["base"], alphas=bases["other_task"])
    message = str(bad.value)
    assert other[:12] in message and mine[:12] in message and "\n" not in message
    code, _, err = _run(["lm", "generate", str(bases["base"]), PROMPT, "--alphas", str(bases["other_task"])], capsys)
    assert code == 1 and f"was trained on base {other[:12]}" in err and len(err.strip().splitlines()) == 1


def test_folders_that_are_not_servable_bases(bases: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain"
    tiny_llama().save_pretrained(plain)
    byte_tokenizer().save_pretrained(plain)
    capsys.readouterr()  # transformers' progress bars
    with pytest.raises(NotFound, match="is not a quantised base"):
        Generator.from_quantized(plain)
    code, _, err = _run(["lm", "generate", str(plain), PROMPT, "--alphas", str(bases["task"])], capsys)
    assert code == 1 and "which is not a quantised base" in err and len(err.strip().splitlines()) == 1
    # a base saved without its tokenizer says how to add one
    with pytest.raises(NotFound, match="no tokenizer.json in the quantised base"):
        Generator.from_quantized(bases["other_base"])
    code, _, err = _run(["lm", "serve", f"q={bases['base']}", "--alphas", f"nope={bases['task']}"], capsys)
    assert code == 1 and "--alphas names 'nope', which is not served" in err
    code, _, err = _run(["lm", "generate", str(bases["base"]), PROMPT, "--alphas", str(tmp_path / "missing.safetensors")],
                        capsys)
    assert code == 1 and "missing.safetensors does not exist" in err
