"""`haneul model ...` commands: name checkpoints as numbered versions of a model, with aliases."""

from __future__ import annotations

import contextlib
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, Typer
from haneul.errors import InvalidInput
from haneul.platform.format import age

app = Typer(help="Models: named, numbered versions of session checkpoints, with aliases such as production.",
            no_args_is_help=True)


def _call(method: str, path: str, **kwargs: Any) -> Any:
    from haneul.platform.client import Client

    with contextlib.closing(Client()) as client:
        return client.call(method, path, **kwargs)


def _show(info: dict[str, Any]) -> None:
    rows = [{"version": str(v["version"]), "session": str(v["session_id"]), "checkpoint": v["checkpoint"],
             "aliases": ", ".join(v["aliases"]), "age": age(v["created_at"])} for v in info["versions"]]
    output.print_table(rows, columns=["version", "session", "checkpoint", "aliases", "age"],
                       title=f"model {info['name']}", right=["version", "session"])


@app.command("register")
def register(
    name: str = typer.Argument(..., help="The model's name; created on its first version."),
    source: str = typer.Argument(..., help="SESSION:CHECKPOINT, e.g. 12:best."),
    alias: str = typer.Option(None, "--alias", "-a", help="Point this alias (e.g. production) at the new version."),
    as_json: JsonOpt = False,
) -> None:
    """Add the next version (1, 2, ...) of model NAME pointing at a session's checkpoint.
    Example: haneul model register nsmc 12:best --alias production
    """
    session, sep, checkpoint = source.partition(":")
    if not sep or not session.isdigit() or not checkpoint:
        raise InvalidInput(f"{source!r} must be SESSION:CHECKPOINT, e.g. 12:best")
    info = _call("POST", "/api/v1/models", json={"name": name, "session": int(session), "checkpoint": checkpoint,
                                                  "alias": alias})
    version = info["versions"][-1]["version"]
    output.emit(info, as_json=as_json, show=lambda: output.say(
        f"model {name} version {version}" + (f" ({alias})" if alias else "")))


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List models: versions, the latest one and the aliases."""
    items = _call("GET", "/api/v1/models")
    if as_json:
        output.print_json(items)
        return
    if not items:
        output.note("no models; register one with `haneul model register NAME SESSION:CHECKPOINT`")
        return
    rows = [{"name": m["name"], "versions": str(m["versions"]), "latest": str(m["latest"]),
             "aliases": ", ".join(f"{a}={v}" for a, v in m["aliases"].items()), "age": age(m["created_at"])}
            for m in items]
    output.print_table(rows, right=["versions", "latest"], no_wrap=["name"])


@app.command("info")
def info(name: str = typer.Argument(..., help="The model's name."), as_json: JsonOpt = False) -> None:
    """Show a model's versions (session, checkpoint) and aliases."""
    result = _call("GET", f"/api/v1/models/{name}")
    output.emit(result, as_json=as_json, show=lambda: _show(result))


@app.command("alias")
def alias(
    name: str = typer.Argument(..., help="The model's name."),
    version: int = typer.Argument(..., help="The version the alias should name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. production (moved if it exists)."),
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS of model NAME at VERSION (moving it from the version it named before)."""
    result = _call("POST", f"/api/v1/models/{name}/aliases", json={"version": version, "alias": alias_name})
    output.emit(result, as_json=as_json, show=lambda: output.say(f"model {name}: {alias_name} -> version {version}"))
