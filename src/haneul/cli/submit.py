"""Top-level `haneul` commands for competitions: submit, leaderboard, submissions."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt
from haneul.errors import HaneulError
from haneul.platform.format import age

#: how often `haneul submit` asks how its submission is doing
POLL_S = 0.25


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("leaderboard")(leaderboard)
    app.command("submissions")(submissions)


def _call(method: str, path: str, **kwargs: Any) -> Any:
    from haneul.platform.client import Client

    with contextlib.closing(Client()) as client:
        return client.call(method, path, **kwargs)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def submit(
    session: int = typer.Argument(..., help="The session whose checkpoint to submit."),
    checkpoint: str = typer.Option(None, "--checkpoint", "-c", help="The session's checkpoint to submit "
                                   "(default: the latest)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="The competition, NAME[:VERSION] (default: the "
                                "dataset the session ran with)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the submission is queued, without "
                                 "waiting for its score."),
    as_json: JsonOpt = False,
) -> None:
    """Score a session's checkpoint on a dataset's hidden test part: the session's code runs with
    HANEUL_MODE=submit (haneul.bind's infer predicts the test inputs), then the dataset's eval script
    scores the predictions. Waits for the score and prints it.
    Example: haneul submit 12 --dataset nsmc-comp
    """
    s = _call("POST", "/api/v1/submissions", json={"session": session, "checkpoint": checkpoint, "dataset": dataset})
    if not no_wait:
        s = _wait(s)
    if as_json:
        output.print_json(s)
        return
    if s["status"] == "done":
        output.say(f"submission {s['id']}: {s['metric']} {_score(s['score'])} on {s['dataset']}:{s['version']}")
        output.note(f"leaderboard: haneul leaderboard {s['dataset']}")
    else:
        output.say(f"submission {s['id']}: {s['status']} ({s['dataset']}:{s['version']}, checkpoint "
                   f"{s['checkpoint']!r})")


def _wait(s: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    shown = ""
    while s["status"] in ("queued", "running"):
        line = f"submission {s['id']}: {s['status']} ({time.monotonic() - started:.0f} s)"
        if line != shown:
            output.note(line)
            shown = line
        time.sleep(POLL_S)
        s = _call("GET", f"/api/v1/submissions/{s['id']}")
    if s["status"] != "done":
        raise HaneulError(f"submission {s['id']} {s['status']}: {s['error']}")
    return s


def leaderboard(
    dataset: str = typer.Argument(..., help="The competition, NAME[:VERSION] (default: its latest scored version)."),
    as_json: JsonOpt = False,
) -> None:
    """Show a competition's leaderboard: the best submission of each team, ranked."""
    name, _, version = dataset.partition(":")
    params = {"version": version} if version else None
    board = _call("GET", f"/api/v1/datasets/{name}/leaderboard", params=params)
    if as_json:
        output.print_json(board)
        return
    better = "higher" if board["direction"] == "max" else "lower"
    title = f"{board['dataset']}:{board['version']} · {board['metric']} ({better} is better)"
    if not board["entries"]:
        output.note(f"{title}: no scored submissions yet; submit with `haneul submit SESSION --dataset "
                    f"{board['dataset']}:{board['version']}`")
        return
    output.print_table(
        [(e["rank"], e["team"], _score(e["score"]), e["submissions"], f"{age(e['last_at'])} ago",
          e.get("session_id") or "") for e in board["entries"]],
        columns=["rank", "team", board["metric"], "submissions", "last", "session"],
        right=["rank", board["metric"], "submissions"], no_wrap=["team"], title=title)


def submissions(
    dataset: str = typer.Option(None, "--dataset", "-d", help="Only this competition, NAME[:VERSION]."),
    limit: int = typer.Option(100, "--limit", "-n", help="Most submissions to list (1-1000), newest first."),
    as_json: JsonOpt = False,
) -> None:
    """List your teams' submissions, newest first, with their status, score and error."""
    params: dict[str, Any] = {"limit": limit}
    if dataset:
        params["dataset"] = dataset
    items = _call("GET", "/api/v1/submissions", params=params)
    if as_json:
        output.print_json(items)
        return
    if not items:
        output.note("no submissions; submit a session's checkpoint with `haneul submit SESSION`")
        return
    output.print_table(
        [(s["id"], f"{s['dataset']}:{s['version']}", s["team"], s["user"], s["session_id"], s["checkpoint"],
          s["status"], _score(s["score"]), f"{age(s['created_at'])} ago", s["error"] or "") for s in items],
        columns=["id", "dataset", "team", "user", "session", "checkpoint", "status", "score", "submitted", "error"],
        right=["id", "score"], no_wrap=["dataset"], title=f"{len(items)} submissions")
