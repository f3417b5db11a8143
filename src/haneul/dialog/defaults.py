"""Where dialogue memory and trained operators live when the caller does not say.

This is the one module of :mod:`haneul.dialog` that reads the global settings (``HANEUL_HOME``,
``HANEUL_SERVER``), and only when a ``home`` is not passed: library use outside the server gets
``HANEUL_HOME``, while the server's plugin (:mod:`haneul.dialog.api`) passes its own home everywhere.
"""

from __future__ import annotations

from pathlib import Path

from haneul.errors import NotFound


def dialog_home(home: Path | str | None = None) -> Path:
    """``home / "dialog"``; ``home`` defaults to ``HANEUL_HOME``."""
    if home is None:
        from haneul.settings import get_settings

        home = get_settings().home
    return Path(home) / "dialog"


def default_url(home: Path | str | None = None) -> str:
    """The local SQLite file that keeps memory when no server is configured."""
    return f"sqlite:///{dialog_home(home) / 'memory.db'}"


def classifier_dir(name: str, home: Path | str | None = None) -> Path:
    """The folder of the trained memory-operation classifier called ``name``."""
    return dialog_home(home) / "operators" / name


# the memory operator that ships inside the package, used as "default" until the user trains their own
SHIPPED_OPERATOR = Path(__file__).parent / "models" / "operator"


def resolve_classifier_path(name_or_path: str | Path, home: Path | str | None = None) -> Path:
    """A model folder, or the name of a classifier trained under ``home``.

    ``"default"`` is the user's own ``home / "dialog/operators/default"`` when it exists, else the
    classifier shipped in the package (:data:`SHIPPED_OPERATOR`).
    """
    path = Path(name_or_path)
    if (path / "config.json").exists():
        return path
    named = classifier_dir(str(name_or_path), home)
    if "/" not in str(name_or_path) and (named / "config.json").exists():
        return named
    # both files: an install whose package data left the weights out falls back like a fresh home
    shipped = all((SHIPPED_OPERATOR / f).exists() for f in ("config.json", "model.safetensors"))
    if str(name_or_path) == "default" and shipped:
        return SHIPPED_OPERATOR
    raise NotFound(
        f"no trained memory-operation classifier {str(name_or_path)!r}; train one with "
        "`haneul dialog train-operator --name NAME` or pass a model folder"
    )


def configured_server() -> str | None:
    """The haneul server clients are told to use (``HANEUL_SERVER``), or None."""
    from haneul.settings import get_settings

    return get_settings().server


def server_url() -> str:
    """The haneul server's URL: ``HANEUL_SERVER``, else the local default host and port."""
    from haneul.settings import get_settings

    return get_settings().server_url
