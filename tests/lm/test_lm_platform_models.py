"""`haneul lm generate model:NAME@ALIAS`: a model named in the platform's registry is fetched from its
session's checkpoint and generates exactly what its folder does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from haneul.platform.testing import BIN, start_server, wait_for

pytestmark = pytest.mark.slow


def test_generate_with_a_registered_model(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    env = {**server.env(), "HANEUL_API_TOKEN": server.token}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "haneul"), *args], env=env, capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)

    try:
        code = f"import haneul; haneul.save('lm', {str(tiny_model)!r})"
        sid = int(cli("run", "--", sys.executable, "-c", code).stdout)
        http = server.http()
        wait_for(lambda: http.get(f"/api/v1/sessions/{sid}").json()["status"] == "done", timeout=120)
        assert cli("model", "register", "ko", f"{sid}:lm", "--alias", "production").returncode == 0
        args = ("--max-tokens", "5", "--temperature", "0", "--json")
        via_model = cli("lm", "generate", "model:ko@production", "배우", *args)
        assert via_model.returncode == 0, via_model.stderr
        direct = cli("lm", "generate", str(tiny_model), "배우", *args)
        assert json.loads(via_model.stdout) == json.loads(direct.stdout) != []
        cached = list((tmp_path / "home" / "models-cache" / "ko").iterdir())
        assert len(cached) == 1 and cached[0].name.startswith("1-") and (cached[0] / "config.json").is_file()
        missing = cli("lm", "generate", "model:ko@staging", "배우", *args)
        assert missing.returncode != 0 and "has no alias 'staging'" in missing.stderr
    finally:
        server.stop()
