"""Runs one session command, records its exit code and samples the session's system metrics.

Started by the local executor as the leader of the session's process group, with stdout/stderr
already pointing at the session log. It keeps no reference to the server, so the session survives
a server restart, and the exit code file lets a restarted server learn how it ended. This file is
executed by path and imports nothing from haneul, to keep launch latency low.

With ``--sys-interval S`` (S > 0) a thread samples the session's processes every S seconds — CPU %
summed over them, their resident memory, and each visible GPU's utilisation and memory through NVML
when ``pynvml`` is importable — and posts them as ``sys/*`` metrics to the session's metrics route
(the one the SDK uses), the step being whole seconds since the launch. It reads ``/proc`` directly:
the launcher runs without site-packages, and the user's code is never touched.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

MAX_UNSENT = 360  # samples kept while the server is away (an hour at the default 10 s), oldest dropped


def main() -> int:
    exit_file = sys.argv[1]
    args = sys.argv[2:]
    interval = 0.0
    if args[:1] == ["--sys-interval"]:
        interval = float(args[1])
        args = args[2:]
    command = args[1:]  # args[0] is "--"
    try:
        child = subprocess.Popen(command)
    except (FileNotFoundError, PermissionError) as exc:
        print(f"haneul: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        _record(exit_file, 127)
        return 127

    def forward(signum, _frame):
        # the whole group already got it when the platform stops a session; this covers a
        # signal sent to the launcher alone
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sampler = None
    shipper = Shipper.from_env()
    if interval > 0 and shipper is not None:
        # the launcher leads the session's process group (the executor starts it with setsid)
        sampler = Sampler(child.pid, interval, shipper, group=os.getpgrp())
        sampler.start()
    code = child.wait()
    _record(exit_file, code)  # first: how the session ended must not wait on the server
    if sampler is not None:
        sampler.stop()
    return code if code >= 0 else 128 - code


def _record(path, code):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(str(code))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# system metrics

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_table():
    """``pid -> (ppid, pgid, cpu ticks, rss pages, start time)`` of every process we may read."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:  # it ended while we looked
            continue
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        f = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = (int(f[1]), int(f[2]), int(f[11]) + int(f[12]), int(f[21]), f[19])
    return table


class ProcessTree:
    """CPU % and resident memory of ``root`` and every process below it or in process group ``group``.

    CPU % is the processes' CPU time (user + system) since the previous sample over the wall time
    between them, so 200 means two cores busy. A process is known by pid and start time, so a pid
    reused between samples is counted afresh.
    """

    def __init__(self, root, group=None):
        self.root = root
        self.group = group
        self.me = os.getpid()
        self._seen = {}  # (pid, start) -> cpu ticks at the previous sample
        self._last = time.monotonic()

    def members(self, table):
        children = {}
        for pid, row in table.items():
            children.setdefault(row[0], []).append(pid)
        found, todo = set(), [self.root]
        while todo:
            pid = todo.pop()
            if pid in table and pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, ()))
        # an orphan (its parent ended) leaves the tree but stays in the session's process group
        found.update(pid for pid, row in table.items() if self.group is not None and row[1] == self.group)
        found.discard(self.me)
        return found

    def sample(self):
        table = _proc_table()
        now = time.monotonic()
        seen, ticks, pages = {}, 0, 0
        for pid in self.members(table):
            _, _, cpu, rss, start = table[pid]
            seen[(pid, start)] = cpu
            ticks += max(0, cpu - self._seen.get((pid, start), 0))
            pages += rss
        elapsed = max(now - self._last, 1e-6)
        self._seen, self._last = seen, now
        return {"sys/cpu_percent": round(100.0 * ticks / _TICKS / elapsed, 2),
                "sys/rss_mb": round(pages * _PAGE / (1 << 20), 2)}


