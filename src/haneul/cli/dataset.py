"""`haneul dataset ...` commands."""

from __future__ import annotations

from haneul.cli.options import Typer

app = Typer(help="Datasets.", no_args_is_help=True)
