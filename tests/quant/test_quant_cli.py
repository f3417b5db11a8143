from __future__ import annotations

import json
from pathlib import Path

import pytest

from haneul.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(["quant", *args])
    assert exc.value.code in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1])


def fail(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()  # drop what fixtures printed
    with pytest.raises(SystemExit) as exc:
        main(["quant", *args])
    assert exc.value.code == 1
    full = capsys.readouterr().err
    err = full.strip().splitlines()[-1]  # progress bars may come before
    assert err.startswith("error: ") and "Traceback" not in full
    return err


def alphatune_args(model: Path, data: Path, out: Path) -> list[str]:
    """``alphatune`` on an NSMC file with one BCQ round and batches of 2; tests add bits, steps, etc."""
    settings = ("-t", "nsmc", "--rounds", "1", "--batch-size", "2")
    return ["alphatune", "-m", str(model), "-d", str(data), "-o", str(out), *settings]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "held-out.txt"
    path.write_text(
        "\n".join(["the cat sat on the mat.", "하늘은 파랗다.", "a b c d e f g"] * 6), encoding="utf-8"
    )
    return path


def test_quantize_then_eval(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, text_file: Path
) -> None:
    base = tmp_path / "base"
    summary = run(
        capsys,
        "quantize",
        "-m",
        str(tiny_model_dir),
        "-o",
        str(base),
        "--bits",
        "3",
        "-g",
        "32",
        "--rounds",
        "2",
        "--json",
    )
    assert summary["layers"] == 14 and (base / "quant.json").is_file()
    # codes at 3 bits + fp16 scales per 32 weights and bit: 32 bits / (3 + 3·16/32) = 7.1x smaller than fp32
    assert summary["quantised_layer_ratio_vs_fp32"] == pytest.approx(32 / 4.5, rel=1e-6)
    fp = run(
        capsys,
        "eval",
        "-m",
        str(tiny_model_dir),
        "-t",
        "text",
        "-d",
        str(text_file),
        "--block",
        "32",
        "--json",
    )
    q = run(capsys, "eval", "-m", str(base), "-t", "text", "-d", str(text_file), "--block", "32", "--json")
    assert fp["perplexity"] > 1 and q["perplexity"] > 1 and q["perplexity"] != fp["perplexity"]


def test_alphatune_writes_base_once_and_task_file(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, nsmc_file: Path
) -> None:
    out = tmp_path / "run"
    args = [
        *alphatune_args(tiny_model_dir, nsmc_file, out),
        *("--bits", "2", "-g", "32", "--steps", "4", "--eval-rows", "4", "--lr", "0.01", "--json"),
    ]
    first = run(capsys, *args)
    assert first["trainable_params"] > 0 and first["steps"] == 4
    task_file = Path(first["task_file"])
    assert task_file == out / "tasks" / "nsmc.safetensors" and task_file.is_file()
    stamp = (out / "base" / "bcq.safetensors").stat().st_mtime_ns
    second = run(capsys, *args[:-1], "--name", "nsmc-again", "--train-alpha", "all", "--json")
    assert (out / "base" / "bcq.safetensors").stat().st_mtime_ns == stamp  # the base is shared, not rewritten
    assert second["trainable_params"] == 2 * first["trainable_params"]
    mlp = run(capsys, *args[:-1], "--name", "nsmc-mlp", "--alpha-layers", "*.mlp.*", "--json")
    assert 0 < mlp["trainable_params"] < first["trainable_params"]
    assert "matches no quantised layer" in fail(capsys, *args[:-1], "--alpha-layers", "*.nothing")
    tuned = run(
        capsys,
        "eval",
        "-m",
        str(out / "base"),
        "--task-file",
        str(task_file),
        "-t",
        "nsmc",
        "-d",
        str(nsmc_file),
        "--rows",
        "4",
        "--json",
    )
    assert 0.0 <= tuned["accuracy"] <= 1.0


def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, nsmc_file: Path
) -> None:
    assert "outside 1-8" in fail(
        capsys, "quantize", "-m", str(tiny_model_dir), "-o", str(tmp_path / "b"), "--bits", "9"
    )
    err = fail(
        capsys, "quantize", "-m", str(tiny_model_dir), "-o", str(tmp_path / "b"), "--bits", "3", "-g", "48"
    )
    assert "group size 48 does not divide the input dimension 64" in err
    assert "neither" in fail(capsys, "eval", "-m", str(tmp_path / "nothing"), "-d", str(nsmc_file))
    other = tmp_path / "other"
    run(
        capsys,
        "quantize",
        "-m",
        str(tiny_model_dir),
        "-o",
        str(other),
        "--bits",
        "2",
        "--rounds",
        "1",
        "--json",
    )
    out = tmp_path / "run"
    first = run(
        capsys,
        *alphatune_args(tiny_model_dir, nsmc_file, out),
        *("--bits", "3", "-g", "row", "--steps", "2", "--eval-rows", "2", "--json"),
    )
    err = fail(
        capsys,
        "eval",
        "-m",
        str(other),
        "--task-file",
        first["task_file"],
        "-t",
        "nsmc",
        "-d",
        str(nsmc_file),
    )
    assert "was trained on base" in err
    assert "exceeds --bits 2" in fail(
        capsys,
        "alphatune",
        "-m",
        str(tiny_model_dir),
        "-d",
        str(nsmc_file),
        "--bits",
        "2",
        "--train-alpha",
        "3",
    )


def test_help_is_complete() -> None:
    from typer.main import get_command

    from haneul.cli.quant import app

    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{name} --{param.name} has no help"


def test_quantize_prints_a_table_for_people(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    with pytest.raises(SystemExit) as exc:  # --output: the old spelling of --out still works
        main(["quant", "quantize", "-m", str(tiny_model_dir), "--output", str(base), "-q", "2", "--rounds", "1"])
    assert exc.value.code in (0, None)
    out = capsys.readouterr().out
    assert (base / "quant.json").is_file()
    assert "BCQ q=2, group=64" in out and "mean_rel_error" in out and "kept lm_head" in out
    assert not out.lstrip().startswith("{")  # a table, not JSON
