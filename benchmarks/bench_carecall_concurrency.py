"""CareCall's scheduler under load: simultaneous real-time calls, and a two-week campaign of 1,000 people.

(a) **Real time.** One SQLite database, one scheduler worker on the real clock, one campaign whose
calls are due a few seconds ahead:
``--text`` text-channel calls and ``--audio`` audio-channel calls due at the same moment, then a
second wave of ``--late`` text calls due ``--wave-s`` seconds later, while the first wave is still on
the line. Text calls are paced like speech (the simulated callee waits while the agent's lines
would be spoken, ~12 syllables a second, and speaks its answer at the same rate, then the
end-of-turn silence) on the text channel's async driver; audio calls are real-time audio calls
(``SimulatedAudioDialer(realtime=True)``: ``channels.audio.serve`` pacing, one 20 ms frame at a time,
espeak-ng speech both ways, reference recogniser). A call **misses its schedule** when it starts
more than the worker's poll interval (1 s, the time a due call may wait for the worker to look)
after its due time. It runs twice: with the server's worker (``Scheduler.start_worker(interval=1.0)``,
which claims every poll and records each call when it ends) and with the baseline, ``run_due`` in a
loop (claim a batch, place it, record it, only then look again). Reported per wave: misses, start
delays, call durations, the audio calls' turn latencies (p50 / p95) under that load, and the load
average.

(b) **Accelerated.** ``--people`` people × 2 calls a day × ``--days`` days of the covid scenario through
the same scheduler on SQLite with a ``SimClock`` (``run_until_idle``: the clock jumps to the next due
call), simulated callees over the text channel with the oracle understander (retries on no answer,
as configured by default). Reported: wall time, calls placed, and the checks that matter for a
durable scheduler: every planned call placed exactly once (one claim, one outcome), none left
behind, and none started after its due time (on the simulated clock).

    .venv/bin/python benchmarks/bench_carecall_concurrency.py            # ~5 minutes, (a) is real time
    .venv/bin/python benchmarks/bench_carecall_concurrency.py --quick    # 20 + 2 calls, 100 people × 3 days

Writes benchmarks/results/carecall_concurrency.json atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from haneul.carecall.campaigns import CampaignSpec, RetryPolicy, Schedule
from haneul.carecall.db import MIGRATIONS, attempts
from haneul.carecall.people import PersonIn, add_people
from haneul.carecall.scheduler import (
    CallContext,
    Scheduler,
    SimClock,
    SimulatedAudioDialer,
    SimulatedDialer,
)
from haneul.carecall.simulate import Persona, SimulatedCallee, population
from haneul.io import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "carecall_concurrency.json"
WORKERS = {"stream": "Scheduler.start_worker: claims every poll, records each call when it ends",
           "batch": "baseline: run_due in a loop (claim a batch, place it, record it, then claim again)"}
POLL_S = 1.0  # the worker's poll interval: the allowance before a call counts as started late
SYLLABLE_S = 0.08  # ~12 syllables a second, espeak-ng's Korean at speed 160
REPLY_GAP_S = 0.3  # the caller waits this long after the agent falls silent (SimulatedCaller's default)
END_OF_TURN_S = 0.5  # the silence that ends a caller turn (AudioConfig.speech_end_ms)


def migrated_engine(folder: Path) -> Any:
    from haneul.dialog.stores import DIALOG_MIGRATIONS
    from haneul.platform.db import make_engine, migrate, version_table

    engine = make_engine(f"sqlite:///{folder / 'carecall.db'}")
    migrate(engine)
    migrate(engine, MIGRATIONS, version_table=version_table("carecall"))
    migrate(engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
    return engine


def pct(values: list[float], q: float, scale: float = 1.0) -> float | None:
    return round(float(np.percentile(values, q)) * scale, 3) if values else None


def spread(values: list[float]) -> dict[str, float | None]:
    return {"n": len(values), "min": round(min(values), 3) if values else None, "p50": pct(values, 50),
            "p95": pct(values, 95), "max": round(max(values), 3) if values else None}


class PacedText(SimulatedDialer):
    """The text channel at the pace of speech: the callee answers when the agent's lines would have been
    said, and takes as long to answer as saying it would."""

    def callee(self, person: Any, context: CallContext) -> SimulatedCallee:
        callee = super().callee(person, context)
        reply = callee.reply

        async def paced(utterance: str, day: int = 0, slot_hint: str | None = None) -> str | None:
            await asyncio.sleep(len(utterance.replace(" ", "")) * SYLLABLE_S + REPLY_GAP_S)
            text = reply(utterance, day, slot_hint)
            if text:
                await asyncio.sleep(len(text.replace(" ", "")) * SYLLABLE_S + END_OF_TURN_S)
            return text

        callee.reply = paced  # type: ignore[method-assign,assignment]
        return callee


class ByPhone:
    """Audio for the phones in ``audio_phones``, text for everyone else."""

    def __init__(self, audio_phones: set[str], audio: Any, text: Any) -> None:
        self.audio_phones, self.audio, self.text = audio_phones, audio, text

    def place(self, person: Any, scenario: Any, context: CallContext) -> Any:
        return (self.audio if person.phone in self.audio_phones else self.text).place(person, scenario, context)


def add_campaign(scheduler: Scheduler, engine: Any, phones: dict[str, Persona], *, days: int, times: tuple[str, ...],
                 start: dt.date, quiet: bool, retries: int) -> tuple[int, list[Any]]:
    with engine.begin() as conn:
        stored = add_people(conn, [PersonIn(name=p.name, phone=phone, consent=True) for phone, p in phones.items()],
                            team_id=None)
    spec = CampaignSpec(name="load", scenario="covid", retry=RetryPolicy(max_retries=retries),
                        schedule=Schedule(start_date=start.isoformat(), times=times, days=days),
                        **({} if quiet else {"quiet": None}))
    cid = scheduler.create_campaign(spec, [p.id for p in stored], team_id=None)["id"]
    scheduler.start(cid)
    return cid, stored


# ------------------------------------------------------------------------------------------------
# (a) real time


def realtime(n_text: int, n_audio: int, n_late: int, wave_s: float, lead_s: float, max_call_s: float,
             worker: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="carecall-rt-"))
    engine = migrated_engine(folder)
    crowd = [p for p in population(4 * (n_text + n_audio + n_late), seed=3) if p.p_no_answer == 0.0]
    crowd = crowd[: n_text + n_audio + n_late]
    if len(crowd) < n_text + n_audio + n_late:
        raise SystemExit("not enough personas that pick up; raise the population size")
    phones = {f"+82106{i:07d}": p for i, p in enumerate(crowd)}
    numbers = list(phones)
    audio_phones = set(numbers[:n_audio])
    late_phones = set(numbers[n_audio + n_text:])
    audio = SimulatedAudioDialer(phones, seed=3, realtime=True, max_call_s=max_call_s)
    dialer = ByPhone(audio_phones, audio, PacedText(phones, seed=3))
    scheduler = Scheduler(engine, dialer)  # the real clock
    cid, stored = add_campaign(scheduler, engine, phones, days=1, times=("09:00",), start=dt.date.today(),
                               quiet=False, retries=0)
    by_id = {p.id: p.phone for p in stored}
    t0 = time.time() + lead_s
    with engine.begin() as conn:  # the schedule's slot, moved to a few seconds from now
        for person in stored:
            due = t0 + (wave_s if person.phone in late_phones else 0.0)
            conn.execute(update(attempts).where(attempts.c.campaign_id == cid, attempts.c.person_id == person.id)
                         .values(due_at=due))
    load0 = os.getloadavg()
    wall = time.perf_counter()
    stop = threading.Event()
    if worker == "stream":
        scheduler.start_worker(interval=POLL_S)
    else:  # the baseline: claim a batch, place it, record it, and only then look for due calls again
        def batches() -> None:
            while not stop.is_set():
                if not scheduler.run_due():
                    stop.wait(POLL_S)

        thread = threading.Thread(target=batches, daemon=True)
        thread.start()
    total = n_text + n_audio + n_late
    deadline = time.time() + lead_s + wave_s + 3 * max_call_s
    while time.time() < deadline:
        time.sleep(1.0)
        with engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(attempts).where(
                attempts.c.campaign_id == cid, attempts.c.state == "done")).scalar_one()
        if done == total:
            break
    wall = time.perf_counter() - wall
    load1 = os.getloadavg()
    scheduler.stop_worker()
    stop.set()
    calls = scheduler.calls(campaign_id=cid, with_record=True)
    waves: dict[str, dict[str, Any]] = {}
    for name, members in (("text", lambda ph: ph not in audio_phones and ph not in late_phones),
                          ("audio", lambda ph: ph in audio_phones), ("text_late_wave", lambda ph: ph in late_phones)):
        mine = [c for c in calls if members(by_id[c["person_id"]])]
        placed = [c for c in mine if c["started_at"] is not None]
        delays = [c["started_at"] - c["due_at"] for c in placed]
        durations = [c["ended_at"] - c["started_at"] for c in placed]
        latencies = [x for c in placed for x in (c["record"] or {}).get("latencies", [])]
        waves[name] = {
            "calls": len(mine), "placed": len(placed),
            "missed_schedule": sum(d > POLL_S for d in delays) + len(mine) - len(placed),
            "start_delay_s": spread(delays), "duration_s": spread(durations),
            "outcomes": dict(Counter(c["outcome"] for c in mine)),
            "channels": dict(Counter((c["record"] or {}).get("channel") for c in mine)),
        }
        if latencies:
            waves[name]["turn_latency_ms"] = {"turns": len(latencies), "p50": pct(latencies, 50, 1000),
                                              "p95": pct(latencies, 95, 1000), "max": round(max(latencies) * 1000, 1)}
    shutil.rmtree(folder, ignore_errors=True)
    return {"worker": WORKERS[worker], "poll_interval_s": POLL_S, "missed_schedule_means": f"started more than {POLL_S:g} s after due",
            "text_calls": n_text, "audio_calls": n_audio, "late_wave_calls": n_late, "late_wave_after_s": wave_s,
            "wall_seconds": round(wall, 1), "loadavg_before": [round(x, 2) for x in load0],
            "loadavg_after": [round(x, 2) for x in load1], "waves": waves}


# ------------------------------------------------------------------------------------------------
# (b) accelerated


def accelerated(people: int, days: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="carecall-sim-"))
    engine = migrated_engine(folder)
    start = dt.date(2030, 5, 6)
    zone = Schedule(start_date=start.isoformat()).zone
    clock = SimClock(dt.datetime.combine(start, dt.time(0, 0), tzinfo=zone).timestamp())
    crowd = population(people, seed=9)
    phones = {f"+82107{i:07d}": p for i, p in enumerate(crowd)}
    scheduler = Scheduler(engine, SimulatedDialer(phones, seed=9, clock=clock), now=clock)
    cid, _ = add_campaign(scheduler, engine, phones, days=days, times=("09:00", "18:00"), start=start, quiet=True,
                          retries=2)
    with engine.connect() as conn:
        planned = conn.execute(select(func.count()).select_from(attempts).where(attempts.c.campaign_id == cid)
                               ).scalar_one()
    wall = time.perf_counter()
    placed = scheduler.run_until_idle(clock)
    wall = time.perf_counter() - wall
    with engine.connect() as conn:
        rows = conn.execute(select(attempts.c.key, attempts.c.person_id, attempts.c.slot, attempts.c.try_number,
                                   attempts.c.state, attempts.c.claims, attempts.c.due_at, attempts.c.started_at,
                                   attempts.c.outcome).where(attempts.c.campaign_id == cid)).all()
    first = [r for r in rows if r.try_number == 0]
    slots = Counter((r.person_id, r.slot, r.try_number) for r in rows)
    late = [r.started_at - r.due_at for r in rows if r.started_at is not None and r.started_at - r.due_at > POLL_S]
    status = scheduler.get_campaign(cid)["status"]
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "people": people, "days": days, "calls_a_day": 2, "planned_calls": planned, "retries": len(rows) - planned,
        "calls_placed": placed, "wall_seconds": round(wall, 1),
        "calls_per_second": round(placed / wall, 1) if wall else None,
        "simulated_days_per_wall_minute": round(days / wall * 60, 1) if wall else None,
        "placed_twice": sum(n > 1 for n in slots.values()) + sum(r.claims > 1 for r in rows),
        "missed": sum(r.state != "done" for r in rows) + (len(first) != people * days * 2),
        "started_late": len(late), "campaign_status": status,
        "outcomes": dict(Counter(r.outcome for r in rows)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", type=int, default=50, help="simultaneous text calls")
    ap.add_argument("--audio", type=int, default=4, help="simultaneous real-time audio calls")
    ap.add_argument("--late", type=int, default=10, help="text calls due --wave-s seconds after the first wave")
    ap.add_argument("--wave-s", type=float, default=20.0)
    ap.add_argument("--max-call-s", type=float, default=120.0, help="a real-time call is cut after this long")
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--skip-realtime", action="store_true")
    ap.add_argument("--quick", action="store_true", help="20 text + 2 audio + 5 late calls; 100 people × 3 days")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.text, args.audio, args.late, args.wave_s, args.people, args.days = 20, 2, 5, 10.0, 100, 3
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        sys.exit("espeak-ng and sox are needed: bash scripts/sysdeps.sh")
    result: dict[str, Any] = {
        "benchmark": "carecall_concurrency",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "command": "python benchmarks/bench_carecall_concurrency.py" + (" --quick" if args.quick else ""),
        "database": "SQLite (WAL) in a temporary folder",
    }
    for worker in () if args.skip_realtime else ("batch", "stream"):
        print(f"(a) real time, {worker} worker: {args.text} text + {args.audio} audio calls, then {args.late} more ...",
              flush=True)
        result[f"realtime_{worker}"] = realtime(args.text, args.audio, args.late, args.wave_s, 3.0, args.max_call_s,
                                                worker)
        print(json.dumps(result[f"realtime_{worker}"], ensure_ascii=False), flush=True)
    print(f"(b) accelerated: {args.people} people × 2 calls × {args.days} days ...", flush=True)
    result["accelerated"] = accelerated(args.people, args.days)
    print(json.dumps(result["accelerated"], ensure_ascii=False), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
