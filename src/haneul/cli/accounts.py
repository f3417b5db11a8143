"""Top-level `haneul` commands for accounts."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
