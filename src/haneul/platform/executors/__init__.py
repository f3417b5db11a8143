"""Executors run sessions. ``get_executor("local")`` resolves a name; the error lists the choices."""

from __future__ import annotations

from haneul.errors import InvalidInput
from haneul.platform.executors._base import Executor, Exit, Handle, LaunchSpec

_EXECUTORS = {"local": "haneul.platform.executors.local:LocalExecutor"}


def get_executor(name: str) -> Executor:
    if name not in _EXECUTORS:
        raise InvalidInput(f"executor {name!r} is unknown; choose one of: {', '.join(sorted(_EXECUTORS))}")
    import importlib

    module, cls = _EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Executor", "Exit", "Handle", "LaunchSpec", "get_executor"]
