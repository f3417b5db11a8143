from __future__ import annotations

import json

import pytest
from speech_helpers import needs_tts

from haneul.cli.main import main


def test_empty_manifest_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "m.json"
    p.write_text("[]")
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "validate", str(p)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: manifest") and "empty" in err and "\n" not in err


def test_validate_json_and_split(tone_corpus, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "validate", str(tone_corpus), "--json"])
    assert exit_.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["total"] == 6
    with pytest.raises(SystemExit):
        main(["speech", "split", str(tone_corpus), "--dev", "0.2", "--test", "0.2"])
    parts = {
        s: json.loads((tone_corpus.parent / f"manifest.{s}.json").read_text())
        for s in ("train", "dev", "test")
    }
    assert sum(len(v) for v in parts.values()) == 6
    speakers = [{r["speaker_id"] for r in v} for v in parts.values()]
    assert (
        not (speakers[0] & speakers[1])
        and not (speakers[0] & speakers[2])
        and not (speakers[1] & speakers[2])
    )


def test_train_eval_transcribe_round_trip(tone_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["speech", "train", "--train", str(tone_corpus), "--dev", str(tone_corpus), "--preset", "tiny",
              "--features", "logmel", "--max-steps", "2", "--batch-size", "3", "-o", str(run), "--threads", "1"])  # fmt: skip
    assert (run / "best.pt").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["speech", "eval", str(tone_corpus), "-c", str(run / "best.pt"), "--json", "--beam", "4"])
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"cer", "wer", "rtf"} and len(res["rows"]) == 6
    with pytest.raises(SystemExit):
        main(["speech", "transcribe", str(tone_corpus.parent / "wavs" / "u0.wav"), "-c", str(run / "best.pt"),
              "--stream", "--json", "--chunk-ms", "200"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert "text" in out and len(out["partials"]) == 3  # 0.6 s in 200 ms chunks
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "eval", str(tone_corpus), "-c", str(tmp_path / "nope.pt")])
    assert exit_.value.code == 1 and "does not exist" in capsys.readouterr().err


@needs_tts
def test_synth_command(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "speech",
                "synth",
                "--hours",
                "0.002",
                "--seed",
                "1",
                "-o",
                str(tmp_path / "s"),
                "--workers",
                "1",
                "--json",
            ]
        )
    summary = json.loads(capsys.readouterr().out)
    assert summary["utterances"] >= 1 and summary["hours"] >= 0.002
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "synth", "--hours", "0.01", "-o", str(tmp_path / "t"), "--split", "dev"])
    assert exit_.value.code == 1 and "split 'dev'" in capsys.readouterr().err