def load_nvml():
    """The ``pynvml`` module (from nvidia-ml-py) initialised, or None when there is none or no GPU."""
    try:
        import pynvml
    except ImportError:
        try:  # the launcher runs without site-packages; look there once, off the launch path
            import site

            site.main()
            import pynvml
        except Exception:
            return None
    try:
        pynvml.nvmlInit()
    except Exception:  # a driver-less machine
        return None
    return pynvml


def gpu_sample(nvml, visible):
    """``sys/gpu{i}_util`` (%) and ``sys/gpu{i}_mem_mb`` (device memory in use) of each GPU the
    session sees, numbered as the session numbers them (``cuda:i``)."""
    out = {}
    for i, index in enumerate(visible):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        out[f"sys/gpu{i}_util"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        out[f"sys/gpu{i}_mem_mb"] = round(nvml.nvmlDeviceGetMemoryInfo(handle).used / (1 << 20), 2)
    return out


def visible_gpus(nvml, env):
    """NVML indices of the GPUs the session sees: ``CUDA_VISIBLE_DEVICES`` when it lists numbers,
    otherwise all of them."""
    count = nvml.nvmlDeviceGetCount()
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(count))
    parts = [p.strip() for p in listed.split(",") if p.strip()]
    if all(p.isdigit() for p in parts):
        # CUDA stops at the first device that does not exist; so does this
        out = []
        for p in parts:
            if int(p) >= count:
                break
            out.append(int(p))
        return out
    return list(range(count))  # UUIDs or MIG names: report every device rather than guess


class Shipper:
    """Posts samples to the session's metrics route; keeps the unsent ones while the server is away."""

    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.unsent = []  # (step, time, {key: value})

    @classmethod
    def from_env(cls):
        sid, server = os.environ.get("HANEUL_SESSION"), os.environ.get("HANEUL_SERVER")
        if not sid or not server:
            return None
        return cls(f"{server.rstrip('/')}/api/v1/sessions/{sid}/metrics", os.environ.get("HANEUL_TOKEN", ""))

    def add(self, step, when, values):
        self.unsent.append((step, when, values))
        del self.unsent[:-MAX_UNSENT]

    def send(self, timeout=5.0):
        if not self.unsent:
            return
        import urllib.error
        import urllib.request

        groups = {}
        for step, when, values in self.unsent:
            for key, value in values.items():
                g = groups.setdefault(key, {"steps": [], "values": [], "times": []})
                g["steps"].append(step)
                g["values"].append(value)
                g["times"].append(when)
        request = urllib.request.Request(
            self.url, data=json.dumps({"metrics": groups}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # refused for good (e.g. the key limit): retrying would not help
                self.unsent.clear()
            return
        except (OSError, ValueError):  # unreachable (a restart): try again with the next sample
            return
        self.unsent.clear()


class Sampler:
    def __init__(self, root, interval, shipper, env=None, group=None):
        self.tree = ProcessTree(root, group)
        self.interval = interval
        self.shipper = shipper
        self.env = os.environ if env is None else env
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="haneul-sysmetrics", daemon=True)
        self._nvml = None
        self._gpus = None  # NVML indices, once looked up; [] when there is no GPU

    def start(self):
        self._thread.start()

    def stop(self, timeout=3.0):
        self._stop.set()
        self._thread.join(timeout)

    def sample(self):
        values = self.tree.sample()
        if self._gpus is None:
            self._nvml = load_nvml()
            self._gpus = visible_gpus(self._nvml, self.env) if self._nvml is not None else []
        if self._gpus:
            try:
                values.update(gpu_sample(self._nvml, self._gpus))
            except Exception:  # a GPU that fell off the bus must not end the sampling of the rest
                self._gpus = []
        return values

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                now = time.time()
                self.shipper.add(int(now - self.started), now, self.sample())
                self.shipper.send()
            except Exception as exc:  # never take the session down for its metrics
                print(f"haneul: system metrics stopped ({exc.__class__.__name__}: {exc})",
                      file=sys.stderr, flush=True)
                return
        self.shipper.send(timeout=2.0)  # what the last tick could not deliver


if __name__ == "__main__":
    sys.exit(main())
