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

    (tone_corpus.parent / "wavs" / "u3.wav").unlink()
    for flags, policy in (([], "counted as errors"), (["--skip-unreadable"], "skipped")):
        with pytest.raises(SystemExit):
            main(["speech", "eval", str(tone_corpus), "-c", str(run / "best.pt"), *flags])
        out, err = capsys.readouterr()
        assert f"1 ({policy})" in out and f"unreadable u3.wav ({policy})" in err
        with pytest.raises(SystemExit):
            main(["speech", "eval", str(tone_corpus), "-c", str(run / "best.pt"), "--json", *flags])
        res = json.loads(capsys.readouterr().out)
        assert res["unreadable"] == 1 and res["skip_unreadable"] == bool(flags)
        assert res["utterances"] == (5 if flags else 6)


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


@needs_tts
def test_synth_own_sentences_command(tmp_path, capsys):
    text = tmp_path / "mine.txt"
    text.write_text("# reservations\n여보세요\n\n예약 취소할게요\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["speech", "synth", "--text", str(text), "--repeat", "2", "--split", "heldout", "-o",
              str(tmp_path / "s"), "--workers", "1", "--json"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["utterances"] == 4
    rows = json.loads((tmp_path / "s" / "manifest.json").read_text(encoding="utf-8"))
    assert [r["text"] for r in rows] == ["여보세요", "예약 취소할게요"] * 2
    text.write_text("여보세요\n# fine so far\n?!\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "synth", "--text", str(text), "-o", str(tmp_path / "t"), "--workers", "1"])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar: one line
    assert exit_.value.code == 1 and last.startswith("error: mine.txt line 3: espeak-ng produced no sound")
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "synth", "-o", str(tmp_path / "u")])
    assert exit_.value.code == 1 and "--hours" in capsys.readouterr().err


def test_text_draws_spoken_sentences_and_reports_their_inventory(tmp_path, capsys):
    source = tmp_path / "reviews.txt"
    source.write_text("".join(f"{i}번째 리뷰입니다. 배우 연기가 좋았어요!\n" for i in range(1, 60)))
    test_set = tmp_path / "test.txt"
    test_set.write_text("# kept apart\n배우 연기가 좋았어요\n")
    out = tmp_path / "open.txt"
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "text", str(source), "-o", str(out), "-n", "30", "--templates", "0.2",
              "--exclude", str(test_set), "--json"])
    assert exit_.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    lines = out.read_text().splitlines()
    assert report["sentences"] == len(lines) and 6 <= len(lines) <= 30
    assert "배우 연기가 좋았어요" not in lines and any(line.endswith("번째 리뷰입니다") for line in lines)
    assert not any(c.isdigit() for line in lines for c in line)  # numbers read out
    assert report["ksx1001_total"] == 2350 and 0 < report["ksx1001_covered"] <= report["distinct_characters"]
    with pytest.raises(SystemExit) as exit_:
        main(["speech", "train", "--model", "ds2", "--train", str(out), "--dev", str(out), "-o", str(tmp_path / "r"),
              "--ctc-weight", "0.3"])
    assert exit_.value.code == 1 and "--ctc-weight is for --model las" in capsys.readouterr().err
