from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from haneul.platform.testing import LiveServer, start_server

#: a deterministic "training run": the loss falls towards (x - 0.3)^2 over `steps` steps
QUADRATIC = '''
import argparse, time
import haneul
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--sleep", type=float, default=0.05)
a = p.parse_args()
for step in range(1, a.steps + 1):
    haneul.report(step=step, loss=(a.x - 0.3) ** 2 + 1.0 / step)
    time.sleep(a.sleep)
haneul.flush()
'''


@pytest.fixture
def tune_server(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("HANEUL_CAPACITY_CPUS", "2")
    server = start_server(haneul_home)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def quadratic(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "train.py").write_text(QUADRATIC)
    return folder
