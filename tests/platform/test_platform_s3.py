"""Checkpoints and artifacts in an object store: the platform against a real S3 HTTP API (moto in
server mode), and the object folder on fsspec's in-memory filesystem."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from platform_helpers import S3_BUCKET, free_port, wait_for

from haneul.errors import IntegrityError, InvalidInput, NotFound, ServerUnavailable
from haneul.platform.objects import open_folder
from haneul.platform.service import Platform
from haneul.platform.store import CheckpointStore
from haneul.settings import Settings

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

BUCKET = S3_BUCKET
BLOCK = 5 << 20  # s3fs's block size here: S3's smallest part, so a 12 MB file goes up in three parts
#: fail fast on a dead endpoint: one attempt per call, a short connect timeout
FAST = {"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}


def _settings(home: Path, endpoint: str, root: str = f"s3://{BUCKET}/haneul") -> Settings:
    return Settings(home=home, capacity_cpus=4, artifact_root=root, s3_endpoint_url=endpoint,
                    artifact_options={"default_block_size": BLOCK, **FAST})


@contextlib.contextmanager
def _client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process on ``settings``, called as the local admin."""
    from haneul.platform.credentials import local_admin_token
    from haneul.platform.server import create_app

    with TestClient(create_app(settings, server_url="http://testserver")) as client:
        client.headers["Authorization"] = f"Bearer {local_admin_token(settings.home)}"
        yield client


@pytest.fixture
def api(haneul_home: Path, s3: str) -> Iterator[TestClient]:
    with _client(_settings(haneul_home, s3)) as client:
        yield client


def _bucket(s3: str) -> Any:
    """A boto3 S3 client of the test server (to look at and tamper with objects behind the platform)."""
    return boto3.client("s3", endpoint_url=s3)


def _keys(s3: str, prefix: str) -> list[str]:
    listed = _bucket(s3).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_checkpoints_and_artifacts_live_in_the_bucket(api: TestClient, s3: str, haneul_home: Path) -> None:
    sid = api.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "pass"]}).json()["id"]
    base = f"/api/v1/sessions/{sid}"
    small = bytes(range(256)) * 40
    big = (b"haneul" * (2 << 20))[: 12 << 20]  # 12 MiB: over the 5 MiB block size
    for name, blob in (("epoch-1", small), ("big", big)):
        res = api.put(f"{base}/checkpoints/{name}", params={"kind": "file"}, content=blob)
        assert res.status_code == 201 and res.json()["sha256"] == _sha(blob), res.text
    res = api.put(f"{base}/artifacts/eval/scores.csv", content=b"metric,value\nacc,0.9\n")
    assert res.status_code == 201 and res.json()["media_type"] == "text/csv"

    assert sorted(c["name"] for c in api.get(f"{base}/checkpoints").json()) == ["big", "epoch-1"]
    for name, blob in (("epoch-1", small), ("big", big)):
        got = api.get(f"{base}/checkpoints/{name}")
        assert got.status_code == 200 and _sha(got.content) == _sha(blob) == got.headers["x-haneul-sha256"]
        assert got.headers["content-disposition"] == f'attachment; filename="{sid}-{name}"'
    assert [a["path"] for a in api.get(f"{base}/artifacts").json()] == ["eval/scores.csv"]
    got = api.get(f"{base}/artifacts/eval/scores.csv")
    assert got.content == b"metric,value\nacc,0.9\n" and got.headers["content-security-policy"] == "sandbox"
    preview = api.get(f"{base}/artifacts/eval/scores.csv", params={"preview": 1}).json()
    assert preview["kind"] == "table" and preview["rows"] == [["acc", "0.9"]]

    # the objects are in the bucket, whole; the big one went up as a three-part upload, none is left open
    prefix = f"haneul/sessions/{sid}/"
    assert _keys(s3, prefix) == [prefix + k for k in ("artifacts/files/eval/scores.csv", "artifacts/manifest.json",
                                                      "checkpoints/big", "checkpoints/big.json",
                                                      "checkpoints/epoch-1", "checkpoints/epoch-1.json")]
    head = _bucket(s3).head_object(Bucket=BUCKET, Key=prefix + "checkpoints/big")
    assert head["ContentLength"] == len(big) and head["ETag"].strip('"').endswith("-3")
    assert not _bucket(s3).list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert not (haneul_home / "artifacts" / "sessions").exists()  # nothing of it on the local disk

    # code that needs a path (deploy, serve) gets a verified local copy
    record, path = api.app.state.platform.checkpoint_file(sid, "big")
    assert path.read_bytes() == big and path.name == record["sha256"]

    # an object changed behind the platform's back is refused with the integrity error
    bucket = _bucket(s3)
    bucket.put_object(Bucket=BUCKET, Key=prefix + "checkpoints/epoch-1", Body=small[::-1])
    res = api.get(f"{base}/checkpoints/epoch-1")
    assert res.status_code == 500 and res.json()["error"]["code"] == "integrity_error"
    assert "checkpoint 'epoch-1' is corrupt: sha256" in res.json()["error"]["message"]
    bucket.put_object(Bucket=BUCKET, Key=prefix + "artifacts/files/eval/scores.csv",
                      Body=b"metric,value\nacc,0.1\n")
    res = api.get(f"{base}/artifacts/eval/scores.csv")
    assert res.status_code == 500 and "artifact 'eval/scores.csv' is corrupt" in res.json()["error"]["message"]

    # deleting the session deletes its objects
    wait_for(lambda: api.get(base).json()["status"] not in ("queued", "running"), timeout=30)
    assert api.delete(base).status_code == 200
    assert _keys(s3, prefix) == []


