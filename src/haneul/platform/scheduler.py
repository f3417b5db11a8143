"""The session scheduler: a priority queue over resource slots (NSML's shared-cluster queue).

Pure logic, no processes and no database: it is told what was submitted, what finished and what
the cluster holds, and answers which sessions to start now. Higher ``priority`` runs first; within
a priority, first come first served. Without backfill the queue is strict: a session that does not
fit blocks everything behind it, so a large job is never starved by a stream of small ones. With
``backfill=True`` smaller sessions further back may start while the head waits.

The clock is injectable so queueing behaviour is testable without sleeping; it is used for wait
times and for which running session started last. Pausing frees a session's slots with
:meth:`Scheduler.release`; preemption (stop-and-go for HPO) asks :meth:`Scheduler.preemption` which
running preemptible sessions of lower priority must make room for the queue's head, and puts them
back at their original place in the queue with :meth:`Scheduler.requeue` once they have exited.
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from haneul.errors import Conflict, InvalidInput, NotFound

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(text: str | int | None) -> int:
    """``"4G"`` → bytes. Accepts K/M/G/T with optional ``i``/``B`` (binary units), or a plain number."""
    if text is None or text == "":
        return 0
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise InvalidInput(f"memory {text!r} is not a size; write it like 512M, 4G or 16GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    gpus: int = 0
    memory: int = 0  # bytes

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.gpus + other.gpus, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.gpus - other.gpus, self.memory - other.memory)

    def fits_in(self, room: Resources, *, memory_counted: bool = True) -> bool:
        eps = 1e-9
        ok = self.cpus <= room.cpus + eps and self.gpus <= room.gpus
        return ok and (not memory_counted or self.memory <= room.memory)


@dataclass(order=True)
class _Entry:
    sort_key: tuple[int, int]  # (-priority, submission order)
    id: int = field(compare=False)
    need: Resources = field(compare=False)
    submitted: float = field(compare=False)
    preemptible: bool = field(default=False, compare=False)
    started: float = field(default=0.0, compare=False)  # clock time of the current run's start

    @property
    def priority(self) -> int:
        return -self.sort_key[0]


@dataclass(frozen=True)
class Preemption:
    """Running sessions to pause (``victims``, in the order chosen) so queued session ``for_id`` fits."""

    for_id: int
    victims: list[int]


class Scheduler:
    def __init__(
        self,
        capacity: Resources,
        *,
        clock: Callable[[], float] = time.monotonic,
        backfill: bool = False,
    ) -> None:
        self.capacity = capacity
        self.clock = clock
        self.backfill = backfill
        self._queue: list[_Entry] = []
        self._running: dict[int, Resources] = {}
        self._places: dict[int, _Entry] = {}  # running sessions' queue entries, kept for requeue
        self._seq = itertools.count()
        self._started_wait: dict[int, float] = {}

    # -- state
    @property
    def memory_counted(self) -> bool:
        return self.capacity.memory > 0

    def used(self) -> Resources:
        total = Resources()
        for need in self._running.values():
            total = total + need
        return total

    def free(self) -> Resources:
        return self.capacity - self.used()

    def queued(self) -> list[int]:
        return [e.id for e in self._queue]

    def running(self) -> list[int]:
        return list(self._running)

    def position(self, session_id: int) -> int:
        """0-based place in the queue."""
        for i, entry in enumerate(self._queue):
            if entry.id == session_id:
                return i
        raise NotFound(f"session {session_id} is not queued")

    def waited(self, session_id: int) -> float:
        """Seconds a session spent (or has spent so far) in the queue."""
        if session_id in self._started_wait:
            return self._started_wait[session_id]
        for entry in self._queue:
            if entry.id == session_id:
                return self.clock() - entry.submitted
        raise NotFound(f"session {session_id} is unknown to the scheduler")

    # -- transitions
    def submit(self, session_id: int, need: Resources, *, priority: int = 0, seq: int | None = None,
               preemptible: bool = False) -> None:
        if session_id in self._running or any(e.id == session_id for e in self._queue):
            raise Conflict(f"session {session_id} is already scheduled")
        self.check(need)
        order = next(self._seq) if seq is None else seq
        bisect.insort(self._queue, _Entry((-priority, order), session_id, need, self.clock(), preemptible))

    def check(self, need: Resources) -> None:
        """Raise when ``need`` could never run here, however long it waits."""
        if need.cpus < 0 or need.gpus < 0 or need.memory < 0:
            raise InvalidInput(f"resources must be non-negative, got {_fmt(need)}")
        if not need.fits_in(self.capacity, memory_counted=self.memory_counted):
            raise InvalidInput(
                f"session asks for {_fmt(need)} but the cluster has only {_fmt(self.capacity)}; "
                "ask for less or raise the capacity (HANEUL_CAPACITY_CPUS / _GPUS / _MEMORY)"
            )

    def adopt(self, session_id: int, need: Resources, *, priority: int = 0, preemptible: bool = False) -> None:
        """Count an already-running session (re-attached after a restart) against capacity."""
        self._running[session_id] = need
        now = self.clock()
        self._places[session_id] = _Entry((-priority, next(self._seq)), session_id, need, now, preemptible, now)

    def cancel(self, session_id: int) -> bool:
        """Drop a queued session; False when it was not queued."""
        for i, entry in enumerate(self._queue):
            if entry.id == session_id:
                del self._queue[i]
                return True
        return False

    def release(self, session_id: int) -> None:
        """A running session ended (or was paused): its resources are free again."""
        self._running.pop(session_id, None)
        self._places.pop(session_id, None)
        self._started_wait.pop(session_id, None)

    def requeue(self, session_id: int) -> None:
        """A running session was preempted and has exited: free its resources and put it back in the
        queue at the place it first had (its priority and submission order), to resume from there."""
        entry = self._places.pop(session_id, None)
        self.release(session_id)
        if entry is None:
            raise NotFound(f"session {session_id} is not running here")
        entry.started = 0.0
        bisect.insort(self._queue, entry)

    def preemption(self, *, leaving: set[int] | frozenset[int] = frozenset()) -> Preemption | None:
        """Whom to pause so that the first queued session that does not fit can start, or None.

        ``leaving`` are running sessions already on their way out (pausing or stopping): their
        resources count as free, so a second call while they exit asks for no one else. Victims are
        running preemptible sessions of strictly lower priority than the waiting one, lowest
        priority first, then the most recently started; none are named when the waiting session
        would not fit even with all of them gone.
        """
        room = self.free()
        for sid in leaving:
            room = room + self._running.get(sid, Resources())
        for entry in self._queue:
            if entry.need.fits_in(room, memory_counted=self.memory_counted):
                room = room - entry.need  # starts as soon as the leaving ones are gone
                continue
            pool = sorted((e for e in self._places.values()
                           if e.preemptible and e.id not in leaving and e.priority < entry.priority),
                          key=lambda e: (e.priority, -e.started, -e.sort_key[1]))
            victims: list[int] = []
            for victim in pool:
                room = room + victim.need
                victims.append(victim.id)
                if entry.need.fits_in(room, memory_counted=self.memory_counted):
                    return Preemption(entry.id, victims)
            return None  # the head waits (strict queue): nothing behind it may preempt for itself
        return None

    def schedule(self) -> list[int]:
        """Sessions to start now, in order; they count as running from here on."""
        started: list[int] = []
        room = self.free()
        keep: list[_Entry] = []
        blocked = False
        now = self.clock()
        for entry in self._queue:
            if not blocked and entry.need.fits_in(room, memory_counted=self.memory_counted):
                room = room - entry.need
                self._running[entry.id] = entry.need
                self._places[entry.id] = entry
                entry.started = now
                self._started_wait[entry.id] = now - entry.submitted
                started.append(entry.id)
            else:
                keep.append(entry)
                if not self.backfill:
                    blocked = True
        self._queue = keep
        return started


def _fmt(r: Resources) -> str:
    mem = f", {r.memory / (1 << 30):.1f} GiB" if r.memory else ""
    return f"{r.cpus:g} cpus, {r.gpus} gpus{mem}"


__all__ = ["Preemption", "Resources", "Scheduler", "parse_memory"]
