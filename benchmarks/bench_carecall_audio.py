"""Turn latency of the CareCall audio channel, and four simultaneous audio calls on this CPU.

Simulated callers (``SimulatedCallee`` personas) answer the covid check-in scenario through the audio
channel: the agent's lines are rendered by espeak-ng + the sox phone band at 8 kHz with the line cache
off (every prompt is synthesised afresh, as a changing prompt would be), the caller's answers are
rendered the same way and streamed back in 20 ms frames, and the channel's energy VAD, barge-in and
silence timeout run as on a line. The recogniser is a reference one (it returns what the simulated
caller said) unless ``--checkpoint`` names a trained ``haneul speech`` model, so by default the
figures measure the channel (end-pointing + understanding + synthesis), not ASR.

Turn latency is the time from the caller's last voiced frame to the agent's first reply frame. It is
the end-of-turn silence (``speech_end_ms``, the floor, reported as the baseline) plus recognition,
the agent's turn and synthesis.

1. ``sequential``: calls one after another on a virtual clock that advances one frame per tick plus
   the wall time spent recognising and synthesising, until at least ``--turns`` caller turns.
2. ``realtime``: the same callers paced in real time by the asyncio driver (recognition and synthesis
   in worker threads), first one call alone (the baseline), then ``--concurrent`` calls at once; it
   reports latencies, ticks that started more than a frame late, and CPU seconds per call-second
   (this process plus its espeak-ng / sox children; the simulated callers' synthesis is included,
   so the agent's own share is lower).

    .venv/bin/python benchmarks/bench_carecall_audio.py              # ~3 minutes, most of it real time
    .venv/bin/python benchmarks/bench_carecall_audio.py --quick      # fewer turns, shorter real-time part

Writes benchmarks/results/carecall_audio.json atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from haneul.carecall.agent import CallAgent
from haneul.carecall.channels.audio import (
    AudioCall,
    AudioConfig,
    PhoneVoice,
    ReferenceRecognizer,
    SimulatedCaller,
    VirtualClock,
    run_simulated,
    serve,
)
from haneul.carecall.simulate import SimulatedCallee, population
from haneul.io import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "carecall_audio.json"


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def summary(latencies: list[float]) -> dict:
    return {"turns": len(latencies), "p50_ms": pct(latencies, 50), "p90_ms": pct(latencies, 90),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (espeak-ng and sox run as subprocesses)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def make_call(persona, index: int, cfg: AudioConfig, clock, recognizer_factory):
    """One persona's call: the agent side (an AudioCall) and the caller side (a SimulatedCaller)."""
    callee = SimulatedCallee(persona, seed=0, call=index)
    callee.picks_up(0)  # the text channel asks first; keep the same answers as a text campaign
    agent_voice = PhoneVoice(cfg, cache_size=0)
    caller_voice = PhoneVoice(cfg)
    reference = ReferenceRecognizer()
    recognizer = recognizer_factory() or reference
    agent = CallAgent("covid", callee.oracle, {"name": persona.name}, clock=clock)
    call = AudioCall(agent, recognizer, cfg, voice=agent_voice, clock=clock)
    caller = SimulatedCaller(callee, caller_voice, recognizer=reference, config=cfg)
    return call, caller


