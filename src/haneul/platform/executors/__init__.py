"""Executors run sessions. ``get_executor("local")`` (or ``"ray"``) resolves a name; the error lists the choices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from haneul.errors import InvalidInput
from haneul.platform.executors._base import Executor, Exit, Handle, LaunchSpec

if TYPE_CHECKING:
    from haneul.settings import Settings

_EXECUTORS = {
    "local": "haneul.platform.executors.local:LocalExecutor",
    "ray": "haneul.platform.executors.ray:RayExecutor",
}


def get_executor(name: str, settings: Settings | None = None) -> Executor:
    """The executor called ``name`` (``HANEUL_EXECUTOR``), configured by ``settings`` (default: the
    environment's)."""
    if name not in _EXECUTORS:
        raise InvalidInput(f"executor {name!r} is unknown; choose one of: {', '.join(sorted(_EXECUTORS))}")
    import importlib

    from haneul.settings import get_settings

    module, cls = _EXECUTORS[name].split(":")
    executor: type[Executor] = getattr(importlib.import_module(module), cls)
    return executor.from_settings(settings or get_settings())


__all__ = ["Executor", "Exit", "Handle", "LaunchSpec", "get_executor"]
