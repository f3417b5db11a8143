"""Session commands: run, ps, logs, stop, pause, resume, fork, metrics, plot, checkpoints, archive,
restore, delete (top-level ``haneul`` commands)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, out_option
from haneul.errors import InvalidInput
from haneul.platform.format import age

ACTIVE = ("queued", "running")
STATUS_COLOURS = {"running": "blue", "queued": "yellow", "paused": "magenta", "done": "green", "failed": "red",
                  "lost": "red"}
# Carried from the caller's shell so that `python` in a session is the python the user sees.


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(run)
    app.command("ps")(ps)
    app.command("logs")(logs)
    app.command("stop")(stop)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("fork")(fork)
    app.command("metrics")(metrics)
    app.command("plot")(plot)
    app.command("checkpoints")(checkpoints)
    app.command("archive")(archive)
    app.command("restore")(restore)
    app.command("delete")(delete)


def _client() -> Any:
    from haneul.platform.client import Client

    return Client()


def _parse_env(pairs: list[str], option: str = "--env") -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{option} {pair!r} must look like KEY=VALUE")
        env[key] = value
    return env


def run(
    command: list[str] = typer.Argument(..., help="The program and its arguments; put them after --."),
    name: str = typer.Option(None, "--name", "-n", help="A name for the session (default: the script name)."),
    cpus: float = typer.Option(1.0, help="CPU cores to reserve."),
    gpus: int = typer.Option(0, help="GPUs to reserve."),
    memory: str = typer.Option(None, help="Memory to reserve, e.g. 4G (only scheduled on when capacity sets it)."),
    priority: int = typer.Option(0, help="Higher runs first; first come first served within a priority."),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE added to the session's environment; repeatable."),
    project: str = typer.Option(None, "--project", "-p", help="The session's project (default: this folder's name)."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="KEY=VALUE label, searchable as tags.KEY; repeatable."),
    in_place: bool = typer.Option(False, "--in-place", help="Run in this folder instead of a snapshot copy of it."),
    preemptible: bool = typer.Option(False, "--preemptible", help="Let a queued session of higher priority pause "
                                     "this one (it resumes by itself when capacity frees)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream the session's log until it ends; exit with its status."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="NAME or NAME:VERSION: the dataset's train part is "
                                "mounted read-only at haneul.DATASET_PATH (HANEUL_DATASET_PATH)."),
    as_json: JsonOpt = False,
) -> None:
    """Start COMMAND as a platform session; print its id (stdout) and its page's URL (stderr).

    The current folder is copied into the session's own working directory (code snapshots; files
    over 20 MB and .git/.venv are left out) and the command runs there with HANEUL_SESSION,
    HANEUL_SERVER and a session token in its environment, so `haneul.report` and `haneul.save` reach
    the server. PATH, VIRTUAL_ENV, CONDA_PREFIX and PYTHONPATH come from this shell, so the
    session uses the same Python. The command's --name value pairs are recorded as params, and the
    git commit, branch and uncommitted diff of the folder when it is a git work tree.
    Example: haneul run --name bert --project nsmc --tag model=bert -- python train.py --lr 3e-4
    """
    from haneul.platform.client import inherited_env

    client = _client()
    session = client.create_session(
        command=command, name=name, owner=getpass.getuser(), cpus=cpus, gpus=gpus, memory=memory,
        priority=priority, env={**inherited_env(), **_parse_env(env)},
        cwd=os.getcwd(), snapshot=not in_place, project=project, tags=_parse_env(tag, "--tag"),
        preemptible=preemptible, **({"dataset": dataset} if dataset else {}),
    )
    page = f"{client.url}/sessions/{session['id']}"
    if as_json:
        output.print_json({**session, "url": page})
    elif not follow:
        output.say(str(session["id"]))
        output.note(f"session {session['id']} {session['status']}: {page}")
    else:
        output.note(f"session {session['id']} {session['status']}: {page}", style="bold")
    if follow:
        raise typer.Exit(_follow(session["id"]))


def _follow(sid: int) -> int:
    client = _client()
    for lines in client.stream_logs(sid, tail=1000):
        if lines:
            output.say("\n".join(lines))
    final = client.get_session(sid)
    code = f" (exit {final['exit_code']})" if final["exit_code"] is not None else ""
    output.note(f"session {sid} {final['status']}{code}")
    return 0 if final["status"] == "done" else 1


def ps(
    status: list[str] = typer.Option([], "--status", "-s", help="Only these statuses; repeatable."),
    owner: str = typer.Option(None, help="Only sessions of this owner."),
    query: str = typer.Option(None, "--name", help="Only sessions whose name contains this."),
    project: str = typer.Option(None, "--project", "-p", help="Only sessions of this project."),
    filter: str = typer.Option(None, "--filter", "-F", help='Search expression, e.g. '
                               '\'params.lr < 1e-3 and metrics.val_acc > 0.8 and tags.model = "bert"\'.'),
    archived: bool = typer.Option(False, "--archived", help="Show archived sessions instead of active ones."),
    sort: str = typer.Option("id", help="Sort by id, name, owner, status, created_at, started_at, ended_at, "
                             "priority, params.KEY or metrics.KEY."),
    asc: bool = typer.Option(False, "--asc", help="Ascending order (default: newest first)."),
    limit: int = typer.Option(20, help="How many sessions to show."),
    offset: int = typer.Option(0, help="Skip this many (pagination)."),
    as_json: JsonOpt = False,
) -> None:
    """List sessions with their status (and why a session ended badly), age and latest metric values."""
    client = _client()
    res = client.list_sessions(status=status or None, owner=owner, q=query, project=project, filter=filter,
                               archived=1 if archived else 0, sort=sort, desc=not asc, limit=limit, offset=offset)
    if as_json:
        output.print_json(res)
        return
    from rich.text import Text

    rows = [{"id": str(s["id"]), "name": s["name"], "project": s.get("project", ""), "status": s["status"],
             "owner": s["owner"],
             "age": age(s["created_at"]), "why": _why(s),
             "metrics": "  ".join(f"{k}={v:.4g}" for k, v in list(s.get("metrics", {}).items())[:4])}
            for s in res["items"]]
    columns = ["id", "name", "project", "status", "owner", "age", "metrics"]
    if any(row["why"] for row in rows):
        columns.insert(4, "why")
    colour = {"status": lambda status: Text(status, style=STATUS_COLOURS.get(status, "white"))}
    output.print_table(rows, columns=columns, formats=colour, title=f"{res['total']} sessions")
    if rows:
        output.note(f"live pages: {client.url}/sessions/ID (all sessions: {client.url}/)")


def _why(s: dict[str, Any]) -> str:
    """Why a session ended badly: its exit code and the server's reason, short enough for a table."""
    if s["status"] not in ("failed", "lost", "stopped"):
        return ""
    parts = [f"exit {s['exit_code']}"] if s.get("exit_code") not in (None, 0) else []
    if s.get("reason"):
        parts.append(str(s["reason"]))
    text = "; ".join(parts)
    return text if len(text) <= 60 else text[:59] + "…"


