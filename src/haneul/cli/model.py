"""`haneul model ...` commands."""

from __future__ import annotations

from haneul.cli.options import Typer

app = Typer(help="Models.", no_args_is_help=True)
