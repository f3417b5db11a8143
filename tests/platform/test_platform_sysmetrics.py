"""System metrics: the launcher's sampler over real processes, the NVML path with a stand-in module,
and sys/* metrics reaching the server from a real session without any change to its code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
from platform_helpers import LiveServer, wait_for

from haneul.errors import InvalidInput
from haneul.platform.client import Client
from haneul.platform.executors import launcher
from haneul.platform.executors.local import sys_metrics_interval

PY = sys.executable

# The child burns 0.3 s of CPU, then starts a grandchild that holds 60 MiB (every page touched),
# and says "ready" once both are done.
FAMILY = textwrap.dedent("""
    import subprocess, sys, time
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
    hog = subprocess.Popen([sys.executable, "-c",
        "import sys; b = bytearray(60 << 20); b[::4096] = b'x' * len(b[::4096]); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hog.stdout.readline()
    print("ready", flush=True)
    sys.stdin.read()
    hog.stdin.close()
    hog.wait()
""")


def test_sampler_sums_cpu_and_memory_over_the_process_tree() -> None:
    before = time.monotonic()
    child = subprocess.Popen([PY, "-c", FAMILY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tree = launcher.ProcessTree(child.pid)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        sample = tree.sample()
        wall = time.monotonic() - before
        assert sample["sys/rss_mb"] > 60  # the grandchild's 60 MiB plus two interpreters
        assert sample["sys/cpu_percent"] / 100 * wall >= 0.28  # at least the 0.3 s burnt (tick rounding)
        assert len(tree.members(launcher._proc_table())) == 2
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    assert tree.sample() == {"sys/cpu_percent": 0.0, "sys/rss_mb": 0.0}  # all gone


class _FakeNvml(types.ModuleType):
    """Two GPUs: device i is 10*(i+1) % busy with (i+1) GiB in use."""

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.inits = 0

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        self.inits += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:  # noqa: N802
        return types.SimpleNamespace(gpu=10 * (h + 1), memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> types.SimpleNamespace:  # noqa: N802
        return types.SimpleNamespace(used=(h + 1) << 30, total=80 << 30)


def test_gpus_come_from_nvml_numbered_as_the_session_sees_them(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    everything = launcher.Sampler(launcher.os.getpid(), 10, None, env={}).sample()
    assert {k: v for k, v in everything.items() if "gpu" in k} == {
        "sys/gpu0_util": 10.0, "sys/gpu0_mem_mb": 1024.0, "sys/gpu1_util": 20.0, "sys/gpu1_mem_mb": 2048.0}
    only_second = launcher.Sampler(launcher.os.getpid(), 10, None, env={"CUDA_VISIBLE_DEVICES": "1"}).sample()
    assert {k: v for k, v in only_second.items() if "gpu" in k} == {"sys/gpu0_util": 20.0, "sys/gpu0_mem_mb": 2048.0}
    assert launcher.visible_gpus(fake, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert launcher.visible_gpus(fake, {"CUDA_VISIBLE_DEVICES": "1,5,0"}) == [1]  # CUDA stops at a missing one
    assert fake.inits == 2


def test_without_nvml_there_are_no_gpu_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as when nvidia-ml-py is not installed
    monkeypatch.setattr("site.main", lambda: None)
    assert set(launcher.Sampler(launcher.os.getpid(), 10, None, env={}).sample()) == {"sys/cpu_percent", "sys/rss_mb"}


def test_interval_setting() -> None:
    assert sys_metrics_interval({}) == 10.0
    assert sys_metrics_interval({"HANEUL_SYS_METRICS_INTERVAL": "0"}) == 0.0
    assert sys_metrics_interval({"HANEUL_SYS_METRICS_INTERVAL": "2.5"}) == 2.5
    for bad in ("-1", "soon", "inf", "nan"):
        with pytest.raises(InvalidInput, match="HANEUL_SYS_METRICS_INTERVAL"):
            sys_metrics_interval({"HANEUL_SYS_METRICS_INTERVAL": bad})


def _keys(client: Client, sid: int) -> dict[str, int]:
    return {k["key"]: k["count"] for k in client.metric_keys(sid)}


def test_a_session_reports_system_metrics_without_changing_its_code(live_server: LiveServer, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    (tmp_path / "job.py").write_text(textwrap.dedent(f"""
        import os, time
        b = bytearray(50 << 20); b[::4096] = b"x" * len(b[::4096])
        while not os.path.exists({str(gate)!r}):  # hold until the test has seen samples arrive
            time.sleep(0.05)
    """))
    out = live_server.cli("run", "--env", "HANEUL_SYS_METRICS_INTERVAL=0.2", "--", "python", "job.py", cwd=tmp_path)
    sid = int(out.stdout.strip())
    client = Client(live_server.url)
    # two samples: the first may come before the 50 MiB are touched
    wait_for(lambda: _keys(client, sid).get("sys/rss_mb", 0) >= 2, timeout=60)
    history = client.metric_history(sid, "sys/rss_mb")
    assert max(history["values"]) > 50
    assert history["steps"] == sorted(history["steps"]) and history["steps"][0] >= 0
    assert "sys/cpu_percent" in _keys(client, sid)
    gate.touch()
    wait_for(lambda: client.get_session(sid)["status"] == "done", timeout=60)


def test_interval_zero_turns_sampling_off(live_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("import time, haneul\nhaneul.report(step=0, loss=1.0)\ntime.sleep(1)\n")
    out = live_server.cli("run", "--env", "HANEUL_SYS_METRICS_INTERVAL=0", "--", "python", "job.py", cwd=tmp_path)
    sid = int(out.stdout.strip())
    client = Client(live_server.url)
    wait_for(lambda: client.get_session(sid)["status"] == "done", timeout=60)
    assert list(_keys(client, sid)) == ["loss"]
    bad = live_server.cli("run", "--env", "HANEUL_SYS_METRICS_INTERVAL=soon", "--", "python", "job.py", cwd=tmp_path)
    failed = wait_for(lambda: (s := client.get_session(int(bad.stdout.strip())))["status"] not in ("queued", "running")
                      and s, timeout=60)
    assert failed["status"] == "failed" and "HANEUL_SYS_METRICS_INTERVAL='soon'" in failed["reason"]


@pytest.mark.browser
def test_session_page_draws_system_metrics_in_their_own_section(live_server: LiveServer, tmp_path: Path,
                                                                  page) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "go"
    (tmp_path / "job.py").write_text(f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.05)\n")
    out = live_server.cli("run", "--env", "HANEUL_SYS_METRICS_INTERVAL=0.2", "--", "python", "job.py", cwd=tmp_path)
    sid = int(out.stdout.strip())
    client = Client(live_server.url)
    try:
        wait_for(lambda: _keys(client, sid).get("sys/rss_mb", 0) >= 1, timeout=60)
        page.goto(live_server.login_url(f"/sessions/{sid}"))
        page.wait_for_selector("#system .chart[data-key='sys/rss_mb'] .main-svg", timeout=20_000)
        assert page.is_visible("#system")
        keys = page.eval_on_selector_all("#system .chart", "cs => cs.map(c => c.dataset.key)")
        assert keys == ["sys/cpu_percent", "sys/rss_mb"]
        assert page.evaluate("document.querySelector(\"#system .chart[data-key='sys/rss_mb']\").data[0].y[0]") > 1
    finally:
        gate.touch()
    wait_for(lambda: client.get_session(sid)["status"] == "done", timeout=60)

