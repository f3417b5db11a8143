from __future__ import annotations

import pytest

from haneul.errors import Conflict, InvalidInput
from haneul.platform.scheduler import Resources, Scheduler, parse_memory


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_priority_then_fifo() -> None:
    s = Scheduler(Resources(cpus=1), clock=Clock())
    s.submit(1, Resources(cpus=1), priority=0)
    s.submit(2, Resources(cpus=1), priority=5)
    s.submit(3, Resources(cpus=1), priority=0)
    s.submit(4, Resources(cpus=1), priority=5)
    order = []
    for _ in range(4):
        started = s.schedule()
        assert len(started) == 1
        order += started
        s.release(started[0])
    assert order == [2, 4, 1, 3]


def test_capacity_slots_cpu_gpu_memory() -> None:
    s = Scheduler(Resources(cpus=4, gpus=1, memory=parse_memory("8G")))
    s.submit(1, Resources(cpus=2, gpus=1))
    s.submit(2, Resources(cpus=2, memory=parse_memory("6G")))
    s.submit(3, Resources(cpus=0, gpus=1))
    assert s.schedule() == [1, 2]  # 3 waits for the GPU
    assert s.free() == Resources(0, 0, parse_memory("2G"))
    s.release(1)
    assert s.schedule() == [3]


def test_strict_queue_blocks_small_jobs_behind_a_large_one_unless_backfill() -> None:
    for backfill, expected in ((False, []), (True, [3])):
        s = Scheduler(Resources(cpus=4), backfill=backfill)
        s.submit(1, Resources(cpus=3))
        assert s.schedule() == [1]
        s.submit(2, Resources(cpus=4))  # does not fit until 1 ends
        s.submit(3, Resources(cpus=1))
        assert s.schedule() == expected


def test_wait_time_uses_injected_clock() -> None:
    clock = Clock()
    s = Scheduler(Resources(cpus=1), clock=clock)
    s.submit(1, Resources(cpus=1))
    s.submit(2, Resources(cpus=1))
    clock.t = 10
    assert s.schedule() == [1]
    assert s.waited(1) == 10
    clock.t = 25
    assert s.waited(2) == 25
    assert s.position(2) == 0
    s.release(1)
    assert s.schedule() == [2]
    assert s.waited(2) == 25


def test_cancel_adopt_and_errors() -> None:
    s = Scheduler(Resources(cpus=2))
    s.adopt(7, Resources(cpus=2))  # re-attached after a restart
    s.submit(1, Resources(cpus=1))
    assert s.schedule() == []
    assert s.cancel(1) is True and s.cancel(1) is False
    with pytest.raises(InvalidInput, match="cluster has only 2 cpus"):
        s.submit(2, Resources(cpus=3))
    s.submit(3, Resources(cpus=1))
    with pytest.raises(Conflict):
        s.submit(3, Resources(cpus=1))
    with pytest.raises(InvalidInput):
        s.submit(4, Resources(cpus=-1))


@pytest.mark.parametrize("text,expected", [("4G", 4 << 30), ("512M", 512 << 20), ("16GiB", 16 << 30),
                                           ("1.5G", int(1.5 * (1 << 30))), ("100", 100), (None, 0)])
def test_parse_memory(text: str | None, expected: int) -> None:
    assert parse_memory(text) == expected


def test_parse_memory_rejects_garbage() -> None:
    with pytest.raises(InvalidInput, match="512M, 4G"):
        parse_memory("lots")


# -- preemption: whom to pause so the queue's head can start


def _running(s: Scheduler, clock: Clock, *jobs: tuple[int, int, bool]) -> None:
    """Start each ``(id, priority, preemptible)`` needing one cpu, one clock tick apart."""
    for sid, priority, preemptible in jobs:
        s.submit(sid, Resources(cpus=1), priority=priority, preemptible=preemptible)
        assert s.schedule() == [sid]
        clock.t += 1


def test_preemption_picks_lowest_priority_then_most_recently_started() -> None:
    clock = Clock()
    s = Scheduler(Resources(cpus=3), clock=clock)
    _running(s, clock, (1, 0, True), (2, -1, True), (3, 0, True))
    s.submit(9, Resources(cpus=2), priority=5)
    plan = s.preemption()
    # priority -1 first (session 2), then of the priority-0 ones the later started (3, not 1)
    assert plan is not None and plan.for_id == 9 and plan.victims == [2, 3]
    # while they exit their resources count as free: nobody else is asked
    assert s.preemption(leaving={2, 3}) is None


def test_preemption_never_for_equal_priority_nor_of_non_preemptible() -> None:
    clock = Clock()
    s = Scheduler(Resources(cpus=2), clock=clock)
    _running(s, clock, (1, 3, True), (2, 0, False))
    s.submit(9, Resources(cpus=1), priority=3)
    assert s.preemption() is None  # 1 has the same priority, 2 is not preemptible


def test_preemption_not_when_it_would_not_fit_anyway() -> None:
    clock = Clock()
    s = Scheduler(Resources(cpus=2), clock=clock)
    _running(s, clock, (1, 0, True), (2, 9, False))
    s.submit(9, Resources(cpus=2), priority=5)
    assert s.preemption() is None  # even with 1 gone only one cpu is free: pausing it would waste its work


def test_preemption_only_when_needed() -> None:
    clock = Clock()
    s = Scheduler(Resources(cpus=2), clock=clock)
    _running(s, clock, (1, 0, True))
    s.submit(9, Resources(cpus=1), priority=5)
    assert s.preemption() is None  # it fits beside 1
    assert s.schedule() == [9]


def test_requeue_keeps_the_original_place() -> None:
    from haneul.errors import NotFound

    clock = Clock()
    s = Scheduler(Resources(cpus=1), clock=clock)
    s.submit(1, Resources(cpus=1), preemptible=True)
    s.submit(2, Resources(cpus=1))
    assert s.schedule() == [1]
    s.submit(9, Resources(cpus=1), priority=5)
    assert s.preemption() is not None
    s.requeue(1)  # its process has exited
    assert s.queued() == [9, 1, 2]  # ahead of 2, which came after it, behind the higher priority
    assert s.schedule() == [9]
    s.release(9)
    assert s.schedule() == [1]
    with pytest.raises(NotFound):
        s.requeue(42)
