from __future__ import annotations

import csv
import errno
import os
from pathlib import Path

import pytest

import haneul
from haneul.errors import IntegrityError, InvalidInput, NotFound, StorageError
from haneul.io import atomic_open, atomic_write_bytes
from haneul.platform import sdk
from haneul.platform.store import CheckpointStore, validate_name


def test_atomic_open_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_full_disk_is_a_storage_error_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ckpt"
    atomic_write_bytes(target, b"good")
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match="no space left"):
        atomic_write_bytes(target, b"new")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_checkpoint_store_verifies_sha256(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00" * 1000)
    rec = store.put("epoch-1", src, "file")
    assert rec["size"] == 1000 and len(rec["sha256"]) == 64
    kind, path = store.get("epoch-1")
    assert kind == "file" and path.read_bytes() == b"\x00" * 1000
    path.write_bytes(b"\x01" * 1000)  # bit rot
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get("epoch-1")
    with pytest.raises(NotFound):
        store.get("nope")
    assert [r["name"] for r in store.list()] == ["epoch-1"]


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b", "x.json", "a" * 200])
def test_checkpoint_names_are_validated(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_name(bad)


def test_report_outside_a_session_writes_local_csv(haneul_home: Path) -> None:
    haneul.report(step=0, loss=1.5, acc=0.25)
    haneul.report(loss=1.25)  # next step
    haneul.flush()
    rows = list(csv.reader(open(haneul_home / "local" / "default" / "metrics.csv")))
    assert rows[0] == ["key", "step", "value", "time"]
    assert [(r[0], int(r[1]), float(r[2])) for r in rows[1:]] == [("loss", 0, 1.5), ("acc", 0, 0.25), ("loss", 1, 1.25)]
    assert haneul.session_id() is None


@pytest.mark.parametrize("kwargs,match", [({"loss": float("nan")}, "finite"), ({"loss": float("inf")}, "finite"),
                                          ({"loss": "high"}, "numbers"), ({"loss": [1, 2]}, "numbers")])
def test_report_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        haneul.report(step=1, **kwargs)


def test_report_rejects_bad_step() -> None:
    with pytest.raises(InvalidInput, match="step"):
        haneul.report(step=-1, loss=1.0)


def test_save_and_load_locally(tmp_path: Path) -> None:
    import torch

    haneul.save("obj", {"lr": 0.1, "names": ["a"]})
    assert haneul.load("obj") == {"lr": 0.1, "names": ["a"]}
    haneul.save("raw", b"\x00\x01")
    assert haneul.load("raw") == b"\x00\x01"
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    haneul.save("state", state)
    assert torch.equal(haneul.load("state")["w"], state["w"])
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "w.bin").write_bytes(b"abc")
    haneul.save("folder", folder)
    restored = haneul.load("folder")
    assert (restored / "config.json").read_text() == "{}" and (restored / "sub" / "w.bin").read_bytes() == b"abc"
    with pytest.raises(NotFound):
        haneul.load("missing")
    with pytest.raises(InvalidInput, match="does not exist"):
        haneul.save("x", str(tmp_path / "absent.bin"))


def test_bound_save_and_load() -> None:
    seen = {}

    def save_fn(d: str) -> None:
        Path(d, "weights.txt").write_text("42")

    def load_fn(d: str) -> str:
        seen["dir"] = d
        return Path(d, "weights.txt").read_text()

    haneul.bind(save=save_fn, load=load_fn)
    try:
        haneul.save("bound")
        assert haneul.load("bound") == "42"
        assert seen["dir"]
    finally:
        haneul.bind()
    with pytest.raises(InvalidInput, match="bind"):
        haneul.save("nothing")


def test_paused_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "pause"
    monkeypatch.setenv("HANEUL_PAUSE_FILE", str(flag))
    assert sdk.paused() is False
    flag.touch()
    assert sdk.paused() is True


def test_dataset_path_is_none_outside_sessions() -> None:
    assert haneul.DATASET_PATH is None
