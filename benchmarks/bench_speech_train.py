"""Train the DS2-style model (and LAS) on synthetic call speech; CER on a held-out synthetic test set.

The target: CER <= 10 % on a held-out set of sentences and voice variants never seen in
training, after <= 2 hours of training on >= 5 hours of synthetic speech on a 2-core CPU. The full
run is one command::

    .venv/bin/python benchmarks/bench_speech_train.py            # 5 h data, DS2 120 min, LAS 60 min

``--quick`` (under a minute: minutes of data, seconds of training) checks the pipeline end to end.

Open vocabulary: ``--open-text FILE`` (sentences from ``haneul speech text``) trains on those instead of
the reservation templates, and every run is also scored on the held-apart set
(``benchmarks/data/speech_heldapart.txt``: 200 sentences written apart from every source, read out and
spoken by the held-out voices)::

    haneul speech text ../shared/data/ko-reviews/reviews.jsonl.gz ../shared/data/kornlu/xnli.test.ko.tsv.gz \
        ../shared/data/kornlu/sts-train.tsv.gz -n 30000 --exclude benchmarks/data/speech_heldapart.txt -o open.txt
    .venv/bin/python benchmarks/bench_speech_train.py --open-text open.txt --hours 20 --models ds2 --tag open
The baseline in the same run is the other model family (LAS vs DS2) on the same data and budget
schedule, plus the untrained starting point (the first dev evaluation). Timings on a shared CPU are
noisy; CER depends on wall time only through the number of updates that fit in the budget.
Writes ``benchmarks/results/speech_train[_TAG].json`` with the dev-CER curve of each model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny data and budget (< 1 minute)")
    ap.add_argument("--hours", type=float, default=5.0, help="hours of synthetic training speech")
    ap.add_argument("--test-hours", type=float, default=0.25, help="hours of held-out test speech")
    ap.add_argument("--minutes", type=float, default=120.0, help="DS2 training budget in minutes")
    ap.add_argument("--las-minutes", type=float, default=60.0, help="LAS training budget (0 = skip LAS)")
    ap.add_argument("--preset", default="small", help="DS2 preset")
    ap.add_argument("--features", default="logmel", help="spectrogram or logmel")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 avoids oversubscription on a shared CPU)"
    )
    ap.add_argument(
        "--data", default=None, help="synthetic corpus cache (default: HANEUL_HOME/cache/speech-bench)"
    )
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    ap.add_argument("--open-text", default=None,
                    help="train on these sentences (a `haneul speech text` file) instead of the reservation "
                    "templates; --hours of them are rendered, each sentence once per round of voices")
    ap.add_argument("--units", default="hangul", help="output units: hangul (every syllable) or corpus")
    ap.add_argument("--heldapart", default=str(ROOT / "benchmarks" / "data" / "speech_heldapart.txt"),
                    help="a second test set: these sentences (read out) spoken by the held-out voices")
    ap.add_argument("--synth-workers", type=int, default=2, help="processes rendering the synthetic corpus")
    ap.add_argument(
        "--models",
        default="ds2,las",
        help="which models to train, in order (run them in two processes to overlap)",
    )
    args = ap.parse_args()
    if args.quick:
        args.hours, args.test_hours, args.minutes, args.las_minutes = 0.03, 0.01, 0.25, 0.15
        args.tag = args.tag or "quick"
        args.preset = "tiny"

    import torch

    from haneul.settings import get_settings
    from haneul.speech.corpus import read_manifest, split_by_speaker, write_manifest
    from haneul.speech.recognizer import Recognizer
    from haneul.speech.synth import read_sentences, synthesize
    from haneul.speech.train import TrainConfig, train
    from haneul.text.spoken import spoken

    torch.set_num_threads(args.threads)
    cache = Path(args.data) if args.data else get_settings().home / "cache" / "speech-bench"
    # --hours counts training speech: synthesise enough that the training split, after the dev
    # speakers (about 4 %) are held out, still holds at least that much audio.
    data = cache / (f"train{args.hours:g}h" + (f"-{Path(args.open_text).stem}" if args.open_text else ""))
    t0 = time.perf_counter()
    synth_s = {}
    texts = {"train": read_sentences(args.open_text) if args.open_text else None, "heldout": None,
             "heldapart": [t for t in (spoken(s.text) for s in read_sentences(args.heldapart)) if t]}
    if args.quick:
        texts["heldapart"] = texts["heldapart"][:20]
    plan = [("train", "train", args.hours / 0.95, 0), ("heldout", "heldout", args.test_hours, 1),
            ("heldapart", "heldout", None, 2)]
    for folder_name, split, hours, seed in plan:
        folder = data / folder_name
        if not (folder / "manifest.json").is_file():
            t = time.perf_counter()
            synthesize(folder, hours, seed, split=split, noise=0.2, workers=args.synth_workers,
                       texts=texts[folder_name])
            synth_s[folder_name] = time.perf_counter() - t
    full = read_manifest(data / "train" / "manifest.json")
    parts = split_by_speaker(full.items, dev=0.04, test=0.0, seed=0)
    dev_items = parts["dev"][:150]  # bounded so that evaluating dev CER stays cheap
    write_manifest(data / "train" / "train.json", parts["train"])
    write_manifest(data / "train" / "dev.json", dev_items)
    tr, dv = read_manifest(data / "train" / "train.json"), read_manifest(data / "train" / "dev.json")
    test = read_manifest(data / "heldout" / "manifest.json")
    apart = read_manifest(data / "heldapart" / "manifest.json")
    print(
        f"data: {len(tr)} train / {len(dv)} dev utterances, {len(test)} held-out test; synth {synth_s}",
        flush=True,
    )
    if _hours(tr) < args.hours and not args.quick:
        print(f"warning: the training split holds {_hours(tr):.2f} h, under --hours {args.hours:g}", flush=True)

    results = {"mode": "quick" if args.quick else "full", "args": vars(args), "train_utterances": len(tr),
               "train_hours": round(_hours(tr), 3), "test_hours": round(_hours(test), 3),
               "synth_seconds": synth_s, "models": {}}  # fmt: skip
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    if not wanted or set(wanted) - {"ds2", "las"}:
        raise SystemExit(f"--models {args.models!r}: give ds2, las or ds2,las")
    runs = []
    for kind in wanted:
        if kind == "ds2":
            runs.append(("ds2", args.preset, args.minutes))
        elif args.las_minutes > 0:
            runs.append(("las", "tiny" if args.quick else "small", args.las_minutes))
    for kind, preset, minutes in runs:
        steps_per_min = 6 if args.quick else 40
        cfg = TrainConfig(
            model=kind, preset=preset, features=args.features, epochs=10_000, max_minutes=minutes,
            batch_size=args.batch_size, lr=args.lr, warmup_steps=20 if args.quick else 300,
            eval_every=max(5, int(steps_per_min * max(minutes, 1) / 12)), out_dir=str(data / f"run-{kind}-{args.tag}"),
            resume=False, threads=args.threads, seed=0, units=args.units,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = train(cfg, tr, dv, log=lambda m, k=kind: print(f"[{k}] {m}", flush=True))
        torch.set_num_threads(1)  # the real-time factor is quoted on one core
        rec = Recognizer.from_checkpoint(res.best_checkpoint)
        ev, rows = rec.evaluate(test)
        ev_apart, rows_apart = rec.evaluate(apart)
        torch.set_num_threads(args.threads)
        results["models"][kind] = {
            "preset": preset, "steps": res.steps, "train_minutes": res.history[-1]["minutes"],
            "best_dev_cer": res.best_cer, "heldout_cer": ev.cer, "heldout_wer": ev.wer, "rtf_1core": ev.rtf,
            "curve": res.history, "examples": rows[:5], "checkpoint": str(res.best_checkpoint),
            "heldapart_cer": ev_apart.cer, "heldapart_wer": ev_apart.wer, "heldapart_examples": rows_apart[:5],
        }  # fmt: skip
        print(f"[{kind}] held-out CER {ev.cer:.2%} WER {ev.wer:.2%} RTF {ev.rtf:.3f}; "
              f"held-apart CER {ev_apart.cer:.2%}", flush=True)
    results["wall_s"] = time.perf_counter() - t0
    out = ROOT / "benchmarks" / "results" / f"speech_train{'_' + args.tag if args.tag else ''}.json"
    from haneul.io import atomic_write_text

    atomic_write_text(out, json.dumps(results, ensure_ascii=False, indent=1))
    print(f"wrote {out}")


def _hours(manifest) -> float:
    import soundfile as sf

    return sum(sf.info(str(manifest.audio_path(u))).duration for u in manifest) / 3600


if __name__ == "__main__":
    sys.exit(main())