def test_datasets_live_in_the_bucket_and_sessions_see_them(api: TestClient, s3: str, haneul_home: Path,
                                                           tmp_path: Path) -> None:
    from haneul.platform.client import Client
    from haneul.platform.datasets import pull, push, scan

    client = Client("http://testserver", token="unused")
    client._http = api  # the CLI's client, speaking to the in-process app
    files = {"a.txt": b"hello\n", "sub/big.bin": (b"dataset" * (1 << 20))[: 6 << 20], "sub/c.csv": "문장,label\n좋다,1\n".encode()}
    for rel, data in files.items():
        (tmp_path / "train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / rel).write_bytes(data)
    first = push(client, scan("s3-ds", tmp_path / "train"), local=False)
    assert first.version == 1
    # one object per distinct content, in the bucket beside the checkpoints; nothing in the local folder
    blobs = _keys(s3, "haneul/datasets/blobs/")
    assert sorted(k.rsplit("/", 1)[1] for k in blobs) == sorted(_sha(d) for d in files.values())
    assert not _keys(s3, "haneul/datasets/tmp/")  # uploads moved into place, none left half-written
    assert not (haneul_home / "artifacts" / "datasets").exists()

    # the same tree again uploads nothing and makes no version; a pull gets every byte back, checked
    again = push(client, scan("s3-ds", tmp_path / "train"), local=False)
    assert (again.version, again.created, again.uploaded_files) == (1, False, 0)
    pull(client, "s3-ds", tmp_path / "out", local=False, verify=True)
    assert {rel: (tmp_path / "out" / rel).read_bytes() for rel in files} == files

    # a session reads the train part from a local copy made from the bucket
    res = api.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "pass"], "dataset": "s3-ds"})
    assert res.status_code == 201, res.text
    mount = Path(res.json()["env"]["HANEUL_DATASET_PATH"])
    assert (mount / "sub" / "big.bin").read_bytes() == files["sub/big.bin"]
    # a blob changed behind the platform's back: a pull refuses it
    _bucket(s3).put_object(Bucket=BUCKET, Key=next(k for k in blobs if k.endswith(_sha(b"hello\n"))), Body=b"HELLO\n")
    with pytest.raises(IntegrityError, match="sha256"):
        pull(client, "s3-ds", tmp_path / "again", local=False)


def test_a_dead_store_is_one_line_at_start_and_a_503_later(haneul_home: Path, s3: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as refused:
        Platform(_settings(haneul_home, dead)).start()
    message = str(refused.value)
    assert "\n" not in message and f"s3://{BUCKET}/haneul" in message and "HANEUL_S3_ENDPOINT_URL" in message
    with pytest.raises(ServerUnavailable, match="the bucket does not exist; create it"):
        Platform(_settings(haneul_home, s3, root="s3://no-such-bucket/x")).start()

    # a store that goes away after the start: requests answer 503 in one line, not a traceback
    second = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    second.start()
    host, port = second.get_host_and_port()
    boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket=BUCKET)
    with _client(_settings(haneul_home, f"http://{host}:{port}")) as client:
        sid = client.post("/api/v1/sessions", json={"command": [sys.executable, "-c", "pass"]}).json()["id"]
        base = f"/api/v1/sessions/{sid}"
        wait_for(lambda: client.get(base).json()["status"] not in ("queued", "running"), timeout=30)
        second.stop()
        res = client.put(f"{base}/checkpoints/c", content=b"x" * 100)
        assert res.status_code == 503 and res.json()["error"]["code"] == "server_unavailable"
        assert "\n" not in res.json()["error"]["message"] and "nothing answers" in res.json()["error"]["message"]
        assert client.get(f"{base}/artifacts").status_code == 503
        assert client.delete(base).status_code == 503  # its objects could not go: the session stays
        assert client.get(base).status_code == 200


def test_a_missing_backend_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    loaded = importlib.import_module("fsspec.registry")._registry
    monkeypatch.delitem(loaded, "s3", raising=False)  # forget the loaded class
    monkeypatch.setitem(sys.modules, "s3fs", None)  # and make importing it fail
    with pytest.raises(InvalidInput, match=r"needs s3fs, which is not installed; pip install 'haneul\[s3\]'"):
        open_folder("s3://bucket/prefix")


def test_any_fsspec_url_holds_checkpoints_atomically(tmp_path: Path) -> None:
    store = CheckpointStore(open_folder("memory://haneul-objects/run-1"))
    assert store.root is None and store.list() == []
    rec = store.put_chunks("a", iter([b"12", b"34"]), "bytes")
    assert rec["size"] == 4 and rec["sha256"] == _sha(b"1234") and store.list() == [rec]
    kind, copy = store.get("a", cache=tmp_path)
    assert kind == "bytes" and copy.read_bytes() == b"1234"

    def dropped() -> Iterator[bytes]:  # an upload that breaks off after 6 MB
        yield b"x" * (6 << 20)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_chunks("b", dropped(), "file")
    with pytest.raises(NotFound):  # no record, and no blob under the real name
        store.record("b")
    assert sorted(store.folder.names()) == ["a", "a.json"]
    store.delete_all()
    assert store.folder.names() == []


def test_a_dropped_upload_leaves_nothing_in_the_bucket(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the endpoint from the AWS SDK's own variable, with no HANEUL_S3_ENDPOINT_URL
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    store = CheckpointStore(open_folder(f"s3://{BUCKET}/dropped", {"default_block_size": BLOCK, **FAST}))
    store.folder.check()

    def dropped() -> Iterator[bytes]:  # two parts sent, then the client goes away
        yield b"x" * (11 << 20)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_chunks("ckpt", dropped(), "file")
    assert _keys(s3, "dropped/") == []
    assert not _bucket(s3).list_multipart_uploads(Bucket=BUCKET).get("Uploads")
