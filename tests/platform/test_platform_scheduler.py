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
