"""`haneul dataset ...` commands: push, ls, info, pull, rm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, Typer
from haneul.platform.format import age

app = Typer(help="Datasets: immutable, content-addressed versions shared with a team (or everyone).",
            no_args_is_help=True)


def _client() -> Any:
    from haneul.platform.client import Client

    return Client()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@app.command("push")
def push(
    name: str = typer.Argument(..., help="Dataset name: lower-case letters, digits, '-', '_', '.' (1-64)."),
    path: Path = typer.Argument(..., help="The train part: a folder or a single file."),
    description: str = typer.Option(None, "--description", "-d", help="What the dataset holds (kept on the dataset)."),
    test: Path = typer.Option(None, "--test", help="The hidden test part (folder or file): read only by the "
                              "evaluator, never by sessions, pull or any page."),
    eval_script: Path = typer.Option(None, "--eval", help="The scoring script kept with the version (needs --metric)."),
    metric: str = typer.Option(None, "--metric", help="The metric key the eval script reports."),
    direction: str = typer.Option(None, "--direction", help="max (higher is better, the default with --eval) or min."),
    public: bool = typer.Option(None, "--public/--private", help="Let every user read the train part and info "
                                "(default: the dataset's current setting; private for a new dataset)."),
    team: str = typer.Option(None, "--team", help="The team a new dataset belongs to (default: your default team)."),
    as_json: JsonOpt = False,
) -> None:
    """Push PATH as the next version of dataset NAME; files the server already holds are not sent again.

    Pushing a tree identical to the latest version makes no new version (it prints unchanged: NAME:N).
    Example: haneul dataset push nsmc data/nsmc --test data/nsmc-test --eval eval.py --metric acc
    """
    from haneul.platform.datasets import push as push_plan
    from haneul.platform.datasets import scan

    plan = scan(name, path, test=test, eval_script=eval_script, metric=metric, direction=direction,
                description=description, public=public, team=team)
    client = _client()
    try:
        result = push_plan(client, plan)
    finally:
        client.close()
    word = "pushed" if result.created else "unchanged"
    output.emit(result, as_json=as_json, show=lambda: output.say(
        f"{word}: {result.name}:{result.version} ({result.files:,} files, {_size(result.size)}; "
        f"uploaded {result.uploaded_files:,} files, {_size(result.uploaded_bytes)})"))


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the datasets you may read: your teams' and the public ones."""
    client = _client()
    items = client.request_json("GET", "/api/v1/datasets")
    output.emit(items, as_json=as_json, show=lambda: output.print_table(
        [(d["name"], d["team"], d["latest"], d["files"], _size(d["size"]), d["public"], age(d["updated_at"]))
         for d in items],
        columns=["name", "team", "latest", "files", "size", "public", "updated"], right=["files", "size"],
        no_wrap=["name"], title=f"{len(items)} datasets"))


@app.command("info")
def info(
    ref: str = typer.Argument(..., help="NAME or NAME:VERSION (default: the latest version)."),
    files: int = typer.Option(50, "--files", help="How many of the version's files to list (0: none)."),
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset: its versions, and the chosen version's files, sizes and eval script."""
    from haneul.platform.datasets import parse_ref

    name, version = parse_ref(ref)
    client = _client()
    data = client.request_json("GET", f"/api/v1/datasets/{name}", params={"version": version} if version else None)
    v = data["version"]
    listed: dict[str, Any] = client.request_json("GET", f"/api/v1/datasets/{name}/versions/{v['version']}/files",
                                 params={"limit": max(1, min(files, 10_000))}) if files > 0 else {"items": [], "total": 0}
    data = {**data, "files": listed["items"], "files_total": v["files"]}
    if as_json:
        output.print_json(data)
        return
    evals = f"{v['eval_script']} reports {v['metric']} ({v['direction']})" if v["eval_script"] else None
    output.print_fields({
        "dataset": f"{data['name']}:{v['version']}", "team": data["team"], "public": data["public"],
        "description": data["description"] or None, "train files": v["files"], "train size": _size(v["size"]),
        "hidden test files": v["test_files"], "hidden test size": _size(v["test_size"]), "eval": evals,
    })
    output.print_table([(x["version"], x["files"], _size(x["size"]), x["test_files"], x["eval_script"],
                         x["created_by"], age(x["created_at"])) for x in data["versions"]],
                       columns=["version", "files", "size", "test files", "eval", "by", "age"],
                       right=["files", "size"], title="versions")
    if listed["items"]:
        more = f" (first {len(listed['items'])} of {v['files']:,})" if v["files"] > len(listed["items"]) else ""
        output.print_table([(f["path"], f["size"], f["sha256"][:16]) for f in listed["items"]],
                           columns=["path", "size", "sha256"], right=["size"], title=f"files{more}")


@app.command("pull")
def pull(
    ref: str = typer.Argument(..., help="NAME or NAME:VERSION (default: the latest version)."),
    dest: Path = typer.Argument(..., help="The folder to write the train part into (made if missing)."),
    force: bool = typer.Option(False, "--force", help="Replace DEST even when it is not empty."),
    verify: bool = typer.Option(
        False, "--verify", help="On the server's machine, hash every file again as it is copied from the store "
        "(otherwise checked by size: the store checked each sha256 when it stored it)."),
    as_json: JsonOpt = False,
) -> None:
    """Download the train part of a dataset version; each file is checked against its sha256 (on the
    server's own machine: copied from the store and checked by size, or by sha256 with --verify), and
    DEST appears whole or not at all."""
    from haneul.platform.datasets import pull as pull_version

    client = _client()
    try:
        result = pull_version(client, ref, dest, force=force, verify=verify)
    finally:
        client.close()
    output.emit(result, as_json=as_json, show=lambda: output.say(
        f"pulled {result['name']}:{result['version']} into {result['dest']} "
        f"({result['files']:,} files, {_size(result['size'])})"))


@app.command("rm")
def rm(
    ref: str = typer.Argument(..., help="NAME:VERSION removes one version; NAME alone the whole dataset."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm removing a whole dataset (a version needs no --yes)."),
    as_json: JsonOpt = False,
) -> None:
    """Remove a version, or a whole dataset; stored files no other version refers to are deleted."""
    from haneul.errors import InvalidInput
    from haneul.platform.datasets import parse_ref

    name, version = parse_ref(ref)
    if version is None and not yes:
        raise InvalidInput(f"removing dataset {name} deletes every version of it for good; add --yes to confirm "
                           f"(or remove one version: haneul dataset rm {name}:VERSION)")
    client = _client()
    path = f"/api/v1/datasets/{name}" + (f"/versions/{version}" if version else "")
    result = client.request_json("DELETE", path)
    what = f"{name}:{version}" if version else f"{name} (versions {', '.join(map(str, result['versions']))})"
    output.emit(result, as_json=as_json, show=lambda: output.say(
        f"removed {what}; deleted {result['blobs_removed']} unreferenced files ({_size(result['bytes_freed'])})"))
