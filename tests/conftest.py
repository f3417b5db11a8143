from __future__ import annotations

import os
from pathlib import Path

import pytest

from haneul.settings import reload_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def haneul_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HANEUL_HOME and runs outside any platform session."""
    home = tmp_path_factory.mktemp("haneul-home")
    monkeypatch.setenv("HANEUL_HOME", str(home))
    for var in ("HANEUL_SESSION", "HANEUL_SERVER", "HANEUL_TOKEN", "HANEUL_DB_URL", "HANEUL_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    reload_settings()
    yield home
    from haneul.platform import sdk

    sdk._reset()  # the next test starts with a fresh step counter and buffer
    reload_settings()


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """The open Korean data set folder, or None when it is not beside the checkout."""
    path = Path(os.environ.get("HANEUL_TEST_DATA", REPO.parent / "shared" / "data"))
    return path if path.exists() else None