def sequential(people, cfg: AudioConfig, turns: int, recognizer_factory) -> dict:
    latencies: list[float] = []
    tts: list[float] = []
    asr: list[float] = []
    outcomes: dict[str, int] = {}
    calls = barge = timeouts = 0
    call_s = wall = 0.0
    while len(latencies) < turns:
        persona = people[calls % len(people)]
        clock = VirtualClock()
        call, caller = make_call(persona, calls // len(people), cfg, clock, recognizer_factory)
        t0 = time.perf_counter()
        record = run_simulated(call, caller, clock)
        wall += time.perf_counter() - t0
        call_s += clock()
        latencies += call.stats.latencies
        tts += call.stats.tts_s
        asr += call.stats.asr_s
        barge += call.stats.barge_ins
        timeouts += call.stats.silence_timeouts
        outcomes[record.outcome or "?"] = outcomes.get(record.outcome or "?", 0) + 1
        calls += 1
    return {
        "calls": calls, "outcomes": outcomes, "turn_latency": summary(latencies),
        "tts_ms_per_reply": {"p50": pct(tts, 50), "p90": pct(tts, 90)},
        "asr_ms_per_turn": {"p50": pct(asr, 50), "p90": pct(asr, 90)},
        "barge_ins": barge, "silence_timeouts": timeouts,
        "call_seconds": round(call_s, 1), "wall_seconds": round(wall, 2),
        "faster_than_real_time": round(call_s / wall, 1),
    }


async def realtime(people, cfg: AudioConfig, n: int, max_s: float, recognizer_factory) -> dict:
    pairs = [make_call(p, 0, cfg, time.monotonic, recognizer_factory) for p in people[:n]]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    records = await asyncio.gather(*(serve(call, caller, max_s=max_s) for call, caller in pairs))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    latencies = [x for call, _ in pairs for x in call.stats.latencies]
    ticks = sum(call.stats.frames_out for call, _ in pairs)
    late = sum(call.stats.late_ticks for call, _ in pairs)
    call_s = ticks * cfg.frame_s
    return {
        "calls": n, "outcomes": [r.outcome for r in records], "turn_latency": summary(latencies),
        "ticks": ticks, "late_ticks": late, "late_tick_share": round(late / ticks, 4) if ticks else None,
        "wall_seconds": round(wall, 1), "call_seconds": round(call_s, 1),
        "cpu_seconds": round(cpu, 2), "cpu_share_of_one_core_per_call": round(cpu / call_s, 4) if call_s else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--concurrent", type=int, default=4)
    ap.add_argument("--max-call-s", type=float, default=90.0, help="real-time calls are cut after this long")
    ap.add_argument("--checkpoint", help="a trained haneul speech checkpoint to use as the recogniser")
    ap.add_argument("--quick", action="store_true", help="10 turns, 2 concurrent calls of at most 20 s")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.turns, args.concurrent, args.max_call_s = 10, 2, 20.0
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        sys.exit("espeak-ng and sox are needed: bash scripts/sysdeps.sh")

    def recognizer_factory():
        if not args.checkpoint:
            return None
        from haneul.speech.recognizer import Recognizer

        return Recognizer.from_checkpoint(args.checkpoint)

    cfg = AudioConfig()
    # personas that pick up and rarely cut the call short, so every call has several turns
    people = [p for p in population(40, seed=7) if p.p_no_answer < 0.5][:12]
    result = {
        "benchmark": "carecall_audio",
        "recognizer": f"checkpoint {args.checkpoint}" if args.checkpoint else
        "reference (returns the simulated caller's text; no ASR cost)",
        "tts": "espeak-ng ko + sox phone band, 8 kHz, no line cache",
        "config": {"frame_ms": cfg.frame_ms, "speech_end_ms": cfg.speech_end_ms,
                   "speech_start_ms": cfg.speech_start_ms, "silence_timeout_s": cfg.silence_timeout_s,
                   "vad_threshold_db": cfg.vad_threshold_db},
        "baseline_latency_floor_ms": cfg.speech_end_ms,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "command": "python benchmarks/bench_carecall_audio.py" + (" --quick" if args.quick else ""),
    }
    print(f"sequential: {args.turns} turns ...", flush=True)
    result["sequential"] = sequential(people, cfg, args.turns, recognizer_factory)
    print(json.dumps(result["sequential"], ensure_ascii=False), flush=True)
    print("realtime: 1 call (baseline) ...", flush=True)
    result["realtime_1"] = asyncio.run(realtime(people, cfg, 1, args.max_call_s, recognizer_factory))
    print(json.dumps(result["realtime_1"], ensure_ascii=False), flush=True)
    print(f"realtime: {args.concurrent} calls at once ...", flush=True)
    result[f"realtime_{args.concurrent}"] = asyncio.run(
        realtime(people, cfg, args.concurrent, args.max_call_s, recognizer_factory))
    print(json.dumps(result[f"realtime_{args.concurrent}"], ensure_ascii=False), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
