from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from haneul import io
from haneul.errors import StorageError
from haneul.io import atomic_dir, atomic_write_text, recover_dir


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p != folder)


def _fill(folder: Path, text: str) -> None:
    (folder / "weights.bin").write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "config.json").write_text("{}")


def test_atomic_dir_creates_the_folder_with_ordinary_permissions(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".m.") and tmp.name.endswith(".tmp")
        assert list(tmp.iterdir()) == []
        _fill(tmp, "new")
    assert (target / "weights.bin").read_text() == "new" and (target / "sub" / "config.json").is_file()
    assert _siblings(target) == []
    umask = os.umask(0)
    os.umask(umask)
    # what a plain mkdir would give, not mkdtemp's private 0o700
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


def test_atomic_dir_replaces_an_existing_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic_dir(target) as tmp:
        _fill(tmp, "new")
        assert (target / "stale.txt").read_text() == "old"  # readers see the old folder until the swap
    assert sorted(p.name for p in target.iterdir()) == ["sub", "weights.bin"]
    assert _siblings(target) == []


def test_an_error_inside_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "weights.bin").write_text("old")
    with pytest.raises(RuntimeError, match="half way"), atomic_dir(target) as tmp:
        _fill(tmp, "new")
        raise RuntimeError("half way")
    assert (target / "weights.bin").read_text() == "old" and not (target / "sub").exists()
    assert _siblings(target) == []


def test_a_full_disk_is_a_storage_error(tmp_path: Path) -> None:
    target = tmp_path / "m"
    with pytest.raises(StorageError, match=r"no space left on device writing .*m; free disk space"):
        with atomic_dir(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_crash_between_the_two_renames_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "checkpoint"
    with atomic_dir(target) as tmp:
        _fill(tmp, "step 100")
    real_replace = os.replace

    def crash_on_second_rename(src: object, dst: object) -> None:
        if Path(str(src)).name.endswith(".tmp"):
            raise KeyboardInterrupt  # stands in for the process dying here
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        _fill(tmp, "step 200")
    monkeypatch.setattr(io.os, "replace", real_replace)
    # what the crash left: no folder under the real name, the old one under the backup name
    # (the temporary folder of a process that really died is swept later, see the test below)
    assert not target.exists() and (tmp_path / ".checkpoint.old" / "weights.bin").read_text() == "step 100"

    assert recover_dir(target) == target
    assert (target / "weights.bin").read_text() == "step 100" and _siblings(target) == []


def test_recover_dir_of_a_folder_never_written_changes_nothing(tmp_path: Path) -> None:
    assert recover_dir(tmp_path / "no" / "such" / "m") == tmp_path / "no" / "such" / "m"
    assert recover_dir(tmp_path / "m") == tmp_path / "m"
    assert list(tmp_path.iterdir()) == []


def test_backup_left_beside_a_new_folder_is_deleted(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "weights.bin").write_text("new")
    backup = tmp_path / ".checkpoint.old"
    backup.mkdir()
    (backup / "weights.bin").write_text("old")
    recover_dir(target)
    assert (target / "weights.bin").read_text() == "new" and _siblings(target) == []
    # atomic_dir recovers before it writes, so the next write starts from a clean state
    backup.mkdir()
    with atomic_dir(target) as tmp:
        _fill(tmp, "newer")
    assert (target / "weights.bin").read_text() == "newer" and _siblings(target) == []


def test_temporary_folder_of_a_killed_writer_is_swept(tmp_path: Path) -> None:
    target = tmp_path / "m"
    # a child process starts a write and is killed with it half done: no clean-up code runs
    code = (
        "import os, sys\n"
        "from haneul.io import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'half.bin').write_text('x')\n"
        "    os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=True)
    left = _siblings(target)
    assert len(left) == 1 and left[0].endswith(".tmp")
    # a live writer's folder (this process's) is never swept
    with atomic_dir(target) as tmp:
        assert _siblings(target) == [tmp.name]
        _fill(tmp, "new")
    assert _siblings(target) == [] and (target / "weights.bin").read_text() == "new"


def test_keep_leaves_a_complete_folder_another_writer_made(tmp_path: Path) -> None:
    target = tmp_path / "cache"

    def complete(folder: Path) -> bool:
        return (folder / "done").is_file()

    with atomic_dir(target, keep=complete) as tmp:
        (tmp / "done").write_text("mine")
        target.mkdir()  # another process finishes first
        atomic_write_text(target / "done", "theirs")
    assert (target / "done").read_text() == "theirs" and _siblings(target) == []
    # an incomplete folder is not kept
    (target / "done").unlink()
    with atomic_dir(target, keep=complete) as tmp:
        (tmp / "done").write_text("mine")
    assert (target / "done").read_text() == "mine"
