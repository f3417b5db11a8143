from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haneul.platform.testing import POSTGRES_URL_VAR
from haneul.platform.testing import postgres_database as postgres_database_on
from haneul.settings import reload_settings

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def haneul_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HANEUL_HOME and runs outside any platform session."""
    home = tmp_path_factory.mktemp("haneul-home")
    monkeypatch.setenv("HANEUL_HOME", str(home))
    # sessions sample no system metrics unless a test asks (exact metric keys stay predictable)
    monkeypatch.setenv("HANEUL_SYS_METRICS_INTERVAL", "0")
    for var in ("HANEUL_SESSION", "HANEUL_SERVER", "HANEUL_TOKEN", "HANEUL_API_TOKEN", "HANEUL_DB_URL",
                "HANEUL_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    # `haneul login` keeps tokens under XDG_CONFIG_HOME: never the real one of whoever runs the tests
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))  # the dataset checksum cache, and others
    reload_settings()
    yield home
    from haneul.platform import sdk

    sdk._reset()  # the next test starts with a fresh step counter and buffer
    reload_settings()


@pytest.fixture(autouse=True)
def postgres_database(haneul_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With HANEUL_TEST_POSTGRES_URL set (``make test-postgres`` runs the suites named in the Makefile
    with ``scripts/with-postgres.sh``, which sets it) every test gets a database of its own on that
    PostgreSQL server instead of SQLite; without it this does nothing."""
    admin_url = os.environ.get(POSTGRES_URL_VAR)
    if not admin_url:
        yield
        return
    with postgres_database_on(admin_url) as url:
        monkeypatch.setenv("HANEUL_DB_URL", url)
        reload_settings()
        yield


@pytest.fixture
def postgres_admin_url() -> str:
    """The URL of the test PostgreSQL server's admin role: a test marked ``postgres`` fails clearly without it."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        pytest.fail(f"no PostgreSQL server: run `bash scripts/with-postgres.sh pytest -m postgres` "
                    f"(or set {POSTGRES_URL_VAR})")
    return url


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """The open Korean data set folder, or None when it is not beside the checkout."""
    path = Path(os.environ.get("HANEUL_TEST_DATA", REPO.parent / "shared" / "data"))
    return path if path.exists() else None


@pytest.fixture
def page() -> Iterator[Any]:
    """A Playwright page in headless Chromium (1280 x 900), for the tests marked ``browser``."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `bash scripts/sysdeps.sh` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()
