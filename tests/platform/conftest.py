from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer, start_server

from haneul.platform.credentials import local_admin_token
from haneul.settings import Settings


@pytest.fixture
def settings(haneul_home: Path) -> Settings:
    return Settings(home=haneul_home, capacity_cpus=4)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The app in-process (real database, real subprocesses), served by TestClient."""
    from haneul.platform.server import create_app

    app = create_app(settings, server_url="http://testserver")
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {local_admin_token(settings.home)}"
        yield client


@pytest.fixture
def live_server(haneul_home: Path) -> Iterator[LiveServer]:
    server = start_server(haneul_home)
    try:
        yield server
    finally:
        server.stop()
