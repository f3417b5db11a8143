"""Metric delivery from a session to the server: batches cut to the server's limit, 413s halved,
5xx answers and restarts retried, back-pressure through spill files, and undelivered points kept on
disk. Sessions are real subprocesses; the server runs in this process so its ingestion can be
slowed down or made to fail."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from platform_helpers import free_port, wait_for

from haneul.errors import HaneulError, PayloadTooLarge, ServerUnavailable, Unauthorized
from haneul.platform import sdk
from haneul.platform.service import Platform
from haneul.platform.testing import auth_headers
from haneul.settings import Settings

# set before the first report: the background thread sleeps, so flush() ships the whole buffer
HOLD_SHIPPER = "import haneul.platform.sdk as sdk; sdk.FLUSH_INTERVAL_S = 600; sdk.FLUSH_AT_POINTS = 10**12\n"


class FaultyPlatform(Platform):
    """The real platform with knobs on metric ingestion, and a record of every request it answered."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.delay_s = 0.0
        self.fail_first = 0  # answer this many batches with a 500
        self.hidden_limit: int | None = None  # refuse bigger batches with a 413 that names no limit
        self.stored: list[tuple[int, int]] = []  # (points, first step) of each stored batch, in order
        self.refused: list[int] = []  # points of each batch answered with a 413
        self.failed = 0
        self._record = threading.Lock()

    def parse_metric_batch(self, body: bytes) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        try:
            return super().parse_metric_batch(body)
        except PayloadTooLarge:
            with self._record:
                self.refused.append(sum(len(g["values"]) for g in orjson.loads(body)["metrics"].values()))
            raise

    def ingest_metrics(self, sid: int, batch: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
        n = sum(len(g[1]) for g in batch.values())
        with self._record:
            if self.failed < self.fail_first:
                self.failed += 1
                raise HaneulError("injected failure")
            if self.hidden_limit is not None and n > self.hidden_limit:
                self.refused.append(n)
                raise PayloadTooLarge("request body too large")
        time.sleep(self.delay_s)
        stored = super().ingest_metrics(sid, batch)
        with self._record:
            self.stored.append((stored, min(int(g[0].min()) for g in batch.values())))
        return stored


@contextmanager
def serve(home: Path, port: int | None = None, **settings: Any) -> Iterator[FaultyPlatform]:
    """A haneul server on 127.0.0.1 (uvicorn in a thread) over a :class:`FaultyPlatform`."""
    import uvicorn

    from haneul.platform.server import create_app

    cfg = Settings(home=home, capacity_cpus=4, port=port or free_port(), **settings)
    platform = FaultyPlatform(cfg)
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, platform=platform), host="127.0.0.1", port=cfg.port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
    assert server.started, "the test server did not start"
    try:
        yield platform
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def run(platform: FaultyPlatform, tmp_path: Path, code: str, **env: str) -> int:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code))
    res = httpx.post(f"{platform.server_url}/api/v1/sessions", headers=auth_headers(platform.server_url), json={
        "command": [sys.executable, str(script)], "cwd": str(tmp_path), "snapshot": False, "env": env})
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def ended(platform: FaultyPlatform, sid: int, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        s = httpx.get(f"{platform.server_url}/api/v1/sessions/{sid}", headers=auth_headers(platform.server_url)).json()
        return s if s["status"] not in ("queued", "running") else None

    return wait_for(check, timeout=timeout, interval=0.1)


def log_of(platform: FaultyPlatform, sid: int) -> str:
    return (platform.settings.sessions_dir / str(sid) / "output.log").read_text()


def history(url: str, sid: int, key: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/v1/sessions/{sid}/metrics/{key}", headers=auth_headers(url), timeout=120).json()


# -- the pieces, without a server


def test_chunks_cut_each_key_in_order_and_never_exceed_the_limit() -> None:
    groups = {"loss": ([0, 1, 2, 3, 4], [5.0, 4.0, 3.0, 2.0, 1.0], [9.0] * 5), "acc": ([0, 1], [0.1, 0.2], [9.0] * 2)}
    got = sdk._chunks(groups, 3)
    assert got == [
        {"loss": ([0, 1, 2], [5.0, 4.0, 3.0], [9.0] * 3)},
        {"loss": ([3, 4], [2.0, 1.0], [9.0] * 2), "acc": ([0], [0.1], [9.0])},
        {"acc": ([1], [0.2], [9.0])},
    ]
    assert sdk._chunks(groups, 7) == [groups]  # fits: sent as it is


class FakeClient:
    """A server that answers health without limits (an older one) and 413s batches over ``limit``."""

    def __init__(self, limit: int, hint: bool) -> None:
        self.limit, self.hint = limit, hint
        self.sent: list[int] = []
        self.refused: list[int] = []

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    def log_metrics(self, session: str, groups: sdk.Groups) -> int:
        n = sdk._count(groups)
        if n > self.limit:
            self.refused.append(n)
            raise PayloadTooLarge("too many points", **({"max_points": self.limit} if self.hint else {}))
        self.sent.append(n)
        return n


@pytest.mark.parametrize("hint,refused,sent", [
    (True, [10_000], [3_000, 3_000, 3_000, 1_000, 3_000, 2_000]),  # the 413 names the limit: use it
    (False, [10_000, 5_000], [2_500] * 6),  # it does not: halve until the server takes it
])
def test_a_413_shrinks_the_batch_instead_of_dropping_it(hint: bool, refused: list[int], sent: list[int]) -> None:
    client = FakeClient(limit=3_000, hint=hint)
    link = sdk._Link(client, "1")
    queue = link.chunks({"x": (list(range(15_000)), [1.0] * 15_000, [0.0] * 15_000)})
    assert [sdk._count(p) for p in queue] == [10_000, 5_000]  # the default until the server says
    link.ship(queue)
    assert not queue and client.refused == refused and client.sent == sent
    assert sum(client.sent) == 15_000


def test_a_413_for_a_single_point_is_raised_not_retried_for_ever() -> None:
    link = sdk._Link(FakeClient(limit=0, hint=False), "1")
    queue = deque([{"x": ([0], [1.0], [0.0])}])
    with pytest.raises(PayloadTooLarge):
        link.ship(queue)
    assert len(queue) == 1  # still there, for the caller to keep in the undelivered file


@pytest.mark.parametrize("status,cls,transient", [
    (413, PayloadTooLarge, False), (502, ServerUnavailable, True), (401, Unauthorized, False), (500, HaneulError, True),
])
def test_a_proxys_page_still_maps_to_the_right_error(status: int, cls: type[HaneulError], transient: bool) -> None:
    from haneul.platform.client import _error_from

    err = _error_from(httpx.Response(status, text="<html>\n<h1>nginx</h1>\n</html>"))
    assert type(err) is cls and err.message == f"server answered {status}: <html> <h1>nginx</h1> </html>"
    assert sdk._transient(err) is transient  # 413 is split, 401 kept on disk at once, 5xx retried


# -- a real server and real sessions


def test_the_server_tells_its_batch_limit(haneul_home: Path) -> None:
    with serve(haneul_home, max_metric_batch=5_000) as platform:
        health = httpx.get(f"{platform.server_url}/api/v1/health", headers=auth_headers(platform.server_url)).json()
        assert health["limits"] == {"max_metric_batch": 5_000}
        body = orjson.dumps({"metrics": {"x": {"steps": [0] * 5_001, "values": [1.0] * 5_001}}})
        with pytest.raises(PayloadTooLarge) as err:
            platform.parse_metric_batch(body)
        assert err.value.to_dict()["details"] == {"max_points": 5_000}  # what the 413 body carries


def test_a_batch_over_the_limit_goes_in_several_requests(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home, max_metric_batch=5_000) as platform:
        sid = run(platform, tmp_path, HOLD_SHIPPER + textwrap.dedent("""
            import haneul
            for i in range(12_345):
                haneul.report(step=i, loss=1.0 / (i + 1))
            haneul.flush()
            print("flushed", flush=True)
        """))
        s = ended(platform, sid)
        assert s["status"] == "done", log_of(platform, sid)
        assert [n for n, _ in platform.stored] == [5_000, 5_000, 2_345]
        assert platform.refused == []  # the limit came from the server's health answer, not from 413s
        assert history(platform.server_url, sid, "loss")["steps"] == list(range(12_345))


def test_413_halving_against_the_server(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home) as platform:
        platform.hidden_limit = 3_000  # like the byte limit: a 413 that does not say how many points
        sid = run(platform, tmp_path, HOLD_SHIPPER + textwrap.dedent("""
            import haneul
            for i in range(10_000):
                haneul.report(step=i, loss=float(i))
            haneul.flush()
        """))
        s = ended(platform, sid)
        assert s["status"] == "done", log_of(platform, sid)
        assert platform.refused == [10_000, 5_000]
        assert [n for n, _ in platform.stored] == [2_500] * 4
        assert history(platform.server_url, sid, "loss")["total"] == 10_000


def test_5xx_answers_are_retried_until_stored(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home) as platform:
        platform.fail_first = 3
        sid = run(platform, tmp_path, """
            import haneul
            for i in range(1_000):
                haneul.report(step=i, loss=float(i))
            haneul.flush()
        """)
        s = ended(platform, sid)
        log = log_of(platform, sid)
        assert s["status"] == "done", log
        assert platform.failed == 3
        assert history(platform.server_url, sid, "loss")["steps"] == list(range(1_000))
        assert "not delivered" not in log and "Traceback" not in log


def test_points_reported_while_the_server_restarts_are_retried(tmp_path: Path, haneul_home: Path) -> None:
    code = """
        import pathlib, time, haneul
        for i in range(500):
            haneul.report(step=i, loss=float(i))
        haneul.flush()
        pathlib.Path("ready").touch()
        while not pathlib.Path("go").exists():
            time.sleep(0.05)
        for i in range(500, 1_000):
            haneul.report(step=i, loss=float(i))
        haneul.flush()  # the server is down: connection refused until it is back
        print("flushed", flush=True)
    """
    with serve(haneul_home) as first:
        port, sid = first.settings.port, run(first, tmp_path, code)
        wait_for(lambda: (tmp_path / "ready").exists())
    (tmp_path / "go").touch()
    time.sleep(1.0)  # the session meets a closed port for a while
    with serve(haneul_home, port=port) as second:
        s = ended(second, sid)
        log = log_of(second, sid)
        assert s["status"] == "done" and "flushed" in log, log
        assert history(second.server_url, sid, "loss")["steps"] == list(range(1_000))
        assert "not delivered" not in log and "Traceback" not in log


def test_a_full_buffer_spills_to_disk_and_ships_in_order(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home) as platform:
        sid = run(platform, tmp_path, HOLD_SHIPPER + textwrap.dedent("""
            import os, haneul
            from pathlib import Path
            sdk.SPILL_AT_POINTS = 1_000
            for i in range(5_500):
                haneul.report(step=i, loss=float(i))
            spill = Path(os.environ["HANEUL_HOME"], "sessions", os.environ["HANEUL_SESSION"],
                         f"metrics-spill-{os.getpid()}")
            print("spilled", len(list(spill.glob("*.json"))), flush=True)
            haneul.flush()
            print("left", len(list(spill.glob("*.json"))), flush=True)
        """))
        s = ended(platform, sid)
        log = log_of(platform, sid)
        assert s["status"] == "done", log
        assert "spilled 5" in log and "left 0" in log  # five files of 1,000; 500 stayed in memory
        assert platform.stored == [(1_000, 0), (1_000, 1_000), (1_000, 2_000), (1_000, 3_000), (1_000, 4_000),
                                   (500, 5_000)]  # oldest first
        assert not list((platform.settings.sessions_dir / str(sid)).glob("metrics-spill-*"))


def test_undelivered_points_are_kept_on_disk_and_can_be_resent(tmp_path: Path, haneul_home: Path) -> None:
    code = """
        import pathlib, time, haneul
        for i in range(300):
            haneul.report(step=i, loss=float(i))
        haneul.flush()
        pathlib.Path("ready").touch()
        while not pathlib.Path("go").exists():
            time.sleep(0.05)
        for i in range(300, 800):
            haneul.report(step=i, loss=float(i))
        print("exiting", flush=True)
    """
    with serve(haneul_home) as platform:
        port, sid = platform.settings.port, run(platform, tmp_path, code, HANEUL_FLUSH_RETRY_S="1")
        wait_for(lambda: (tmp_path / "ready").exists())
    (tmp_path / "go").touch()  # the server is gone for good; the session ends on its own
    folder = haneul_home / "sessions" / str(sid)
    wait_for(lambda: (folder / "exit_code").exists(), timeout=60)
    assert (folder / "exit_code").read_text() == "0"
    log = (folder / "output.log").read_text()
    (saved,) = folder.glob("metrics-undelivered-*.jsonl")
    notes = [line for line in log.splitlines() if line.startswith("haneul:")]
    assert len(notes) == 1 and "500 metric points were not delivered" in notes[0], log
    assert str(saved) in notes[0] and "resend(" in notes[0] and "Traceback" not in log
    header, *batches = (orjson.loads(line) for line in saved.read_bytes().splitlines())
    assert header["session"] == str(sid) and header["server"] == f"http://127.0.0.1:{port}"
    assert sorted(s for b in batches for s in b["metrics"]["loss"]["steps"]) == list(range(300, 800))

    with serve(haneul_home, port=port) as platform:  # the server is back: send them as the line says
        assert sdk.resend(saved) == 500
        assert history(platform.server_url, sid, "loss")["steps"] == list(range(800))
    assert not saved.exists() and saved.with_name(saved.name + ".sent").exists()


def test_a_refused_batch_is_kept_at_once_without_waiting(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home) as platform:
        sid = run(platform, tmp_path, """
            import os, haneul
            os.environ["HANEUL_TOKEN"] = "not-the-token"
            for i in range(100):
                haneul.report(step=i, loss=float(i))
            haneul.flush()  # a 401 does not heal: no 120 s wait
            print("flushed", flush=True)
        """)
        s = ended(platform, sid, timeout=60)
        log = log_of(platform, sid)
        assert s["status"] == "done" and "flushed" in log, log
        assert "100 metric points were not delivered" in log and "token is not valid" in log
        assert platform.stored == []
        assert len(list((platform.settings.sessions_dir / str(sid)).glob("metrics-undelivered-*.jsonl"))) == 1


@pytest.mark.slow
def test_a_million_reports_against_a_slow_server_are_all_stored(tmp_path: Path, haneul_home: Path) -> None:
    with serve(haneul_home, max_metric_batch=5_000) as platform:
        platform.delay_s = 0.005  # every request waits, so the loop outruns the shipper
        sid = run(platform, tmp_path, """
            import haneul
            for i in range(1_000_000):
                haneul.report(step=i, loss=1.0 / (i + 1))
            haneul.flush()
            print("flushed", flush=True)
        """)
        s = ended(platform, sid, timeout=600)
        log = log_of(platform, sid)
        assert s["status"] == "done" and "flushed" in log, log
        keys = httpx.get(f"{platform.server_url}/api/v1/sessions/{sid}/metrics", headers=auth_headers(platform.server_url)).json()
        assert [(k["key"], k["count"]) for k in keys] == [("loss", 1_000_000)]
        steps = np.asarray(history(platform.server_url, sid, "loss")["steps"])
        assert np.array_equal(steps, np.arange(1_000_000))
        assert max(n for n, _ in platform.stored) <= 5_000 and platform.refused == []
        assert "not delivered" not in log and "Traceback" not in log
        assert not list((platform.settings.sessions_dir / str(sid)).glob("metrics-*"))
