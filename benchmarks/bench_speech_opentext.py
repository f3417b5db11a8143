"""What the training text of a recogniser covers: the reservation templates against open-vocabulary text.

For the template world (``--template-draws`` reservation sentences) and for open-vocabulary text drawn
by ``haneul speech text`` from the review corpus, KorNLI and KorSTS (``--count`` sentences, a tenth of
them templates, the held-apart test set excluded), reports the character inventory, the share of the
2,350 KS X 1001 syllables covered, and what it means for the held-apart test set
(``benchmarks/data/speech_heldapart.txt``, 200 sentences written for the benchmark): the share of its
characters and sentences a recogniser whose units are the training text's characters could never
write. With every Hangul syllable as a unit (``--units hangul``, the default) that share is 0 by
construction; the last row checks it.

Run: .venv/bin/python benchmarks/bench_speech_opentext.py [--data ../shared/data] [--count 30000]
Writes benchmarks/results/speech_opentext.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
HELDAPART = ROOT / "benchmarks" / "data" / "speech_heldapart.txt"
RESULTS = ROOT / "benchmarks" / "results" / "speech_opentext.json"
SOURCES = ("ko-reviews/reviews.jsonl.gz", "kornlu/xnli.test.ko.tsv.gz", "kornlu/sts-train.tsv.gz")


def heldapart() -> list[str]:
    from haneul.text.spoken import spoken

    lines = [line.strip() for line in HELDAPART.read_text(encoding="utf-8").splitlines()]
    said = [spoken(line) for line in lines if line and not line.startswith("#")]
    if any(s is None for s in said):
        raise SystemExit(f"{HELDAPART} has a sentence with no reading")
    return [s for s in said if s]


def coverage(units: set[str], test: list[str]) -> dict[str, float | int]:
    """How much of ``test`` a recogniser with output ``units`` could write."""
    chars = [c for s in test for c in s if c != " "]
    missing = [c for c in chars if c not in units]
    return {"test_characters": len(chars), "test_characters_out_of_vocabulary": len(missing),
            "oov_rate": round(len(missing) / len(chars), 4),
            "test_sentences_with_oov": sum(any(c not in units for c in s if c != " ") for s in test),
            "distinct_oov": len(set(missing))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the open data folder")
    ap.add_argument("--count", type=int, default=30000, help="open-vocabulary sentences to draw")
    ap.add_argument("--template-draws", type=int, default=100_000, help="reservation sentences for the template world")
    args = ap.parse_args()

    from haneul.io import atomic_write_text
    from haneul.speech.korean import reservation_sentence
    from haneul.speech.opentext import draw_sentences, inventory
    from haneul.speech.vocab import HANGUL

    test = heldapart()
    rng = random.Random(0)
    templates = [reservation_sentence(rng) for _ in range(args.template_draws)]
    t0 = time.perf_counter()
    sources = [args.data / s for s in SOURCES]
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}; pass --data with the open data folder")
    drawn = draw_sentences(sources, args.count, seed=0, templates=0.1, exclude=test)
    draw_s = time.perf_counter() - t0
    worlds = {"templates": templates, "open_text": drawn}
    out: dict[str, object] = {"heldapart": {"file": str(HELDAPART.relative_to(ROOT)), **inventory(test).to_dict()},
                              "open_text_sources": list(SOURCES), "open_text_draw_s": round(draw_s, 1)}
    for name, sentences in worlds.items():
        inv = inventory(sentences)
        out[name] = {**{k: v for k, v in inv.to_dict().items() if k != "outside_ksx1001"},
                     "outside_ksx1001": len(inv.outside_ksx1001),
                     "heldapart_with_these_characters_as_units": coverage({c for s in sentences for c in s}, test)}
    out["heldapart_with_every_hangul_syllable_as_units"] = coverage(set(HANGUL) | {" "}, test)
    out["sample_open_text"] = drawn[:10]
    atomic_write_text(RESULTS, json.dumps(out, ensure_ascii=False, indent=2))
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
