"""Pause, resume, fork and preemption of real sessions on a live server (NSML's stop-and-go)."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from platform_helpers import LiveServer, start_server, wait_for

from haneul.errors import Conflict, NotFound
from haneul.platform.client import Client

# A seeded toy regression (one weight, SGD) that checkpoints its whole state when asked to pause and
# picks it up on start: paused and resumed, it must give exactly the curve of an uninterrupted run.
TRAIN = textwrap.dedent("""
    import argparse, random, sys, time
    import haneul

    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--sleep", type=float, default=0.05)
    args = p.parse_args()
    state = haneul.load()
    if state is None:
        state = {"step": 0, "w": 0.0, "rng": random.Random(0).getstate()}
    print(f"start at step {state['step']}", flush=True)
    rng = random.Random()
    rng.setstate(state["rng"])
    step, w = state["step"], state["w"]
    while step < args.steps:
        x = rng.uniform(-1, 1)
        y = 3 * x + rng.gauss(0, 0.1)
        w -= args.lr * 2 * (w * x - y) * x
        haneul.report(step=step, loss=(w * x - y) ** 2)
        step += 1
        if haneul.paused():
            haneul.save("state", {"step": step, "w": w, "rng": rng.getstate()})
            print(f"paused at step {step}", flush=True)
            sys.exit(0)
        time.sleep(args.sleep)
    haneul.save("state", {"step": step, "w": w, "rng": rng.getstate()})
    print("finished", flush=True)
""")

# Saves every fifth step and never looks at haneul.paused(): the grace period has to stop it.
STUBBORN = textwrap.dedent("""
    import time
    import haneul

    step = haneul.load() or 0
    print(f"start at step {step}", flush=True)
    while step < 200:
        haneul.report(step=step, x=float(step))
        step += 1
        if step % 5 == 0:
            haneul.save("step", step)
        time.sleep(0.02)
