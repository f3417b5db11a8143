"""`haneul --help` and the server's start-up must not import torch or other heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "kiwipiepy", "ray", "torch_geometric", "matplotlib", "mecab")


def test_cli_and_server_startup_stay_light(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "import haneul.cli.main\n"
        "from haneul.settings import Settings\n"
        "from haneul.platform.server import create_app\n"
        f"create_app(Settings(home={str(tmp_path)!r}))\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
