"""The Ray executor on a real two-node Ray cluster on loopback: the executor conformance suite, placement
by a custom resource, pause / resume and a server restart with a live server running sessions on Ray, and a
session on the worker node that reports, checkpoints to an S3 endpoint (moto), pauses and resumes.

The cluster is a head (``{"head": 1}``) and a second node (``{"accel": 1}``), both ``ray start``
processes on this machine with their own temp folder and a fresh auth token. Ray rewrites 127.0.0.1 to
the machine's outward address, so the nodes take the loopback addresses 127.0.0.2 and 127.0.0.3.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from platform_helpers import BIN, LiveServer, free_port, start_server, wait_for

from haneul.errors import HaneulError, InvalidInput
from haneul.platform.client import Client
from haneul.platform.executors import Executor, get_executor
from haneul.platform.testing import ExecutorConformance, python_spec
from haneul.settings import Settings

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"


@dataclasses.dataclass(frozen=True)
class RayCluster:
    address: str
    head_node: str  # Ray node ids
    accel_node: str


def _session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (what one ``setsid ray start`` left running)."""
    pids = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:  # it ended while we looked
            continue
        if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:  # field 6, after the command name
            pids.append(int(name))
    return pids


def _ray_start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen([str(BIN / "ray"), "start", "--block", *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _ray_stop(proc: subprocess.Popen[bytes]) -> None:
    """End one node: SIGTERM to its ``ray start``, then SIGKILL to whatever of its session is left
    (``ray stop`` would end every Ray on the machine, not just this one)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    for pid in _session_members(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    ray = pytest.importorskip("ray")
    from haneul.platform.executors.ray import connect

    folder = tmp_path_factory.mktemp("ray")
    port = free_port()
    address = f"{HEAD_IP}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        # no usage stats, a token of our own (not ~/.ray's), and no address left over from elsewhere
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "token")
        mp.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        mp.delenv("RAY_ADDRESS", raising=False)
        _reload_ray_auth()
        env = dict(os.environ)
        nodes = [_ray_start(["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}", "--num-cpus=1",
                             '--resources={"head": 1}', "--include-dashboard=false", f"--temp-dir={folder}",
                             "--disable-usage-stats"], env, folder / "head.log")]
        try:
            nodes.append(_ray_start([f"--address={address}", f"--node-ip-address={NODE_IP}", "--num-cpus=1",
                                     '--resources={"accel": 1}'], env, folder / "node.log"))
            wait_for(lambda: _answers(address), timeout=60, interval=0.2)
            connect(address)
            alive = wait_for(lambda: len(found := [n for n in ray.nodes() if n["Alive"]]) == 2 and found,
                             timeout=60, interval=0.2)
            by_resource = {key: n["NodeID"] for n in alive for key in ("head", "accel") if key in n["Resources"]}
            yield RayCluster(address, by_resource["head"], by_resource["accel"])
        finally:
            ray.shutdown()
            for node in reversed(nodes):
                _ray_stop(node)
    _reload_ray_auth()


def _reload_ray_auth() -> None:
    """Make this process read RAY_AUTH_* again: Ray reads them once, when it is first imported."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray from before token authentication
        return

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _answers(address: str) -> bool:
    from haneul.platform.executors.ray import _probe

    try:
        _probe(address)
    except InvalidInput:
        return False
    return True


@pytest.mark.ray
class TestRayExecutor(ExecutorConformance):
    @pytest.fixture(autouse=True)
    def _on_the_cluster(self, ray_cluster: RayCluster) -> None:
        self.cluster = ray_cluster

    def make_executor(self) -> Executor:
        return get_executor("ray", Settings(executor="ray", ray_address=self.cluster.address))


@pytest.mark.ray
def test_a_custom_resource_places_the_session_on_the_node_that_has_it(ray_cluster: RayCluster, tmp_path: Path) -> None:
    from haneul.platform.executors.ray import RayExecutor

    ex = RayExecutor(ray_cluster.address, start_timeout=3)
    sleep = "import os, time; print(repr(os.environ['CUDA_VISIBLE_DEVICES']), flush=True); time.sleep(60)"
    accel = dataclasses.replace(python_spec(tmp_path, sleep, sid=11), resources={"cpus": 1, "accel": 1})
    accel.env["CUDA_VISIBLE_DEVICES"] = "0,1"  # the server's: a session that asked for no GPU sees none
    head = dataclasses.replace(python_spec(tmp_path, sleep, sid=12), resources={"cpus": 1, "head": 1})
    ex.start(accel)
    ex.start(head)
    try:
        assert ex.node(11) == ray_cluster.accel_node != ray_cluster.head_node == ex.node(12)
        # the one "accel" is taken: a second session asking for it finds no room and says so
        with pytest.raises(HaneulError, match=r"no node of the Ray cluster had room for session 13 \(accel=1, cpus=0"):
            ex.start(dataclasses.replace(python_spec(tmp_path, sleep, sid=13), resources={"cpus": 0, "accel": 1}))
    finally:
        ex.stop(11, grace=0.5)
        ex.stop(12, grace=0.5)
    assert wait_for(lambda: ex.poll(11), timeout=15).code == -signal.SIGTERM
    assert accel.log_path.read_text().split() == ["''"]
    assert wait_for(lambda: ex.poll(12), timeout=15).code == -signal.SIGTERM


@pytest.mark.ray
def test_a_launch_that_fails_on_the_node_raises_the_same_error_here(ray_cluster: RayCluster, tmp_path: Path) -> None:
    from haneul.platform.executors.ray import RayExecutor

    spec = dataclasses.replace(python_spec(tmp_path, "", sid=21), command=[])
    with pytest.raises(InvalidInput, match=r"^the command is empty; pass it after --"):
        RayExecutor(ray_cluster.address).start(spec)
    wait_for(lambda: not _actor_exists("haneul-session-21"), timeout=10)


# counts to 30, saving and exiting as soon as the platform asks it to pause
PAUSABLE = textwrap.dedent("""
    import sys, time
    import haneul

    step = haneul.load() or 0
    print(f"start at step {step}", flush=True)
    while step < 30:
        step += 1
        haneul.report(step=step, x=float(step))
        if haneul.paused():
            haneul.save("step", step)
            print(f"paused at step {step}", flush=True)
            sys.exit(0)
        time.sleep(0.05)
    print("finished", flush=True)
""")


@pytest.fixture
def ray_server(ray_cluster: RayCluster, haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A live server whose sessions run on the test cluster, its capacity the cluster's (2 CPUs)."""
    monkeypatch.setenv("HANEUL_EXECUTOR", "ray")
    monkeypatch.setenv("HANEUL_RAY_ADDRESS", ray_cluster.address)
    monkeypatch.delenv("HANEUL_CAPACITY_CPUS", raising=False)
    server = start_server(haneul_home)
    try:
        yield server
    finally:
        server.stop()


def _session(client: Client, sid: int, *wanted: str) -> dict:
    return wait_for(lambda: (s := client.get_session(sid))["status"] in wanted and s, timeout=30)


def _actor_exists(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name, namespace="haneul")
    except ValueError:
        return False
    return True


@pytest.mark.ray
def test_pause_and_resume_through_a_server_running_sessions_on_ray(ray_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(PAUSABLE)
    with closing(Client(ray_server.url)) as client:
        sid = client.create_session(command=[sys.executable, "train.py"], cwd=str(tmp_path))["id"]
        wait_for(lambda: any(k["key"] == "x" and k["count"] >= 5 for k in client.metric_keys(sid)), timeout=30)
        assert _actor_exists(f"haneul-session-{sid}")  # it runs on the cluster, not as the server's child
        client.pause_session(sid)
        paused = _session(client, sid, "paused")
        assert paused["exit_code"] == 0 and paused["reason"] == "paused by request"
        client.resume_session(sid)
        done = _session(client, sid, "done")
        assert done["runs"] == 2
        lines = client.tail_logs(sid, lines=100)["lines"]
        stopped_at = next(int(line.split()[-1]) for line in lines if line.startswith("paused at step"))
        assert 5 <= stopped_at < 30
        assert lines.index("--- resumed (run 2) ---") < lines.index(f"start at step {stopped_at}")
        assert lines[-1] == "finished"
        assert client.metric_history(sid, "x")["steps"] == list(range(1, 31))
        # the finished run's actor is gone, its cluster resources given back
        wait_for(lambda: not _actor_exists(f"haneul-session-{sid}"), timeout=10)


# reports 30 points over 3 s; the SDK keeps what it cannot send while the server is away
STEADY = textwrap.dedent("""
    import time
    import haneul

    for step in range(30):
        haneul.report(step=step, x=float(step))
        time.sleep(0.1)
    haneul.flush()
    print("finished", flush=True)
""")


@pytest.mark.ray
def test_a_restarted_server_reattaches_a_session_running_on_ray(ray_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(STEADY)
    with closing(Client(ray_server.url)) as client:
        sid = client.create_session(command=[sys.executable, "train.py"], cwd=str(tmp_path))["id"]
        wait_for(lambda: client.metric_keys(sid), timeout=30)
    ray_server.kill()  # SIGKILL: the session's detached actor and its process run on
    ray_server.proc = start_server(ray_server.home, port=ray_server.port).proc  # the fixture stops this one
    with closing(Client(ray_server.url)) as client:
        done = _session(client, sid, "done")
        # found again by its actor's name, so it ended as watched, not "finished while the server was down"
        assert done["exit_code"] == 0 and done["reason"] is None and done["runs"] == 1
        assert client.tail_logs(sid, lines=100)["lines"][-1] == "finished"
        assert sorted(set(client.metric_history(sid, "x")["steps"])) == list(range(30))
    wait_for(lambda: not _actor_exists(f"haneul-session-{sid}"), timeout=10)


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(InvalidInput, match=r"^HANEUL_EXECUTOR=ray needs Ray: pip install 'haneul\[ray\]'$"):
        get_executor("ray", Settings(executor="ray", ray_address="127.0.0.1:6379"))


def test_a_cluster_that_is_down_is_named_with_the_command_that_starts_one(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh server process would be
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(InvalidInput, match=rf"no Ray cluster answers at {address} .*`ray start --head`"):
        get_executor("ray", Settings(executor="ray", ray_address=address))


def test_resources_map_to_ray_actor_options() -> None:
    from haneul.platform.executors.ray import actor_options

    assert actor_options({"cpus": 2, "gpus": 1, "memory": 4 << 30, "accel": 1, "unused": 0}) == {
        "num_cpus": 2.0, "num_gpus": 1.0, "memory": 4 << 30, "resources": {"accel": 1.0}}
    assert actor_options({"cpus": 0.5, "gpus": 0, "memory": 0}) == {"num_cpus": 0.5, "num_gpus": 0.0}
    assert actor_options(None) == {"num_cpus": 0.0, "num_gpus": 0.0}


# counts to 30 like PAUSABLE, more slowly, and saves a checkpoint before it starts counting
CHECKPOINTED = PAUSABLE.replace('print(f"start at step {step}", flush=True)',
                                'print(f"start at step {step}", flush=True)\n'
                                'if step == 0:\n    haneul.save("first", b"initial weights")') \
    .replace("time.sleep(0.05)", "time.sleep(0.3)")  # both sessions are still running when looked at


def _node_of(sid: int) -> str:
    """The Ray node id session ``sid``'s actor runs on ("" before it is placed)."""
    import ray

    try:
        actor = ray.get_actor(f"haneul-session-{sid}", namespace="haneul")
        return str(ray.get(actor.node.remote(), timeout=10))
    except (ValueError, ray.exceptions.RayError):
        return ""


@pytest.mark.ray
def test_a_session_on_the_worker_node_reports_saves_to_s3_pauses_and_resumes(
        ray_cluster: RayCluster, haneul_home: Path, s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from platform_helpers import S3_BUCKET

    monkeypatch.setenv("HANEUL_EXECUTOR", "ray")
    monkeypatch.setenv("HANEUL_RAY_ADDRESS", ray_cluster.address)
    monkeypatch.setenv("HANEUL_ARTIFACT_ROOT", f"s3://{S3_BUCKET}/ray")
    monkeypatch.setenv("HANEUL_S3_ENDPOINT_URL", s3)
    monkeypatch.delenv("HANEUL_CAPACITY_CPUS", raising=False)
    (tmp_path / "train.py").write_text(CHECKPOINTED)
    server = start_server(haneul_home)
    try:
        with closing(Client(server.url)) as client:
            # one CPU on each node: two sessions of one CPU each take one node each
            sids = [client.create_session(command=[sys.executable, "train.py"], cwd=str(tmp_path), cpus=1)["id"]
                    for _ in range(2)]
            nodes = wait_for(lambda: all(found := [_node_of(s) for s in sids]) and found, timeout=60)
            assert sorted(nodes) == sorted([ray_cluster.head_node, ray_cluster.accel_node])
            sid = sids[nodes.index(ray_cluster.accel_node)]  # the one on the worker node
            wait_for(lambda: any(k["key"] == "x" and k["count"] >= 5 for k in client.metric_keys(sid)), timeout=60)
            saved = wait_for(lambda: client.list_checkpoints(sid), timeout=30)
            assert [c["name"] for c in saved] == ["first"]
            keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(
                Bucket=S3_BUCKET, Prefix=f"ray/sessions/{sid}/").get("Contents", [])}
            assert f"ray/sessions/{sid}/checkpoints/first" in keys  # in the bucket, not on the server's disk
            assert not (haneul_home / "artifacts" / "sessions").exists()

            client.pause_session(sid)
            paused = _session(client, sid, "paused")
            assert paused["exit_code"] == 0 and paused["reason"] == "paused by request"
            assert {c["name"] for c in client.list_checkpoints(sid)} == {"first", "step"}
            client.resume_session(sid)  # it loads its latest checkpoint ("step") from the bucket
            done = _session(client, sid, "done")
            assert done["runs"] == 2
            lines = client.tail_logs(sid, lines=100)["lines"]
            stopped_at = next(int(line.split()[-1]) for line in lines if line.startswith("paused at step"))
            assert f"start at step {stopped_at}" in lines and lines[-1] == "finished"
            assert client.metric_history(sid, "x")["steps"] == list(range(1, 31))
            _session(client, sids[1 - sids.index(sid)], "done")
    finally:
        server.stop()
