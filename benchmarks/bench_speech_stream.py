"""Streaming transcription of long calls: per-chunk cost over time, the final pass, peak memory.

A live call is fed to ``Recognizer.stream`` in 640 ms chunks; what matters is that the cost of a
chunk does not grow with the audio heard so far, and that the final hypothesis (a full-utterance
pass, with beam search and a character LM if configured) comes out in time and memory linear in the
call's length. The model is DS2 ``small`` with random weights whose outputs are steered to name a
character every fourth output frame (about six syllables a second, like speech), so the decoders
carry prefixes as long as a real transcript's; the cost of a forward pass does not depend on the
weights. Audio: tones tiled to 30 s, 2 and 10 minutes (no espeak-ng needed). Baseline in the same run:
the offline transcription of the same audio. Each configuration runs in its own process so that its
peak memory (max RSS) is its own. One torch thread; times are the process's CPU time, which the
other jobs on a shared machine disturb far less than wall-clock time.

    .venv/bin/python benchmarks/bench_speech_stream.py [--quick]

Writes ``benchmarks/results/speech_stream.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK_MS = 640


def _recognizer(vocab_size: int, beam: int):
    import numpy as np
    import torch

    from haneul.speech.features import FeatureConfig
    from haneul.speech.models import DeepSpeech2, DS2Config
    from haneul.speech.recognizer import Recognizer, build_lm
    from haneul.speech.vocab import Vocabulary

    torch.manual_seed(0)
    chars = [" "] + [chr(0xAC00 + i) for i in range(vocab_size - 5)]
    vocab = Vocabulary(chars)
    model = DeepSpeech2(DS2Config.from_name("small", input_dim=80, vocab_size=len(vocab))).eval()

    def speak(module, args, out):
        """Every fourth output frame says a character (chosen by its position), the others blank."""
        log_probs, lengths, loss = out
        t = torch.arange(log_probs.shape[1])
        symbol = torch.where(t % 4 == 0, 4 + (t * 7919) % (len(vocab) - 4), torch.zeros_like(t))
        log_probs[:, t, symbol] += 12.0
        return log_probs.log_softmax(-1), lengths, loss

    model.register_forward_hook(speak)
    rec = Recognizer(model, vocab, FeatureConfig.from_name("logmel"), beam=beam)
    if beam > 1:
        rng = np.random.default_rng(0)
        rec.lm = build_lm(("".join(rng.choice(chars[1:], 30)) for _ in range(2000)), vocab, order=4)
    return rec


def run_one(seconds: float, vocab_size: int, beam: int) -> dict:
    """Stream ``seconds`` of audio through one recogniser; timings of chunks, final and offline pass."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    t = np.arange(1600) / 16000
    snippet = np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in rng.uniform(200, 3000, 40)])
    audio = np.tile(snippet, int(np.ceil(seconds / 4.0)))[: int(seconds * 16000)].astype(np.float32)
    rec = _recognizer(vocab_size, beam)
    rec.transcribe(audio[:16000])  # warm-up
    sess = rec.stream(chunk_ms=CHUNK_MS)
    step = 16000 * CHUNK_MS // 1000
    chunk_s = []
    for i in range(0, len(audio), step):
        t0 = time.process_time()
        sess.accept(audio[i : i + step])
        chunk_s.append(time.process_time() - t0)
    t0 = time.process_time()
    final = sess.finish()
    finish_s = time.process_time() - t0
    t0 = time.process_time()
    offline = rec.transcribe(audio)
    offline_s = time.process_time() - t0
    tenth = max(1, len(chunk_s) // 10)
    first, last = float(np.median(chunk_s[:tenth])), float(np.median(chunk_s[-tenth:]))
    return {
        "seconds": seconds, "vocab_size": vocab_size, "beam": beam, "lm": beam > 1, "chunks": len(chunk_s),
        "chunk_ms_first_tenth": 1000 * first, "chunk_ms_last_tenth": 1000 * last, "last_over_first": last / first,
        "finish_s": finish_s, "offline_s": offline_s, "final_over_offline": finish_s / offline_s,
        "final_characters": len(final.text), "final_equals_offline": final.text == offline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="30 s of audio only (under a minute in all)")
    ap.add_argument(
        "--vocab-size", type=int, default=11_177, help="output units (11,177: every Hangul syllable)"
    )
    ap.add_argument("--one", nargs=2, type=float, metavar=("SECONDS", "BEAM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # a child process: one configuration, its result as one JSON line
        print(json.dumps(run_one(args.one[0], args.vocab_size, int(args.one[1]))))
        return

    from haneul.io import atomic_write_text

    lengths = [30.0] if args.quick else [30.0, 120.0, 600.0]
    runs = []
    for seconds in lengths:
        for beam in (1, 8):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(seconds),
                str(beam),
                "--vocab-size",
                str(args.vocab_size),
            ]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            runs.append(row)
            print(
                f"{seconds:5.0f} s beam {beam}: chunk {row['chunk_ms_first_tenth']:.1f} -> "
                f"{row['chunk_ms_last_tenth']:.1f} ms, final {row['finish_s']:.2f} s "
                f"(offline {row['offline_s']:.2f} s), peak RSS {row['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    out = ROOT / "benchmarks" / "results" / "speech_stream.json"
    atomic_write_text(out, json.dumps({"chunk_ms": CHUNK_MS, "threads": 1, "runs": runs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