def logs(
    session: int = typer.Argument(..., help="Session id."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines until the session ends."),
    tail: int = typer.Option(100, "--tail", "-n", help="How many last lines to show first."),
) -> None:
    """Print a session's output (stdout and stderr together)."""
    client = _client()
    if follow:
        for lines in client.stream_logs(session, tail=tail):
            if lines:
                output.say("\n".join(lines))
        return
    lines = client.tail_logs(session, lines=tail)["lines"]
    if lines:
        output.say("\n".join(lines))


def stop(session: int = typer.Argument(..., help="Session id.")) -> None:
    """Stop a session: SIGTERM to its process group, SIGKILL after 5 s; a queued one is dropped."""
    s = _client().stop_session(session)
    output.say(f"session {session}: {'stopping' if s['status'] == 'running' else s['status']}")


def pause(
    session: int = typer.Argument(..., help="Session id."),
    grace: float = typer.Option(None, "--grace", help="Seconds the code has to save and exit before it is "
                                "stopped (default: the server's HANEUL_PAUSE_GRACE_S, 60)."),
    as_json: JsonOpt = False,
) -> None:
    """Pause a session: haneul.paused() turns true in its code, which should save a checkpoint and exit.

    The session is then `paused` and its resources are free; `haneul resume` starts it again under the
    same id. A queued session is paused at once.
    """
    s = _client().pause_session(session, grace=grace)
    output.emit(s, as_json=as_json, show=lambda: output.say(
        f"session {session}: {'pausing' if s['status'] == 'running' else s['status']}"))


def resume(session: int = typer.Argument(..., help="Session id."), as_json: JsonOpt = False) -> None:
    """Resume a paused session: a new process under the same id, queued with its priority.

    Its metrics go on under the same keys, its log in the same file, and haneul.load() with no name
    returns its latest checkpoint.
    """
    s = _client().resume_session(session)
    output.emit(s, as_json=as_json, show=lambda: output.say(f"session {session}: {s['status']}"))


def fork(
    session: int = typer.Argument(..., help="Session id of the parent."),
    args: list[str] = typer.Argument(None, help="Arguments appended to the parent's command; put them after --."),
    checkpoint: str = typer.Option(None, "--checkpoint", "-c", help="The parent's checkpoint to start from "
                                   "(default: its latest)."),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE added to the environment; repeatable."),
    name: str = typer.Option(None, "--name", "-n", help="A name for the new session (default: the parent's)."),
    priority: int = typer.Option(None, help="Priority of the new session (default: the parent's)."),
    as_json: JsonOpt = False,
) -> None:
    """Start a new session from SESSION: same command, project, tags, resources and code snapshot.

    Arguments after -- are appended to the command, so `haneul fork 12 -- --lr 0.01` overrides an
    argparse option. In the new session haneul.load() returns the parent's checkpoint until it saves
    its own. Prints the new session's id.
    """
    client = _client()
    s = client.fork_session(session, checkpoint=checkpoint, env=_parse_env(env), args=list(args or []),
                            name=name, priority=priority)
    if as_json:
        output.print_json({**s, "url": f"{client.url}/sessions/{s['id']}"})
        return
    output.say(str(s["id"]))
    start = f" at checkpoint {s['parent_checkpoint']!r}" if s.get("parent_checkpoint") else ""
    output.note(f"session {s['id']} forked from {session}{start}, {s['status']}: {client.url}/sessions/{s['id']}")


def metrics(
    session: int = typer.Argument(..., help="Session id."),
    key: str = typer.Option(None, "--key", "-k", help="One metric: print its points instead of the summary."),
    max_points: int = typer.Option(0, help="With --key: downsample to at most this many points on the server (0 = all)."),
    as_json: JsonOpt = False,
) -> None:
    """Show a session's metrics: a summary of every key, or the points of one key (tab-separated)."""
    client = _client()
    if key is None:
        keys = client.metric_keys(session)
        output.emit(keys, as_json=as_json, show=lambda: output.print_table(
            [(k["key"], k["count"], k["last_step"], f"{k['last_value']:.6g}") for k in keys],
            columns=["key", "points", "last step", "last value"], right=["points", "last step", "last value"],
            title=f"session {session} metrics"))
        return
    hist = client.metric_history(session, key, max_points=max_points)
    output.emit(hist, as_json=as_json, show=lambda: output.say("\n".join(
        f"{step}\t{value:.8g}" for step, value in zip(hist["steps"], hist["values"], strict=True))))


def plot(
    sessions: list[int] = typer.Argument(..., help="One or more session ids (several are overlaid)."),
    key: list[str] = typer.Option([], "--key", "-k", help="Metric keys to plot; repeatable (default: all)."),
    out: Annotated[Path | None, out_option("PNG file (default: session-<ids>.png).")] = None,
    max_points: int = typer.Option(5000, help="Downsample each series to at most this many points."),
) -> None:
    """Plot metrics of sessions to a PNG file (one panel per key)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from haneul.io import atomic_open

    client = _client()
    keys = list(key)
    if not keys:
        for sid in sessions:
            keys += [k["key"] for k in client.metric_keys(sid) if k["key"] not in keys]
    if not keys:
        raise InvalidInput(f"session(s) {', '.join(map(str, sessions))} have no metrics yet; nothing to plot")
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, k in zip(axes.flat, keys, strict=False):
        for sid in sessions:
            try:
                h = client.metric_history(sid, k, max_points=max_points)
            except Exception:
                continue
            ax.plot(h["steps"], h["values"], lw=1.2, label=f"#{sid}")
        ax.set_title(k)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(sessions) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out = out or Path(f"session-{'-'.join(map(str, sessions))}.png")
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    output.say(str(out))


def checkpoints(
    session: int = typer.Argument(..., help="Session id."),
    get: str = typer.Option(None, "--get", help="Download this checkpoint (sha256-verified)."),
    out: Annotated[Path | None, out_option("With --get: where to write it (default: <id>-<name>).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a session's checkpoints, or download one with --get NAME."""
    client = _client()
    if get:
        dest = out or Path(f"{session}-{get}")
        client.download_checkpoint(session, get, dest)
        output.say(str(dest))
        return
    items = client.list_checkpoints(session)
    output.emit(items, as_json=as_json, show=lambda: output.print_table(
        [(c["name"], c["kind"], c["size"], c["sha256"][:16], age(c["created_at"])) for c in items],
        columns=["name", "kind", "size", "sha256", "age"], title=f"session {session} checkpoints"))


def archive(session: int = typer.Argument(..., help="Session id.")) -> None:
    """Hide a session from the default lists (haneul ps --archived shows it; haneul restore brings it back)."""
    _client().archive_session(session)
    output.say(f"session {session}: archived")


def restore(session: int = typer.Argument(..., help="Session id.")) -> None:
    """Bring an archived session back to the default lists."""
    _client().restore_session(session)
    output.say(f"session {session}: restored")


def delete(
    session: int = typer.Argument(..., help="Session id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm: the session cannot be brought back."),
) -> None:
    """Delete a session for good: its metrics, checkpoints and working folder (a running one is refused)."""
    if not yes:
        raise InvalidInput(f"deleting session {session} removes its metrics, checkpoints and folder for good; "
                           f"add --yes to confirm (or archive it: haneul archive {session})")
    _client().delete_session(session)
    output.say(f"session {session}: deleted")
