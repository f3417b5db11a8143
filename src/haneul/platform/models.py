"""Models from the platform's registry on this machine: ``model:NAME[@ALIAS|:VERSION]`` as a folder.

``haneul lm`` and ``haneul eval`` accept such a reference wherever they take a model name. The
server names the version, its session's checkpoint and that checkpoint's sha256; the checkpoint
(a folder saved with ``haneul.save``) is downloaded, verified and unpacked once into
``HANEUL_HOME/models-cache/<model>/<version>-<sha256 prefix>``, so moving an alias or saving the
checkpoint again fetches the new one and an unchanged version is never fetched twice.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from pathlib import Path

from haneul.errors import InvalidInput
from haneul.io import atomic_dir

PREFIX = "model:"


def is_model_ref(name: str) -> bool:
    return name.startswith(PREFIX)


def fetch_model(ref: str, *, server: str | None = None, cache: Path | None = None) -> Path:
    """The local folder of ``model:NAME[@ALIAS|:VERSION]`` (the prefix is optional here)."""
    from haneul.platform.client import Client

    ref = ref[len(PREFIX):] if is_model_ref(ref) else ref
    if not ref:
        raise InvalidInput("model: needs a name, e.g. model:ko-chat@production")
    if cache is None:
        from haneul.settings import get_settings

        cache = get_settings().home / "models-cache"
    with contextlib.closing(Client(server)) as client:
        got = client.call("GET", "/api/v1/model-ref", params={"ref": ref})
        if got["kind"] != "dir":
            raise InvalidInput(f"model {got['model']!r} version {got['version']} is a {got['kind']} checkpoint; "
                               "a model to load must be a folder saved with haneul.save(name, folder)")
        dest = cache / got["model"] / f"{got['version']}-{got['sha256'][:12]}"
        if dest.is_dir():
            return dest
        with tempfile.TemporaryDirectory(prefix="haneul-model-") as tmp:
            blob = Path(tmp) / "checkpoint.tar"
            client.download_checkpoint(got["session_id"], got["checkpoint"], blob)  # sha256-checked
            with atomic_dir(dest, keep=lambda path: path.is_dir()) as folder, tarfile.open(blob) as tar:
                tar.extractall(folder, filter="data")
    return dest


__all__ = ["PREFIX", "fetch_model", "is_model_ref"]
