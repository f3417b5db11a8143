from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from platform_helpers import S3_BUCKET, LiveServer, start_server

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


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A real S3 HTTP API on 127.0.0.1 (moto in server mode) with the bucket :data:`S3_BUCKET`; yields
    its endpoint URL, with test credentials in the environment meanwhile."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with pytest.MonkeyPatch.context() as env:
        for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(var, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()
