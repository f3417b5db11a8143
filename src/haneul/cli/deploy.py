"""Top-level `haneul` commands for deploy."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
