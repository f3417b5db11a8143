"""Fixtures for the results-page tests: the platform app with the evaluation results router mounted,
in-process (TestClient) and on a real port (for the CLI and the browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haneul.platform.testing import as_admin


def _app(home: Path):  # type: ignore[no-untyped-def]
    from haneul.platform.server import create_app
    from haneul.settings import Settings

    return create_app(Settings(home=home, capacity_cpus=1), server_url="http://testserver")


@pytest.fixture
def evals_api(haneul_home: Path) -> Iterator:  # type: ignore[type-arg]
    from fastapi.testclient import TestClient

    with TestClient(_app(haneul_home)) as client:
        as_admin(client)
        yield client


@pytest.fixture
def evals_server(haneul_home: Path) -> Iterator[str]:
    """A real server on a free loopback port (uvicorn in a thread); yields its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(haneul_home), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