""")


def _server(home: Path, monkeypatch: pytest.MonkeyPatch, cpus: int) -> Iterator[tuple[LiveServer, Client]]:
    monkeypatch.setenv("HANEUL_CAPACITY_CPUS", str(cpus))
    server = start_server(home)
    client = Client(server.url)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.fixture
def four(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, Client]]:
    yield from _server(haneul_home, monkeypatch, 4)


@pytest.fixture
def one(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, Client]]:
    yield from _server(haneul_home, monkeypatch, 1)


def _start(client: Client, folder: Path, script: str, *args: str, **kw: object) -> int:
    (folder / "train.py").write_text(script)
    return client.create_session(command=[sys.executable, "train.py", *args], cwd=str(folder), **kw)["id"]


def _status(client: Client, sid: int, *wanted: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (s := client.get_session(sid))["status"] in wanted and s, timeout=timeout)


def _points(client: Client, sid: int, key: str) -> int:
    return next((k["count"] for k in client.metric_keys(sid) if k["key"] == key), 0)


def _log(client: Client, sid: int) -> list[str]:
    return client.tail_logs(sid, lines=1000)["lines"]


def test_paused_and_resumed_gives_the_uninterrupted_curve(four: tuple[LiveServer, Client], tmp_path: Path) -> None:
    _, client = four
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reference = _start(client, tmp_path / "a", TRAIN)
    sid = _start(client, tmp_path / "b", TRAIN)
    wait_for(lambda: _points(client, sid, "loss") >= 10, timeout=15)
    assert client.pause_session(sid)["status"] == "running"  # pausing: the code saves and exits first
    paused = _status(client, sid, "paused")
    assert paused["exit_code"] == 0 and paused["reason"] == "paused by request"
    steps_before = client.metric_history(sid, "loss")["steps"]
    assert 10 <= len(steps_before) < 40 and f"paused at step {len(steps_before)}" in _log(client, sid)

    resumed = client.resume_session(sid)
    assert resumed["id"] == sid and resumed["status"] in ("queued", "running")
    done = _status(client, sid, "done")
    assert done["runs"] == 2
    ref = client.metric_history(_status(client, reference, "done")["id"], "loss")
    got = client.metric_history(sid, "loss")
    assert got["steps"] == ref["steps"] == list(range(40))
    assert got["values"] == ref["values"]  # exactly: the state came back whole
    assert [k["key"] for k in client.metric_keys(sid)] == ["loss"]
    log = _log(client, sid)
    assert log.index("--- resumed (run 2) ---") < log.index(f"start at step {len(steps_before)}")
    assert log.count("start at step 0") == 1 and log[-1] == "finished"


def test_pause_frees_slots_and_a_queued_session_pauses_at_once(one: tuple[LiveServer, Client], tmp_path: Path) -> None:
    _, client = one
    first = _start(client, tmp_path, TRAIN, "--steps", "400")
    _status(client, first, "running")
    second = _start(client, tmp_path, TRAIN, "--steps", "400")
    third = _start(client, tmp_path, TRAIN, "--steps", "400")
    assert client.get_session(third)["status"] == "queued"
    assert client.pause_session(third)["status"] == "paused"  # never started: paused at once
    with pytest.raises(Conflict, match="is running; only a paused session can be resumed"):
        client.resume_session(first)
    with pytest.raises(Conflict, match="already paused"):
        client.pause_session(third)
    client.pause_session(first)
    _status(client, first, "paused")
    _status(client, second, "running")  # the one cpu went to the next in the queue
    client.stop_session(second)
    _status(client, second, "stopped")
    client.stop_session(third)
    assert client.get_session(third)["status"] == "stopped"


def test_a_session_ignoring_pause_is_stopped_after_the_grace_and_resumes(
        four: tuple[LiveServer, Client], tmp_path: Path) -> None:
    _, client = four
    sid = _start(client, tmp_path, STUBBORN)
    wait_for(lambda: len(client.list_checkpoints(sid)) == 1 and _points(client, sid, "x") >= 5, timeout=15)
    t0 = time.monotonic()
    client.pause_session(sid, grace=1)
    paused = _status(client, sid, "paused")
    assert time.monotonic() - t0 < 8 and "did not exit within 1 s" in paused["reason"]
    held = client.metric_history(sid, "x")["steps"][-1]
    client.resume_session(sid)
    _status(client, sid, "done", timeout=20)
    starts = [line for line in _log(client, sid) if line.startswith("start at step")]
    assert starts[0] == "start at step 0"
    resumed_at = int(starts[1].split()[-1])
    assert 0 < resumed_at <= held + 1  # from its last checkpoint, not from scratch
    assert client.metric_history(sid, "x")["steps"][-1] == 199


def test_fork_starts_from_the_parents_checkpoint(four: tuple[LiveServer, Client], tmp_path: Path) -> None:
    server, client = four
    parent = _start(client, tmp_path, TRAIN, "--steps", "5", "--sleep", "0", project="toy", tags={"model": "w"})
    _status(client, parent, "done")
    res = server.cli("fork", str(parent), "--name", "lower-lr", "--", "--steps", "8", "--lr", "0.01")
    assert res.returncode == 0, res.stderr
    child = int(res.stdout.strip())
    done = _status(client, child, "done")
    assert done["parent_id"] == parent and done["parent_checkpoint"] == "state"
    assert done["name"] == "lower-lr" and done["project"] == "toy" and done["tags"] == {"model": "w"}
    assert done["params"]["lr"] == 0.01 and done["command"][-4:] == ["--steps", "8", "--lr", "0.01"]
    assert "start at step 5" in _log(client, child)  # the parent's state, then its own
    assert client.metric_history(child, "loss")["steps"] == [5, 6, 7]
    assert (Path(done["workdir"]) / "code" / "train.py").read_text() == TRAIN
    child_page = httpx.get(f"{server.url}/sessions/{child}", headers=client._http.headers).text
    assert f'href="/sessions/{parent}"' in child_page and "forked from" in child_page
    parent_page = httpx.get(f"{server.url}/sessions/{parent}", headers=client._http.headers).text
    assert f'href="/sessions/{child}"' in parent_page
    listed = {s["id"]: s["parent_id"] for s in client.list_sessions()["items"]}
    assert listed == {parent: None, child: parent}

    with pytest.raises(NotFound, match="has no checkpoint 'nope'"):
        client.fork_session(parent, checkpoint="nope")
    with pytest.raises(Conflict, match=r"has ended \(done\).*haneul fork"):
        client.pause_session(parent)
    with pytest.raises(Conflict, match=r"cannot be resumed.*haneul fork"):
        client.resume_session(parent)
    for call in (client.pause_session, client.resume_session, client.fork_session):
        with pytest.raises(NotFound):
            call(424242)
    res = server.cli("pause", str(parent))
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0 and "haneul fork" in res.stderr


def test_higher_priority_preempts_and_the_preempted_resumes(one: tuple[LiveServer, Client], tmp_path: Path) -> None:
    _, client = one
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    low = _start(client, tmp_path / "low", TRAIN, "--steps", "60", preemptible=True)
    wait_for(lambda: _points(client, low, "loss") >= 5, timeout=15)
    high = _start(client, tmp_path / "high", TRAIN, "--steps", "10", "--sleep", "0.02", priority=5)
    queued = _status(client, low, "queued")  # it saved and exited; it waits behind the high one
    assert queued["reason"] == f"preempted by session {high}; resumes when capacity frees"
    _status(client, high, "running", "done")
    low_done = _status(client, low, "done", timeout=20)
    high_done = client.get_session(high)
    assert high_done["status"] == "done" and high_done["ended_at"] < low_done["ended_at"]
    assert low_done["runs"] == 2 and low_done["preemptible"]
    log = _log(client, low)
    paused_at = int(next(line for line in log if line.startswith("paused at step")).split()[-1])
    assert f"start at step {paused_at}" in log and paused_at > 0  # the checkpoint was reloaded
    assert client.metric_history(low, "loss")["steps"] == list(range(60))


def test_preemption_spares_equal_priority(one: tuple[LiveServer, Client], tmp_path: Path) -> None:
    _, client = one
    low = _start(client, tmp_path, TRAIN, "--steps", "400", preemptible=True, priority=3)
    _status(client, low, "running")
    same = _start(client, tmp_path, TRAIN, priority=3)
    time.sleep(0.5)  # several supervisor ticks
    assert client.get_session(low)["status"] == "running" and client.get_session(same)["status"] == "queued"
    client.stop_session(low)
    _status(client, same, "running", "done")


def test_lifecycle_routes_answer_bad_input_with_4xx(api) -> None:  # noqa: ANN001 - the TestClient fixture
    sid = api.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "pass"]}).json()["id"]
    wait_for(lambda: api.get(f"/api/v1/sessions/{sid}").json()["status"] == "done")
    for path, body, status in [
        ("pause", {"grace": -1}, 400), ("pause", {"grace": "soon"}, 400), ("pause", None, 409),
        ("pause", {"grace": 5}, 409), ("resume", None, 409), ("fork", {"args": ["a\x00b"]}, 400),
        ("fork", {"env": {"A=B": "x"}}, 400), ("fork", {"priority": 2**63}, 400),
        ("fork", {"checkpoint": "../etc"}, 404),
    ]:
        res = api.post(f"/api/v1/sessions/{sid}/{path}", json=body)
        assert res.status_code == status, (path, body, res.text)
        assert res.json()["error"]["message"]
    assert api.post("/api/v1/sessions/9223372036854775808/pause").status_code == 400
    assert api.post("/api/v1/sessions/42/resume").status_code == 404
    child = api.post(f"/api/v1/sessions/{sid}/fork", json={"args": ["--x", "1"]})
    assert child.status_code == 201
    assert child.json()["parent_id"] == sid and child.json()["parent_checkpoint"] is None


@pytest.mark.browser
def test_session_page_buttons_pause_resume_and_fork(live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    client = Client(live_server.url)
    sid = _start(client, tmp_path, TRAIN, "--steps", "400")
    _status(client, sid, "running")
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    page.click("#pause-btn")
    page.wait_for_function("document.getElementById('status').textContent === 'paused'", timeout=15_000)
    assert client.get_session(sid)["status"] == "paused"
    page.click("#resume-btn")
    page.wait_for_selector("#pause-btn", timeout=15_000)  # reloaded: queued or running again
    assert client.get_session(sid)["runs"] >= 1 and client.get_session(sid)["status"] in ("queued", "running")
    page.once("dialog", lambda dialog: dialog.accept("--lr 0.5"))
    page.click("#fork-btn")
    page.wait_for_url(lambda url: not url.rstrip("/").endswith(f"/sessions/{sid}"), timeout=15_000)
    child = int(page.url.rstrip("/").split("/")[-1].split("?")[0])
    assert client.get_session(child)["params"]["lr"] == 0.5
    assert f"/sessions/{sid}" in page.inner_html("#lineage")
    for s in (sid, child):
        client.stop_session(s)
    client.close()
