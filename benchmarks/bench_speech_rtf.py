"""Real-time factor of the DS2-style recogniser on one CPU core with greedy CTC decoding.

RTF = processing time / audio duration, measured per utterance over held-out synthetic call speech
(features + model + decoding, batch size 1, ``torch.set_num_threads(1)``); the target is
RTF <= 0.1. Baseline in the same run: feature extraction alone (the floor any model adds to).
Also reported: prefix beam search (width 8) with a character 4-gram LM, and the LAS model. Weights
are random unless ``--checkpoint`` is given (the cost of a forward pass does not depend on them).
The CPU is shared, so absolute numbers are noisy; compare the ratios within one run.

    .venv/bin/python benchmarks/bench_speech_rtf.py [--quick] [--checkpoint best.pt]

Writes ``benchmarks/results/speech_rtf.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer utterances and presets (< 1 minute)")
    ap.add_argument(
        "--checkpoint", default=None, help="a trained DS2 best.pt to time instead of random weights"
    )
    ap.add_argument("--features", default="logmel", help="spectrogram (161-dim) or logmel (80-dim)")
    args = ap.parse_args()

    import torch

    from haneul.io import atomic_write_text
    from haneul.speech.corpus import load_audio, read_manifest
    from haneul.speech.features import FeatureConfig, extract
    from haneul.speech.recognizer import Recognizer, build_lm
    from haneul.speech.synth import synthesize
    from haneul.speech.train import build_model
    from haneul.speech.vocab import Vocabulary

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="haneul-bench-rtf-") as tmp:
        res = synthesize(tmp, 0.01 if args.quick else 0.05, seed=5, split="heldout", workers=2)
        m = read_manifest(res.manifest)
        audios = [load_audio(m.audio_path(u)) for u in m]
        texts = [u.text for u in m]
    seconds = sum(len(a) for a in audios) / 16000
    vocab = Vocabulary.build(texts)
    rows = []

    def timed(name: str, fn) -> None:
        fn(audios[0])  # warm-up
        t0 = time.perf_counter()
        for a in audios:
            fn(a)
        rtf = (time.perf_counter() - t0) / seconds
        rows.append({"config": name, "rtf": rtf})
        print(f"{name:44s} RTF {rtf:.4f}", flush=True)

    fcfg = FeatureConfig.from_name(args.features)
    timed(f"features only ({fcfg.kind}, baseline)", lambda a: extract(a, fcfg))
    recs = {}
    if args.checkpoint:
        recs["ds2 checkpoint"] = Recognizer.from_checkpoint(args.checkpoint)
    presets = ["tiny", "small"] if args.quick else ["tiny", "small", "base"]
    for preset in presets:
        torch.manual_seed(0)
        model = build_model("ds2", preset, fcfg.dim, len(vocab)).eval()
        recs[f"ds2 {preset}"] = Recognizer(model, vocab, fcfg)
    for name, rec in recs.items():
        with torch.no_grad():
            timed(f"{name}, greedy", rec.transcribe)
    lm_rec = recs.get("ds2 checkpoint") or recs["ds2 small"]
    lm_rec.lm, lm_rec.beam = build_lm(texts, lm_rec.vocab, 4), 8
    with torch.no_grad():
        timed("ds2 (small or checkpoint), beam 8 + 4-gram LM", lm_rec.transcribe)
    if not args.quick:
        las = build_model("las", "small", fcfg.dim, len(vocab)).eval()
        with torch.no_grad():
            timed(
                "las small, greedy (random weights: runs to max length)",
                Recognizer(las, vocab, fcfg).transcribe,
            )
    base = rows[0]["rtf"]
    for r in rows:
        r["ratio_to_features"] = r["rtf"] / base
    out = ROOT / "benchmarks" / "results" / "speech_rtf.json"
    body = {"quick": args.quick, "threads": 1, "utterances": len(audios), "audio_s": seconds, "rows": rows}
    atomic_write_text(out, json.dumps(body, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
