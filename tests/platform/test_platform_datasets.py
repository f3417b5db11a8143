"""Datasets: push / ls / info / pull round trips, deduplication, the hidden test part, read-only mounts for
sessions, bad input, removal of unreferenced blobs, team separation and the pages."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from platform_helpers import start_server

from haneul.errors import Conflict, Forbidden, InvalidInput, NotFound
from haneul.platform.client import Client
from haneul.platform.datasets import dataset_store, pull, push, scan
from haneul.platform.testing import wait_for

PY = sys.executable
# the CLI's client passes timeouts, which TestClient (standing in for the server here) ignores
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def _client(api: TestClient) -> Client:
    """The CLI's client, speaking to the in-process app (with the local admin's token)."""
    client = Client("http://testserver", token="unused")
    client._http = api
    return client


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _blobs(api: TestClient) -> set[str]:
    root = Path(dataset_store(api.app.state.platform).blobs.root) / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TRAIN = {"a.txt": b"hello\n", "sub/b.bin": bytes(range(256)) * 40, "sub/deep/c.csv": "문장,label\n좋다,1\n".encode()}
TEST = {"test.csv": b"hidden-answer,1\n"}
EVAL = b"import json\nprint(json.dumps({'acc': 1.0}))\n"


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "eval.py").write_bytes(EVAL)
    return {"train": _tree(tmp_path / "train", TRAIN), "test": _tree(tmp_path / "test", TEST),
            "eval": tmp_path / "eval.py"}


def test_push_info_pull_round_trip_and_dedup(api: TestClient, trees: dict[str, Path], tmp_path: Path) -> None:
    client = _client(api)
    plan = scan("nsmc", trees["train"], test=trees["test"], eval_script=trees["eval"], metric="acc",
                direction="max", description="movie reviews")
    first = push(client, plan)
    assert (first.version, first.created, first.files) == (1, True, 3)
    assert first.size == sum(map(len, TRAIN.values()))
    assert first.uploaded_bytes == first.size + len(TEST["test.csv"]) + len(EVAL)

    info = api.get("/api/v1/datasets/nsmc").json()
    v = info["version"]
    assert (info["team"], info["public"], info["description"]) == ("local", False, "movie reviews")
    assert (v["eval_script"], v["metric"], v["direction"], v["test_files"]) == ("eval.py", "acc", "max", 1)
    files = api.get("/api/v1/datasets/nsmc/versions/1/files").json()
    assert {f["path"]: f["sha256"] for f in files["items"]} == {k: _sha(b) for k, b in TRAIN.items()}
    assert [d["name"] for d in api.get("/api/v1/datasets").json()] == ["nsmc"]

    out = pull(client, "nsmc", tmp_path / "out")
    assert out["version"] == 1
    got = {str(p.relative_to(tmp_path / "out")): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert got == TRAIN  # bytes identical, and no test file, no eval script

    # the same tree again: nothing uploaded, no new version
    again = push(client, scan("nsmc", trees["train"], test=trees["test"], eval_script=trees["eval"], metric="acc"))
    assert (again.version, again.created, again.uploaded_files, again.uploaded_bytes) == (1, False, 0, 0)

    # one file changed: only that file travels, and a version 2 appears
    (trees["train"] / "a.txt").write_bytes(b"hello, world\n")
    second = push(client, scan("nsmc", trees["train"], test=trees["test"], eval_script=trees["eval"], metric="acc"))
    assert (second.version, second.created, second.uploaded_files, second.uploaded_bytes) == (2, True, 1, 13)
    assert [x["version"] for x in api.get("/api/v1/datasets/nsmc").json()["versions"]] == [1, 2]
    old = pull(client, "nsmc:1", tmp_path / "v1")
    assert old["version"] == 1 and (tmp_path / "v1" / "a.txt").read_bytes() == b"hello\n"


def test_hidden_test_part_is_served_by_no_route(api: TestClient, trees: dict[str, Path]) -> None:
    push(_client(api), scan("comp", trees["train"], test=trees["test"], eval_script=trees["eval"], metric="acc"))
    test_sha = _sha(TEST["test.csv"])
    assert api.get("/api/v1/datasets/comp/versions/1/files/test.csv").status_code == 404
    listed = json.dumps(api.get("/api/v1/datasets/comp/versions/1/files", params={"limit": 10000}).json())
    info = json.dumps(api.get("/api/v1/datasets/comp").json())
    page = api.get("/datasets/comp").text
    for text in (listed, info, page):
        assert test_sha not in text and "hidden-answer" not in text and "test.csv" not in text
    # no route in the whole API takes a blob by its checksum for reading
    spec = api.get("/api/v1/openapi.json").json()
    assert not [p for p, ops in spec["paths"].items() if "_blobs/{sha256}" in p and "get" in ops]
    # the evaluator's service-level access: a local folder with the test part, apart from the mounts
    store = dataset_store(api.app.state.platform)
    folder = store.test_part_dir(name="comp", version=1)
    assert (folder / "test.csv").read_bytes() == TEST["test.csv"]
    _, _, mount = store.mount(principal=_admin(), ref="comp:1")
    assert sorted(p.name for p in mount.rglob("*") if p.is_file()) == ["a.txt", "b.bin", "c.csv"]
    assert not folder.is_relative_to(mount.parent.parent)


def _admin():  # noqa: ANN202 - the local admin, as the routes see it today
    from haneul.platform.plugins import Principal

    return Principal()


def test_symlink_outside_the_tree_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data", {"a.txt": b"a"})
    (tmp_path / "secret.txt").write_bytes(b"s")
    (root / "inside.txt").symlink_to(root / "a.txt")
    _tree(root, {"sub/b.txt": b"b"})
    (root / "alias").symlink_to(root / "sub")  # a link to a folder inside: walked as that folder
    (root / "sub" / "loop").symlink_to(root)  # a link to a folder holding it: not followed
    plan = scan("links", root)
    assert sorted(f.path for f in plan.files) == ["a.txt", "alias/b.txt", "inside.txt", "sub/b.txt"]
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInput, match="leak.txt is a symbolic link to .* outside"):
        scan("links", root)


def test_missing_path_and_bad_names_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        scan("x", tmp_path / "nope")
    with pytest.raises(InvalidInput, match="dataset name 'Bad Name' is invalid"):
        scan("Bad Name", tmp_path)


def test_vanishing_or_growing_file_commits_no_version(api: TestClient, tmp_path: Path) -> None:
    client = _client(api)
    root = _tree(tmp_path / "d", {"keep.txt": b"k" * 10, "gone.txt": b"g" * 10})
    plan = scan("flaky", root)
    (root / "gone.txt").unlink()
    with pytest.raises(InvalidInput, match="gone.txt vanished during the push"):
        push(client, plan)
    assert api.get("/api/v1/datasets/flaky").status_code == 404

    _tree(root, {"gone.txt": b"g" * 10})
    plan = scan("flaky", root)
    (root / "gone.txt").write_bytes(b"g" * 20)
    with pytest.raises(InvalidInput, match="gone.txt changed during the push"):
        push(client, plan)
    assert api.get("/api/v1/datasets/flaky").status_code == 404


def test_upload_with_wrong_bytes_is_refused_and_discarded(api: TestClient) -> None:
    sha = _sha(b"the real bytes")
    res = api.put(f"/api/v1/datasets/_blobs/{sha}", content=b"other bytes")
    assert res.status_code == 400 and "sha256" in res.json()["error"]["message"]
    assert _blobs(api) == set()
    tmp = Path(dataset_store(api.app.state.platform).blobs.root) / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert api.post("/api/v1/datasets/_blobs/missing", json={"sha256": [sha]}).json() == {"missing": [sha]}
    # a version naming a blob that was never uploaded is refused whole
    res = api.post("/api/v1/datasets/ghost/versions",
                   json={"files": [{"part": "train", "path": "a", "size": 14, "sha256": sha}]})
    assert res.status_code == 400 and "not uploaded" in res.json()["error"]["message"]
    assert api.get("/api/v1/datasets/ghost").status_code == 404


def test_pull_refuses_a_non_empty_destination_and_unknown_versions(api: TestClient, trees: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    client = _client(api)
    push(client, scan("small", trees["train"]))
    dest = _tree(tmp_path / "dest", {"mine.txt": b"keep me"})
    with pytest.raises(InvalidInput, match="not empty.*--force"):
        pull(client, "small", dest)
    assert (dest / "mine.txt").read_bytes() == b"keep me"
    with pytest.raises(NotFound, match="small:7 not found; its latest is small:1"):
        pull(client, "small:7", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    pull(client, "small", dest, force=True)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "sub"]
    for path in ("/api/v1/datasets/nothing", "/api/v1/datasets/nothing/versions/1/files", "/datasets/nothing"):
        res = api.get(path)
        assert res.status_code == 404 and ("dataset 'nothing' not found" in res.text
                                           or "dataset &#39;nothing&#39; not found" in res.text)


def test_rm_deletes_only_unreferenced_blobs(api: TestClient, tmp_path: Path) -> None:
    client = _client(api)
    shared, only1, only2 = b"shared by both versions", b"first only", b"second only"
    root = _tree(tmp_path / "d", {"s.txt": shared, "x.txt": only1})
    push(client, scan("gc", root))
    (root / "x.txt").write_bytes(only2)
    push(client, scan("gc", root))
    push(client, scan("other", _tree(tmp_path / "o", {"same.txt": only1})))
    assert _blobs(api) == {_sha(shared), _sha(only1), _sha(only2)}

    res = api.delete("/api/v1/datasets/gc/versions/1").json()
    assert res["versions"] == [1] and res["blobs_removed"] == 0  # only1 is still in "other"
    res = api.delete("/api/v1/datasets/other").json()
    assert res["blobs_removed"] == 1 and _blobs(api) == {_sha(shared), _sha(only2)}
    assert api.get("/api/v1/datasets/gc/versions/1/files").status_code == 404
    res = api.delete("/api/v1/datasets/gc").json()
    assert res["dataset_removed"] and _blobs(api) == set()
    assert api.get("/api/v1/datasets").json() == []


def test_sessions_mount_the_train_part_read_only(api: TestClient, trees: dict[str, Path]) -> None:
    push(_client(api), scan("mnt", trees["train"], test=trees["test"]))
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "print('hi')"], "dataset": "mnt"})
    assert res.status_code == 201, res.text
    s = res.json()
    assert s["tags"]["dataset"] == "mnt:1"
    mount = Path(s["env"]["HANEUL_DATASET_PATH"])
    assert (mount / "sub" / "b.bin").read_bytes() == TRAIN["sub/b.bin"]
    assert not (mount / "test.csv").exists()
    for path in [mount, *mount.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o555 if path.is_dir() else 0o444), path
    # a second session shares the same folder
    again = api.post("/api/v1/sessions", json={"command": [PY, "-c", "print('hi')"], "dataset": "mnt:1"}).json()
    assert again["env"]["HANEUL_DATASET_PATH"] == str(mount)
    # unknown dataset or version: 404 naming it, no session made
    before = api.get("/api/v1/sessions").json()["total"]
    for ref, words in (("nope", "dataset 'nope' not found"), ("mnt:9", "mnt:9 not found")):
        res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "print('hi')"], "dataset": ref})
        assert res.status_code == 404 and words in res.json()["error"]["message"]
    assert api.get("/api/v1/sessions").json()["total"] == before
    # a version a running session uses cannot be removed under it
    busy = api.post("/api/v1/sessions", json={"command": [PY, "-c", "import time; time.sleep(30)"],
                                              "dataset": "mnt"}).json()
    try:
        res = api.delete("/api/v1/datasets/mnt")
        assert res.status_code == 409 and "dataset mnt is in use by session" in res.json()["error"]["message"]
    finally:
        api.post(f"/api/v1/sessions/{busy['id']}/stop")


def test_pages_list_and_describe_datasets(api: TestClient, trees: dict[str, Path]) -> None:
    push(_client(api), scan("pages-ds", trees["train"], test=trees["test"], eval_script=trees["eval"], metric="acc",
                            direction="min", description="a page test"))
    listing = api.get("/datasets")
    assert listing.status_code == 200
    assert 'data-dataset="pages-ds"' in listing.text and "a page test" in listing.text
    page = api.get("/datasets/pages-ds")
    assert page.status_code == 200
    text = page.text
    assert "sub/deep/c.csv" in text and f"{len(TRAIN['sub/b.bin']):,}" in text  # files with exact sizes
    assert "print(json.dumps({&#39;acc&#39;: 1.0}))" in text  # the eval script, escaped
    assert "No submissions yet" in text and "lower is better" in text
    assert api.get("/datasets/pages-ds", params={"version": 5}).status_code == 404


def test_many_files_page_and_file_list_paginate(api: TestClient, tmp_path: Path) -> None:
    root = _tree(tmp_path / "many", {f"f{i:03d}.txt": str(i).encode() for i in range(150)})
    push(_client(api), scan("many", root))
    first = api.get("/api/v1/datasets/many/versions/1/files", params={"limit": 100}).json()
    second = api.get("/api/v1/datasets/many/versions/1/files", params={"offset": 100, "limit": 100}).json()
    assert first["total"] == 150 and len(first["items"]) == 100 and len(second["items"]) == 50
    assert second["items"][-1]["path"] == "f149.txt"
    page2 = api.get("/datasets/many", params={"page": 2}).text
    assert "f149.txt" in page2 and "f000.txt" not in page2 and "page 2 of 2" in page2


# --------------------------------------------------------------------------------------------------
# teams: private datasets are invisible to other teams, public ones readable, viewers read only


def _user(api: TestClient, name: str, team: str, role: str = "member") -> dict[str, str]:
    res = api.post("/api/v1/users", json={"name": name, "team": team, "role": role})
    assert res.status_code == 201, res.text
    token = api.post(f"/api/v1/users/{name}/tokens", json={}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_team_separation(api: TestClient, trees: dict[str, Path], tmp_path: Path) -> None:
    for team in ("alpha", "beta"):
        assert api.post("/api/v1/teams", json={"name": team}).status_code == 201
    alice, bob = _user(api, "alice", "alpha"), _user(api, "bob", "beta")
    viewer = _user(api, "vic", "alpha", role="viewer")

    def as_(headers: dict[str, str]) -> Client:
        client = _client(api)
        client._http = _Headers(api, headers)  # type: ignore[assignment]
        return client

    private = _tree(tmp_path / "private", {**TRAIN, "alpha-only.txt": b"alpha's own"})
    push(as_(alice), scan("priv", private))
    push(as_(alice), scan("open", trees["train"], test=trees["test"], public=True))
    assert api.get("/api/v1/datasets/priv").json()["team"] == "alpha"

    # another team: the private one does not exist for it, the public one reads but not its test part
    assert api.get("/api/v1/datasets/priv", headers=bob).status_code == 404
    assert api.get("/api/v1/datasets/priv/versions/1/files/a.txt", headers=bob).status_code == 404
    assert [d["name"] for d in api.get("/api/v1/datasets", headers=bob).json()] == ["open"]
    assert api.get("/api/v1/datasets/open/versions/1/files/a.txt", headers=bob).content == TRAIN["a.txt"]
    assert api.get("/datasets/priv", headers=bob).status_code == 404
    # nor may it write or remove them, nor take the name
    assert api.delete("/api/v1/datasets/open", headers=bob).status_code == 403
    assert api.delete("/api/v1/datasets/priv", headers=bob).status_code == 404
    with pytest.raises(Conflict, match="taken by another team"):
        push(as_(bob), scan("priv", _tree(tmp_path / "bobs", {"b.txt": b"bob's"})))
    # a session of team beta cannot mount alpha's private dataset, but can mount the public one
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "1"], "dataset": "priv"}, headers=bob)
    assert res.status_code == 404
    res = api.post("/api/v1/sessions", json={"command": [PY, "-c", "1"], "dataset": "open"}, headers=bob)
    assert res.status_code == 201 and res.json()["tags"]["dataset"] == "open:1"

    # a checksum does not tell bob whether alpha's private file exists, nor let him name it unsent
    secret = {"part": "train", "path": "x.txt", "size": len(b"alpha's own"), "sha256": _sha(b"alpha's own")}
    asked = api.post("/api/v1/datasets/_blobs/missing", json={"sha256": [secret["sha256"]]}, headers=bob)
    assert asked.json() == {"missing": [secret["sha256"]]}
    res = api.post("/api/v1/datasets/bobs/versions", json={"files": [secret]}, headers=bob)
    assert res.status_code == 400 and "not uploaded" in res.json()["error"]["message"]
    assert api.put(f"/api/v1/datasets/_blobs/{secret['sha256']}", content=b"alpha's own", headers=bob).status_code == 201
    assert api.post("/api/v1/datasets/bobs/versions", json={"files": [secret]}, headers=bob).status_code == 201
    test_file = {"part": "train", "path": "t.csv", "size": len(TEST["test.csv"]), "sha256": _sha(TEST["test.csv"])}
    res = api.post("/api/v1/datasets/bobs/versions", json={"files": [test_file]}, headers=bob)
    assert res.status_code == 400  # the public dataset's hidden test part is not his to name
    # alice, who can read it, need not send it again
    asked = api.post("/api/v1/datasets/_blobs/missing", json={"sha256": [secret["sha256"]]}, headers=alice)
    assert asked.json() == {"missing": []}

    # a viewer of the team reads but does not push or remove
    assert api.get("/api/v1/datasets/priv", headers=viewer).status_code == 200
    assert api.delete("/api/v1/datasets/priv/versions/1", headers=viewer).status_code == 403
    with pytest.raises(Forbidden, match="may not change dataset 'priv'"):  # nothing to upload: the commit says no
        push(as_(viewer), scan("priv", private, description="changed"))
    (private / "new.txt").write_bytes(b"new")
    with pytest.raises(Forbidden, match="vic may only read datasets"):  # nor may it store new files
        push(as_(viewer), scan("priv", private))
    assert [x["version"] for x in api.get("/api/v1/datasets/priv").json()["versions"]] == [1]
    assert api.get("/api/v1/datasets/priv").json()["description"] == ""


class _Headers:
    """An httpx-like wrapper sending every request with other credentials."""

    def __init__(self, api: TestClient, headers: dict[str, str]) -> None:
        self.api, self.headers = api, headers

    def request(self, method: str, url: str, **kwargs):  # noqa: ANN003, ANN201
        return self.api.request(method, url, headers={**kwargs.pop("headers", {}), **self.headers}, **kwargs)

    def stream(self, method: str, url: str, **kwargs):  # noqa: ANN003, ANN201
        return self.api.stream(method, url, headers={**kwargs.pop("headers", {}), **self.headers}, **kwargs)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# the CLI and a real session, against a live server


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A home any user can walk into: the session below drops to an unprivileged user when tests run
    as root (for root, permission bits alone do not make a file read-only)."""
    home = Path(tempfile.mkdtemp(prefix="haneul-ds-"))
    os.chmod(home, 0o755)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


