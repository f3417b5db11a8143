"""Artifacts: the store (paths, sha256, previews), the SDK inside a real session and outside one,
the HTTP routes, and the session page's artifact browser in headless Chromium."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from platform_helpers import LiveServer, wait_for

import haneul
from haneul.errors import Conflict, IntegrityError, InvalidInput, NotFound
from haneul.platform.client import Client
from haneul.platform.store import ArtifactStore, validate_artifact_path

# a 1x1 red PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cf"
    "c000000301010018dd8db00000000049454e44ae426082"
)


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", "a\\b", "a\x00b",
                                 "x" * 513, "d/" + "y" * 256])
def test_bad_artifact_paths_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="artifact path"):
        validate_artifact_path(bad)


def test_store_lists_verifies_and_previews(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    rec = store.put_chunks("preds/val.csv", iter([b"id,label\n", b"1,cat\n2,dog\n3,bird\n"]))
    assert rec["size"] == 28 and rec["media_type"] == "text/csv" and len(rec["sha256"]) == 64
    store.put_chunks("notes.txt", iter(["첫 줄\n둘째\n셋째\n".encode()]))
    store.put_chunks("cfg.json", iter([json.dumps([{"lr": 0.1, "bs": 8}, {"lr": 0.2, "opt": "adam"}]).encode()]))
    assert [r["path"] for r in store.list()] == ["cfg.json", "notes.txt", "preds/val.csv"]

    table = store.preview("preds/val.csv", lines=2)
    assert table["kind"] == "table" and table["columns"] == ["id", "label"]
    assert table["rows"] == [["1", "cat"], ["2", "dog"]] and table["truncated"] is True
    text = store.preview("notes.txt", lines=2)
    assert text["kind"] == "text" and text["lines"] == ["첫 줄", "둘째"] and text["truncated"] is True
    js = store.preview("cfg.json")
    assert js["columns"] == ["lr", "bs", "opt"] and js["rows"] == [[0.1, 8, None], [0.2, None, "adam"]]

    # replacing a file updates its record; a file and a folder cannot share a path
    store.put_chunks("notes.txt", iter([b"new\n"]))
    assert store.record("notes.txt")["size"] == 4
    with pytest.raises(Conflict):
        store.put_chunks("preds", iter([b"x"]))
    with pytest.raises(Conflict):
        store.put_chunks("notes.txt/inner", iter([b"x"]))

    (store.files / "preds" / "val.csv").write_bytes(b"id,label\n1,cow\n")  # changed behind the index's back
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get("preds/val.csv")
    with pytest.raises(NotFound):
        store.get("absent.txt")


def test_log_artifact_outside_a_session_copies_into_the_local_run(haneul_home: Path, tmp_path: Path) -> None:
    (tmp_path / "plots" / "sub").mkdir(parents=True)
    (tmp_path / "plots" / "loss.png").write_bytes(PNG)
    (tmp_path / "plots" / "sub" / "a.txt").write_text("a\n")
    (tmp_path / "config.yaml").write_text("lr: 0.1\n")
    recs = haneul.log_artifact(tmp_path / "plots")
    assert [r["path"] for r in recs] == ["plots/loss.png", "plots/sub/a.txt"]
    haneul.log_artifact(tmp_path / "config.yaml", name="run/config.yaml")
    local = haneul_home / "local" / "default" / "artifacts"
    assert (local / "files" / "plots" / "sub" / "a.txt").read_text() == "a\n"
    assert (local / "files" / "run" / "config.yaml").read_text() == "lr: 0.1\n"
    listed = ArtifactStore(local).list()
    assert [r["path"] for r in listed] == ["plots/loss.png", "plots/sub/a.txt", "run/config.yaml"]
    assert listed[0]["media_type"] == "image/png"
    with pytest.raises(InvalidInput, match="does not exist"):
        haneul.log_artifact(tmp_path / "absent")
    with pytest.raises(InvalidInput, match="artifact path"):
        haneul.log_artifact(tmp_path / "config.yaml", name="../up.yaml")


def _session_with_token(api: TestClient, token: str = "t") -> int:
    """A session whose token is known, so a test can call the upload route as the session would."""
    from haneul.platform.db import Session
    from haneul.platform.service import _hash_token

    sid = api.post("/api/v1/sessions", json={"command": ["python", "-c", "pass"]}).json()["id"]
    with api.app.state.platform.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(Session.__table__.update().where(Session.id == sid).values(token_hash=_hash_token(token)))
    return sid


def test_routes_check_token_paths_and_checksums(api: TestClient) -> None:
    sid = _session_with_token(api)
    auth = {"Authorization": "Bearer t"}
    base = f"/api/v1/sessions/{sid}/artifacts"
    assert api.put(f"{base}/a.txt", content=b"x", headers={"Authorization": ""}).status_code == 401
    assert api.put(f"{base}/a.txt", content=b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # dot segments percent-encoded: an HTTP client would resolve plain ones before sending
    for bad in ("..%2Fx", "a%2F..%2Fb", "a//b", "%2Fetc%2Fpasswd", "x" * 600):
        res = api.put(f"{base}/{bad}", content=b"x", headers=auth)
        assert res.status_code == 400, bad
        assert res.json()["error"]["code"] == "invalid_input" and "\n" not in res.json()["error"]["message"]
    res = api.put(f"{base}/eval/scores.tsv", content=b"k\tv\nacc\t0.9\n", headers=auth)
    assert res.status_code == 201 and res.json()["path"] == "eval/scores.tsv"
    assert api.get(base).json()[0]["media_type"] == "text/tab-separated-values"
    got = api.get(f"{base}/eval/scores.tsv")
    assert got.content == b"k\tv\nacc\t0.9\n" and got.headers["x-haneul-sha256"] == res.json()["sha256"]
    assert got.headers["content-security-policy"] == "sandbox"
    preview = api.get(f"{base}/eval/scores.tsv", params={"preview": 1}).json()
    assert preview["kind"] == "table" and preview["rows"] == [["acc", "0.9"]]
    assert api.get(f"{base}/eval/scores.tsv", params={"preview": 1, "lines": 0}).status_code == 400
    assert api.get(f"{base}/absent.txt").status_code == 404
    assert api.get("/api/v1/sessions/999/artifacts").status_code == 404

    platform = api.app.state.platform  # type: ignore[attr-defined]
    stored = platform._artifact_store(sid).files / "eval" / "scores.tsv"
    stored.write_bytes(b"k\tv\nacc\t0.1\n")  # the same size, other bytes
    res = api.get(f"{base}/eval/scores.tsv")
    assert res.status_code == 500 and res.json()["error"]["code"] == "integrity_error"


def _run(live_server: LiveServer, tmp_path: Path, script: str) -> int:
    (tmp_path / "job.py").write_text(textwrap.dedent(script))
    out = live_server.cli("run", "--", "python", "job.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    sid = int(out.stdout.strip())
    client = Client(live_server.url)
    status = wait_for(lambda: client.get_session(sid)["status"] not in ("queued", "running") and
                      client.get_session(sid)["status"], timeout=60)
    assert status == "done", live_server.cli("logs", str(sid)).stdout
    return sid


def test_a_session_logs_a_file_and_a_folder(live_server: LiveServer, tmp_path: Path) -> None:
    sid = _run(live_server, tmp_path, """
        import pathlib, haneul
        out = pathlib.Path("out")
        (out / "plots").mkdir(parents=True)
        (out / "plots" / "loss.png").write_bytes(bytes.fromhex("89504e47"))
        (out / "preds.csv").write_text("id,label\\n" + "".join(f"{i},c{i}\\n" for i in range(100)))
        recs = haneul.log_artifact(out)
        haneul.log_artifact("job.py", name="code/job.py")
        print(len(recs), "logged")
    """)
    client = Client(live_server.url)
    listed = client.list_artifacts(sid)
    assert [(r["path"], r["media_type"]) for r in listed] == [
        ("code/job.py", "text/x-python"), ("out/plots/loss.png", "image/png"), ("out/preds.csv", "text/csv")]
    assert all(set(r) == {"path", "size", "sha256", "media_type", "created_at"} for r in listed)
    dest = client.download_artifact(sid, "out/plots/loss.png", tmp_path / "got.png")
    assert dest.read_bytes() == bytes.fromhex("89504e47")
    preview = client.artifact_preview(sid, "out/preds.csv", lines=5)
    assert preview["columns"] == ["id", "label"] and preview["rows"][-1] == ["4", "c4"] and preview["truncated"]
    assert client.artifact_preview(sid, "out/plots/loss.png")["kind"] == "none"
    with pytest.raises(NotFound):
        client.download_artifact(sid, "out/nope.txt", tmp_path / "nope")


@pytest.mark.browser
def test_session_page_previews_an_image_and_a_csv(live_server: LiveServer, tmp_path: Path, page) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "red.png").write_bytes(PNG)
    sid = _run(live_server, tmp_path, """
        import pathlib, haneul
        pathlib.Path("scores.csv").write_text("epoch,acc\\n1,0.5\\n2,0.75\\n")
        haneul.log_artifact("red.png", name="plots/red.png")
        haneul.log_artifact("scores.csv")
    """)
    page.goto(live_server.login_url(f"/sessions/{sid}"))
    page.wait_for_selector("#artifacts [data-path='plots/red.png']", timeout=20_000)
    # grouped by folder: the top level, then plots/ holding red.png under its short name
    groups = page.eval_on_selector_all(
        "#artifact-list tbody", "bs => bs.map(b => [...b.querySelectorAll('tr')].map(r => r.innerText.split('\\t')[0]))")
    assert groups == [["./", "scores.csv"], ["plots/", "red.png"]]
    page.click("#artifacts [data-path='plots/red.png'] .artifact-show")
    page.wait_for_function("(() => { const i = document.querySelector('#artifact-preview img');"
                           " return i && i.complete && i.naturalWidth === 1; })()", timeout=20_000)
    page.click("#artifacts [data-path='scores.csv'] .artifact-show")
    page.wait_for_selector("#artifact-preview table", timeout=20_000)
    cells = page.eval_on_selector_all("#artifact-preview table tbody tr", "rows => rows.map(r => r.innerText)")
    assert [c.split() for c in cells] == [["1", "0.5"], ["2", "0.75"]]
    assert page.eval_on_selector_all("#artifact-preview thead th", "h => h.map(x => x.innerText)") == ["epoch", "acc"]