SESSION_CODE = """
import json, pathlib, haneul
root = pathlib.Path(haneul.DATASET_PATH)
data = (root / "sub" / "b.bin").read_bytes()
attempts = {}
for what, act in (("overwrite", lambda: (root / "a.txt").write_text("x")),
                  ("create", lambda: (root / "new.txt").write_text("x"))):
    try:
        act()
        attempts[what] = "written"
    except OSError as exc:
        attempts[what] = type(exc).__name__
haneul.report(step=0, length=len(data))
haneul.flush()
print(json.dumps(attempts))
"""


@pytest.mark.slow
def test_cli_push_pull_and_run_with_a_dataset(open_home: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    server = start_server(open_home)
    try:
        cli = server.cli
        res = cli("dataset", "push", "cli-ds", str(trees["train"]), "--test", str(trees["test"]), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["version"] == 1
        res = cli("dataset", "push", "cli-ds", str(trees["train"]), "--test", str(trees["test"]))
        assert res.returncode == 0 and res.stdout.startswith("unchanged: cli-ds:1"), res.stdout + res.stderr
        ls = json.loads(cli("dataset", "ls", "--json").stdout)
        assert [(d["name"], d["latest"], d["files"]) for d in ls] == [("cli-ds", 1, 3)]
        info = json.loads(cli("dataset", "info", "cli-ds:1", "--json").stdout)
        assert sorted(f["path"] for f in info["files"]) == sorted(TRAIN)
        assert cli("dataset", "pull", "cli-ds", str(tmp_path / "p")).returncode == 0
        assert (tmp_path / "p" / "sub" / "deep" / "c.csv").read_bytes() == TRAIN["sub/deep/c.csv"]
        bad = cli("dataset", "pull", "cli-ds", str(tmp_path / "p"))
        assert bad.returncode != 0 and "--force" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        bad = cli("dataset", "push", "cli-ds", str(tmp_path / "nowhere"))
        assert bad.returncode != 0 and "does not exist" in bad.stderr

        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        res = cli("run", "--dataset", "cli-ds", "--json", "--", *drop, PY, "-c", SESSION_CODE, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        sid = json.loads(res.stdout)["id"]
        with server.http() as http:
            deadline = time.monotonic() + 60
            while (s := http.get(f"/api/v1/sessions/{sid}").json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            log = http.get(f"/api/v1/sessions/{sid}/logs").json()["lines"]
            assert s["status"] == "done", log
            assert json.loads(log[-1]) == {"overwrite": "PermissionError", "create": "PermissionError"}
            assert s["metrics"]["length"] == len(TRAIN["sub/b.bin"])
            assert s["tags"]["dataset"] == "cli-ds:1"
        res = cli("dataset", "rm", "cli-ds", "--yes", "--json")
        assert res.returncode == 0 and json.loads(res.stdout)["dataset_removed"], res.stderr
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# batches: many blobs in one upload, many files in one download


def _records(*blobs: tuple[str, bytes]) -> bytes:
    """A batch upload body: per blob a JSON header line, then its bytes."""
    return b"".join(json.dumps({"sha256": sha, "size": len(data)}).encode() + b"\n" + data for sha, data in blobs)


def test_batch_upload_discards_a_corrupted_record_and_refuses_malformed_bodies(api: TestClient) -> None:
    good, real, after = b"good bytes", b"the real bytes", b"never reached"
    body = _records((_sha(good), good), (_sha(real), b"the fake bytes"), (_sha(after), after))
    res = api.post("/api/v1/datasets/_blobs", content=body)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert _sha(real) in error["message"] and error["details"]["sha256"] == _sha(real)
    assert _blobs(api) == {_sha(good)}  # the record before it stays, the bad one and the rest do not
    tmp = Path(dataset_store(api.app.state.platform).blobs.root) / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []

    for bad, words in ((b"not json\n", "bad header"), (b'{"sha256": "x", "size": 1}\nx', "sha256 'x' is invalid"),
                       (b'{"size": -1}\n', "bad header"), (b"x" * 5000, "no header line"),
                       (_records((_sha(after), after))[:-3], "ended inside record 1")):
        res = api.post("/api/v1/datasets/_blobs", content=bad)
        assert res.status_code == 400 and words in res.json()["error"]["message"], (bad[:40], res.text)
    assert _blobs(api) == {_sha(good)}
    assert api.post("/api/v1/datasets/_blobs", content=b"").json() == {"files": 0, "bytes": 0, "stored": []}

    res = api.post("/api/v1/datasets/_blobs", content=_records((_sha(real), real), (_sha(b""), b"")))
    assert res.status_code == 201 and res.json()["files"] == 2 and res.json()["bytes"] == len(real)
    assert _blobs(api) == {_sha(good), _sha(real), _sha(b"")}


def _rewrite_after_hashing(monkeypatch: pytest.MonkeyPatch, name: str, data: bytes) -> None:
    """Make push() find ``name`` rewritten in place (same size and time) just after hashing it: only the
    server's sha256 check can see that."""
    from haneul.platform import datasets

    hash_file = datasets._hash

    def hash_then_rewrite(f: datasets.LocalFile) -> datasets.LocalFile:
        hashed = hash_file(f)
        if f.source.name == name:
            stat = f.source.stat()
            f.source.write_bytes(data)
            os.utime(f.source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return hashed

    monkeypatch.setattr(datasets, "_hash", hash_then_rewrite)


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_batch_splits_records_arriving_in_any_pieces(api: TestClient, piece: int) -> None:
    from haneul.platform.datasets import BlobBatch

    blobs = [b"", b"x", os.urandom(10_000), b"tail"]
    body = _records(*((_sha(b), b) for b in blobs))
    batch = BlobBatch(dataset_store(api.app.state.platform), _admin())
    for i in range(0, len(body), piece):
        if batch.feed(body[i:i + piece]):
            batch.run(batch.take())
    assert batch.close()["stored"] == [{"sha256": _sha(b), "size": len(b)} for b in blobs]
    assert _blobs(api) == {_sha(b) for b in blobs}
    for blob in blobs:
        assert Path(dataset_store(api.app.state.platform).blobs.path(_sha(blob))).read_bytes() == blob


def test_push_names_a_file_rewritten_in_place_during_the_upload(api: TestClient, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "d", {"a.txt": b"a" * 10, "b.txt": b"b" * 10})
    _rewrite_after_hashing(monkeypatch, "b.txt", b"c" * 10)
    with pytest.raises(InvalidInput, match="b.txt changed during the push"):
        push(_client(api), scan("rewritten", root))
    assert api.get("/api/v1/datasets/rewritten").status_code == 404
    assert _sha(b"c" * 10) not in _blobs(api) and _sha(b"b" * 10) not in _blobs(api)


def test_push_to_a_live_server_sends_files_straight_from_disk(open_home: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Over plain HTTP (local=False: not through the store's folder) the CLI's client sends each file with sendfile on a connection of its own: the
    same answers, errors and leftovers (none) as through httpx."""
    from haneul.platform import datasets

    files = {"a.bin": os.urandom(3000), "sub/b.bin": os.urandom(2 << 20), "empty": b""}
    root = _tree(tmp_path / "d", files)
    server = start_server(open_home)
    try:
        client = Client(server.url, token=server.token)
        assert datasets._plain_http(client)
        first = push(client, scan("live", root), local=False)
        assert (first.created, first.uploaded_files, first.uploaded_bytes) == (True, 3, sum(map(len, files.values())))
        assert pull(client, "live", tmp_path / "out", local=False)["files"] == 3
        assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]
        again = push(client, scan("live", root), local=False)
        assert (again.created, again.uploaded_bytes) == (False, 0)

        # rewritten in place after hashing: the server refuses the blob before the body (z.bin) ends
        _tree(root, {"c.bin": b"c" * 100, "z.bin": os.urandom(8 << 20)})
        with monkeypatch.context() as m:
            _rewrite_after_hashing(m, "c.bin", b"d" * 100)
            with pytest.raises(InvalidInput, match="c.bin changed during the push"):
                push(client, scan("live", root), threads=1, local=False)  # one batch: c.bin, then z.bin
        # cut short after hashing: the client stops the upload, the server keeps nothing of it (z.bin
        # goes: uploads run in parallel, and its batch may travel before c.bin's is refused)
        (root / "z.bin").unlink()
        _tree(root, {"c.bin": b"c" * 100})
        hash_file = datasets._hash

        def hash_then_truncate(f: datasets.LocalFile) -> datasets.LocalFile:
            hashed = hash_file(f)
            if f.path == "c.bin":
                stat = f.source.stat()
                f.source.write_bytes(b"c" * 10)
                os.utime(f.source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            return hashed

        monkeypatch.setattr(datasets, "_hash", hash_then_truncate)
        with pytest.raises(InvalidInput, match="c.bin changed"):
            push(client, scan("live", root), local=False)
        assert [v["version"] for v in client.request_json("GET", "/api/v1/datasets/live")["versions"]] == [1]
        store = open_home / "artifacts" / "datasets"
        blobs = {p.name for p in (store / "blobs").rglob("*") if p.is_file()}
        assert blobs == {_sha(b) for b in files.values()}  # neither c.bin's bytes nor z.bin after it
        assert wait_for(lambda: not any((store / "tmp").iterdir()), timeout=10)  # a cut upload leaves nothing
        client.close()
    finally:
        server.stop()


def test_push_uploads_while_later_files_are_still_being_hashed(api: TestClient, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from haneul.platform import datasets

    files = {f"f{i}.bin": os.urandom(100 + i) for i in range(6)}
    root = _tree(tmp_path / "d", files)
    monkeypatch.setattr(datasets, "BATCH_FILES", 2)
    first_sent = threading.Event()
    hash_file, send_batch = datasets._hash, datasets._send_batch

    def hash_waiting_for_the_first_upload(f: datasets.LocalFile) -> datasets.LocalFile:
        if f.path == "f5.bin":  # the last file is hashed only once the first batch has travelled
            assert first_sent.wait(10), "no upload started before the last file was hashed"
        return hash_file(f)

    def send(client: Client, batch: list[datasets.LocalFile]) -> int:
        sent = send_batch(client, batch)
        first_sent.set()
        return sent

    monkeypatch.setattr(datasets, "_hash", hash_waiting_for_the_first_upload)
    monkeypatch.setattr(datasets, "_send_batch", send)
    result = push(_client(api), scan("overlap", root), threads=2)
    assert (result.created, result.uploaded_files, result.uploaded_bytes) == (True, 6, sum(map(len, files.values())))
    assert _blobs(api) == {_sha(b) for b in files.values()}
    # pushed again, nothing travels, and a copy of a file inside the tree is sent once
    again = push(_client(api), scan("overlap", root), threads=2)
    assert (again.created, again.uploaded_files, again.uploaded_bytes) == (False, 0, 0)
    _tree(root, {"copy.bin": files["f0.bin"], "new.bin": b"new", "new-copy.bin": b"new"})
    third = push(_client(api), scan("overlap", root), threads=2)
    assert (third.version, third.uploaded_files, third.uploaded_bytes) == (2, 1, 3)


def test_pull_in_many_batches(api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from haneul.platform import datasets

    files = {f"d{i % 3}/f{i:03d}.bin": os.urandom(i * 7) for i in range(40)}  # f000.bin is empty
    client = _client(api)
    monkeypatch.setattr(datasets, "BATCH_FILES", 6)
    assert push(client, scan("batches", _tree(tmp_path / "src", files)), threads=3).uploaded_files == 40
    out = pull(client, "batches", tmp_path / "out", threads=3)
    assert out["files"] == 40
    got = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*")
           if p.is_file()}
    assert got == files
    # the answer itself: records in the order asked, each a JSON line and the file's bytes
    res = api.post("/api/v1/datasets/batches/versions/1/download", json={"paths": ["d1/f001.bin", "d0/f000.bin"]})
    head = json.dumps({"path": "d1/f001.bin", "size": 7, "sha256": _sha(files["d1/f001.bin"])}, separators=(",", ":"))
    empty = json.dumps({"path": "d0/f000.bin", "size": 0, "sha256": _sha(b"")}, separators=(",", ":"))
    assert res.content == head.encode() + b"\n" + files["d1/f001.bin"] + empty.encode() + b"\n"
    res = api.post("/api/v1/datasets/batches/versions/1/download", json={"paths": ["d1/f001.bin", "nope.bin"]})
    assert res.status_code == 404 and "'nope.bin' not found" in res.json()["error"]["message"]


def test_batches_check_every_file_against_the_caller(api: TestClient, trees: dict[str, Path], tmp_path: Path) -> None:
    for team in ("alpha", "beta"):
        assert api.post("/api/v1/teams", json={"name": team}).status_code == 201
    alice, bob = _user(api, "alice", "alpha"), _user(api, "bob", "beta")
    viewer = _user(api, "vic", "beta", role="viewer")
    client = _client(api)
    client._http = _Headers(api, alice)  # type: ignore[assignment]
    secret = b"alpha's own"
    push(client, scan("priv", _tree(tmp_path / "private", {**TRAIN, "alpha-only.txt": secret})))
    push(client, scan("open", trees["train"], test=trees["test"], public=True))
    store = dataset_store(api.app.state.platform)

    # uploads: another team's checksum with other bytes is refused and leaves alpha's blob as it was
    res = api.post("/api/v1/datasets/_blobs", content=_records((_sha(b"bob's"), b"bob's"), (_sha(secret), b"x" * 11)),
                   headers=bob)
    assert res.status_code == 400 and res.json()["error"]["details"]["sha256"] == _sha(secret)
    assert Path(store.blobs.path(_sha(secret))).read_bytes() == secret
    named = {"part": "train", "path": "x.txt", "size": len(secret), "sha256": _sha(secret)}
    res = api.post("/api/v1/datasets/bobs/versions", json={"files": [named]}, headers=bob)
    assert res.status_code == 400 and "not uploaded" in res.json()["error"]["message"]
    res = api.post("/api/v1/datasets/_blobs", content=_records((_sha(b"v"), b"v")), headers=viewer)
    assert res.status_code == 403 and _sha(b"v") not in _blobs(api)

    # downloads: another team's private file is not there, nor is a public dataset's hidden test part
    res = api.post("/api/v1/datasets/priv/versions/1/download", json={"paths": ["alpha-only.txt"]}, headers=bob)
    assert res.status_code == 404 and "alpha" not in res.text
    res = api.post("/api/v1/datasets/open/versions/1/download", json={"paths": ["a.txt", "test.csv"]}, headers=bob)
    assert res.status_code == 404 and "hidden-answer" not in res.text and _sha(TEST["test.csv"]) not in res.text
    res = api.post("/api/v1/datasets/open/versions/1/download", json={"paths": ["a.txt"]}, headers=bob)
    assert res.status_code == 200 and res.content.endswith(b"\n" + TRAIN["a.txt"])
    res = api.post("/api/v1/datasets/priv/versions/1/download", json={"paths": ["alpha-only.txt"]}, headers=alice)
    assert res.status_code == 200 and res.content.endswith(b"\n" + secret)


# --------------------------------------------------------------------------------------------------
# the same machine: push and pull through the store's folder


def test_on_the_servers_machine_push_and_pull_go_through_the_stores_folder(
        open_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same answers as over HTTP, no byte through it and none hashed by the client (the server
    hashes), a file changed while copied refused, and nothing left in the incoming folder."""
    from haneul.platform import datasets, datasets_local
    from haneul.platform.datasets_local import PROBE, discover

    files = {"a.bin": os.urandom(3000), "sub/b.bin": os.urandom(2 << 20), "empty": b"", "copy.bin": b""}
    files["copy.bin"] = files["a.bin"]  # the same bytes twice: one blob
    root = _tree(tmp_path / "d", files)
    server = start_server(open_home)
    try:
        client = Client(server.url, token=server.token)
        host = discover(client)
        store = open_home / "artifacts" / "datasets"
        assert host is not None and host.incoming == store / "incoming" and host.blobs == store / "blobs"

        def not_here(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("bytes went over HTTP, or the client hashed")

        with monkeypatch.context() as m:
            for name in ("_post_files", "_post_streamed", "_hash"):
                m.setattr(datasets, name, not_here)
            first = push(client, scan("here", root))
            unique = {_sha(b): len(b) for b in files.values()}
            assert (first.created, first.files, first.uploaded_files, first.uploaded_bytes) == (
                True, 4, len(unique), sum(unique.values()))
            assert pull(client, "here", tmp_path / "out")["files"] == 4
            assert {p: (tmp_path / "out" / p).read_bytes() for p in files} == files
            again = push(client, scan("here", root))
            assert (again.created, again.version, again.uploaded_files, again.uploaded_bytes) == (False, 1, 0, 0)
        listed = {f["path"]: f["sha256"] for f in client.request_json("GET", "/api/v1/datasets/here/versions/1/files")["items"]}
        assert listed == {p: _sha(b) for p, b in files.items()}  # the server's checksums were committed
        blob = store / "blobs" / _sha(files["a.bin"])[:2] / _sha(files["a.bin"])
        assert stat.S_IMODE(blob.stat().st_mode) == 0o444

        # rewritten while it was being copied: refused, nothing committed, nothing left behind
        _tree(root, {"c.bin": b"c" * 100})
        copy_in = datasets_local.copy_in

        def copy_then_touch(host: Any, f: datasets.LocalFile) -> str:
            name = copy_in(host, f)
            if f.path == "c.bin":
                f.source.write_bytes(b"d" * 100)
                os.utime(f.source, ns=(f.mtime_ns + 10**9, f.mtime_ns + 10**9))
            return name

        with monkeypatch.context() as m:
            m.setattr(datasets_local, "copy_in", copy_then_touch)
            with pytest.raises(InvalidInput, match="c.bin changed during the push"):
                push(client, scan("here", root))
        assert [v["version"] for v in client.request_json("GET", "/api/v1/datasets/here")["versions"]] == [1]
        assert [p.name for p in (store / "incoming").iterdir()] == [PROBE]

        # the disk under the store goes bad: a size check catches a cut blob, --verify a changed one
        from haneul.errors import IntegrityError

        b_blob = store / "blobs" / _sha(files["sub/b.bin"])[:2] / _sha(files["sub/b.bin"])
        good = b_blob.read_bytes()
        os.chmod(b_blob, 0o644)
        b_blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, other bytes
        assert pull(client, "here", tmp_path / "unverified")["files"] == 4  # by size: not seen
        with pytest.raises(IntegrityError, match="do not match their sha256"):
            pull(client, "here", tmp_path / "verified", verify=True)
        b_blob.write_bytes(good[:-5])
        with pytest.raises(IntegrityError, match="do not match their size"):
            pull(client, "here", tmp_path / "cut")
        assert not (tmp_path / "verified").exists() and not (tmp_path / "cut").exists()  # nothing half-written
        b_blob.write_bytes(good)

        # a blob this user cannot read here: that batch comes over HTTP instead
        def unreadable(*args: Any, **kwargs: Any) -> int:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(datasets_local, "copy_out", unreadable)
        assert pull(client, "here", tmp_path / "again")["files"] == 4
        assert (tmp_path / "again" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]
        client.close()
    finally:
        server.stop()


def test_pushing_again_on_the_servers_machine_copies_only_what_changed(
        open_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checksums remembered from the first push (by inode, size and times) spare the unchanged files
    a copy and a read; a rewritten file is copied and hashed again, even with its old mtime put back."""
    from haneul.platform import datasets_local
    from haneul.platform.datasets_local import ChecksumCache

    monkeypatch.setattr(ChecksumCache, "SETTLE_NS", 0)  # the files were written a moment ago
    files = {f"f{i}.bin": os.urandom(1000 + i) for i in range(5)}
    root = _tree(tmp_path / "d", files)
    copied: list[str] = []
    copy_in = datasets_local.copy_in

    def counting(host: Any, f: Any) -> str:
        copied.append(f.path)
        return copy_in(host, f)

    monkeypatch.setattr(datasets_local, "copy_in", counting)
    server = start_server(open_home)
    try:
        client = Client(server.url, token=server.token)
        assert push(client, scan("again", root)).uploaded_files == 5 and len(copied) == 5
        copied.clear()
        second = push(client, scan("again", root))
        assert (second.created, second.uploaded_files, copied) == (False, 0, [])  # nothing read or copied
        old = (root / "f2.bin").stat()
        (root / "f2.bin").write_bytes(b"x" * 1002)  # same size, and the old mtime put back
        os.utime(root / "f2.bin", ns=(old.st_atime_ns, old.st_mtime_ns))
        third = push(client, scan("again", root))
        assert (third.created, third.version, copied) == (True, 2, ["f2.bin"])
        listed = {f["path"]: f["sha256"] for f in
                  client.request_json("GET", "/api/v1/datasets/again/versions/2/files")["items"]}
        assert listed["f2.bin"] == _sha(b"x" * 1002) and listed["f0.bin"] == _sha(files["f0.bin"])
        client.close()
    finally:
        server.stop()


def test_the_store_folder_is_offered_only_on_the_servers_machine_and_adopts_only_its_own_files(
        api: TestClient, tmp_path: Path) -> None:
    from haneul.platform.datasets import _caller
    from haneul.platform.plugins import Principal

    # the in-process client is not on loopback: no folders, no adopting
    assert api.get("/api/v1/datasets/_local").status_code == 404
    res = api.post("/api/v1/datasets/_blobs/adopt", json={"files": [{"name": "x", "size": 1}]})
    assert res.status_code == 404

    store = dataset_store(api.app.state.platform)
    admin = Principal("admin", admin=True)
    info = store.local_access(principal=admin)
    incoming = Path(info["incoming"])
    assert (incoming / ".probe").read_text() == info["token"] and info["uid"] == os.geteuid()
    data = b"bytes of the blob"
    sha = _sha(data)
    name = "ab" * 12 + ".part"
    outside = tmp_path / "secret"
    outside.write_bytes(data)
    (incoming / name).symlink_to(outside)
    with pytest.raises(InvalidInput, match="cannot be opened"):  # a link is never followed
        store.adopt(principal=admin, files=[(name, len(data), None)])
    (incoming / name).unlink()
    for bad in ("../../secret", f"{sha}.part", "xy" * 12 + ".part"):
        with pytest.raises(InvalidInput, match="not an incoming file"):
            store.adopt(principal=admin, files=[(bad, len(data), None)])
    with pytest.raises(InvalidInput, match="not in"):
        store.adopt(principal=admin, files=[(name, len(data), None)])
    (incoming / name).write_bytes(data)
    with pytest.raises(InvalidInput, match="has 17 bytes, not the 3 announced"):
        store.adopt(principal=admin, files=[(name, 3, None)])
    (incoming / name).write_bytes(b"x" * len(data))  # the right size, other bytes than announced
    with pytest.raises(InvalidInput, match="not the announced one") as err:
        store.adopt(principal=admin, files=[(name, len(data), sha)])
    assert err.value.details["sha256"] == sha and not (incoming / name).exists()  # discarded
    (incoming / name).write_bytes(data)
    assert store.adopt(principal=admin, files=[(name, len(data), None)]) == [
        {"sha256": sha, "size": len(data), "new": True}]  # the server found the checksum
    assert sha in _blobs(api) and not (incoming / name).exists()
    assert _caller(admin) in store._uploads[sha]  # it may now name the blob in a version
    (incoming / name).write_bytes(data)
    assert store.adopt(principal=admin, files=[(name, len(data), sha)])[0]["new"] is False  # had it already
    assert not (incoming / name).exists()

    viewer = Principal("v", admin=False, roles={1: "viewer"})
    assert store.local_access(principal=viewer)["token"] == info["token"]  # it may pull through the folder
    with pytest.raises(Forbidden):
        store.adopt(principal=viewer, files=[(name, len(data), None)])
    with pytest.raises(NotFound):
        store.local_access(principal=Principal("s", admin=False, roles={1: "member"}, session_id=7))
