"""`haneul tune ...` commands: create, ls, show, best, stop, resume, edit, enqueue, export, rm.

A study file is read and checked here (so a bad file fails before anything is sent) and the study
runs on the server (the ``tune`` plugin); these commands only talk to its REST routes. See
docs/tune.md for the study file and the workflow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, Typer, out_option
from haneul.errors import InvalidInput, ServerUnavailable

app = Typer(help="Hyper-parameter studies: trials run as preemptible sessions, Optuna picks the parameters.",
            no_args_is_help=True)

STATUS_COLOURS = {"running": "blue", "stopped": "magenta", "done": "green", "failed": "red"}
STATE_COLOURS = {"running": "blue", "complete": "green", "pruned": "yellow", "failed": "red", "stopped": "magenta",
                 "replaced": "cyan"}
#: trial states that no longer hold a slot
ENDED = ("complete", "pruned", "failed", "stopped", "replaced")
#: fields of a study file that a running study may take from `haneul tune edit --file`
EDITABLE = ("space", "budget", "description", "priority")
STUDY_HELP = "The study's name or id."


def _client() -> Any:
    from haneul.platform.client import Client

    return Client()


def _path(study: str, *rest: str) -> str:
    return "/".join(["/api/v1/tune/studies", quote(study, safe=""), *rest])


def _page(client: Any, study: Mapping[str, Any]) -> str:
    return f"{client.url}/tune/{study['id']}"


def _best_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _params_text(params: Mapping[str, Any]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _trials_text(study: Mapping[str, Any]) -> str:
    return f"{study['launched']}/{study['budget']['trials']}"


def _team_id(client: Any, team: str | None) -> int | None:
    if team is None:
        return None
    if team.isdigit():
        return int(team)
    return int(client.request_json("GET", f"/api/v1/teams/{quote(team, safe='')}")["id"])


def _value(text: str) -> Any:
    """A command-line value as the JSON it spells (``0.3``, ``16``, ``true``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# ------------------------------------------------------------------ create and watch
@app.command("create")
def create(
    file: Path = typer.Argument(..., help="The study file (YAML): command, objective, space, budget, algorithm."),
    name: str = typer.Option(None, "--name", "-n", help="The study's name (default: the file's name field, else "
                             "the file name without .yaml)."),
    team: str = typer.Option(None, "--team", help="The team the study belongs to, by name or id (default: your "
                             "default team)."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Follow the study live until it ends; Ctrl-C stops "
                               "watching and leaves the study running."),
    as_json: JsonOpt = False,
) -> None:
    """Start a study from FILE; print its id (stdout) and its page's URL (stderr).

    The file is checked here first: a bad field is one line naming it and nothing is sent. A relative
    cwd (default: the file's folder) is resolved on this machine, so run this on the server's machine
    or give an absolute cwd the server can read.
    Example: haneul tune create lr-search.yaml --watch
    """
    from haneul.tune.spec import StudySpec

    spec = StudySpec.load(file, name=name)
    client = _client()
    body: dict[str, Any] = {"spec": spec.to_dict()}
    team_id = _team_id(client, team)
    if team_id is not None:
        body["team"] = team_id
    study = client.request_json("POST", "/api/v1/tune/studies", json=body)
    page = _page(client, study)
    if as_json:
        output.print_json({**study, "url": page})
    elif not watch:
        output.say(str(study["id"]))
        output.note(f"study {study['id']} {study['name']!r} {study['status']}: {page}")
    else:
        output.note(f"study {study['id']} {study['name']!r} {study['status']}: {page}", style="bold")
    if watch:
        raise typer.Exit(_watch(client, str(study["id"])))


def _watch(client: Any, ref: str, interval: float = 1.0) -> int:
    """Show the study's progress until it is no longer running; 1 when it failed or no trial completed."""
    study = client.request_json("GET", _path(ref))
    text = _progress_text(study)
    try:
        with output.progress() as bar:
            task = bar.add_task(text, total=study["budget"]["trials"])
            while True:
                done = sum(n for state, n in study["trials"].items() if state in ENDED)
                bar.update(task, completed=done, total=max(study["budget"]["trials"], done), description=text)
                if study["status"] != "running":
                    break
                time.sleep(interval)
                try:
                    study = client.request_json("GET", _path(ref))
                    text = _progress_text(study)
                except ServerUnavailable:  # a restarting server picks its studies up again: wait for it
                    text = f"{study['name']}: the server is unreachable; retrying"
    except KeyboardInterrupt:
        output.note(f"stopped watching; study {study['name']!r} goes on running "
                    f"(haneul tune show {study['name']}, haneul tune stop {study['name']})")
        return 130
    reason = f": {study['reason']}" if study.get("reason") else ""
    output.note(f"study {study['name']!r} {study['status']}{reason}; best {_best_text(study['best_value'])}"
                + (f" (trial {study['best_trial']})" if study["best_trial"] is not None else ""))
    return 1 if study["status"] == "failed" or study["best_value"] is None else 0


def _progress_text(study: Mapping[str, Any]) -> str:
    counts = study["trials"]
    parts = [f"{study['launched']} launched"] + [
        f"{counts.get(state, 0)} {state}" for state in ("running", "complete", "pruned", "failed")
        if counts.get(state) or state in ("running", "complete")]
    return f"{study['name']}: {', '.join(parts)}; best {_best_text(study['best_value'])}"


# ------------------------------------------------------------------ reading
@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the studies you may read: status, trials launched of the budget, best value, sampler, pruner."""
    client = _client()
    studies = client.request_json("GET", "/api/v1/tune/studies")
    if as_json:
        output.print_json(studies)
        return
    from rich.text import Text

    rows = [{"id": str(s["id"]), "name": s["name"], "status": s["status"], "trials": _trials_text(s),
             "best": s["best_value"],
             "objective": f"{s['objective']['direction'][:3]} {s['objective']['metric']}",
             "sampler": s["sampler"], "pruner": s["pruner"]} for s in studies]
    colour = {"status": lambda status: Text(status, style=STATUS_COLOURS.get(status, "white"))}
    output.print_table(rows, columns=["id", "name", "status", "trials", "best", "objective", "sampler", "pruner"],
                       formats=colour, right=["trials", "best"],
                       no_wrap=["id", "name", "status", "trials", "best", "objective", "sampler", "pruner"],
                       title=f"{len(rows)} studies")
    if rows:
        output.note(f"pages: {client.url}/tune")


@app.command("show")
def show(
    study: str = typer.Argument(..., help=STUDY_HELP),
    sort: str = typer.Option("number", "--sort", help="Order trials by number, value, state, created_at, "
                             "compute_s or last_step; a leading '-' sorts descending."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many trials to list."),
    as_json: JsonOpt = False,
) -> None:
    """Show a study: status, objective, budget, best trial, then its trials with their parameters."""
    client = _client()
    info = client.request_json("GET", _path(study))
    rows = client.request_json("GET", _path(study, "trials"), params={"sort": sort, "limit": limit})
    if as_json:
        output.print_json({"study": info, "trials": rows})
        return
    from rich.text import Text

    objective = info["objective"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(info["trials"].items())) or "none yet"
    budget = info["budget"]
    fields = {
        "study": f"{info['id']} {info['name']}", "status": info["status"], "reason": info.get("reason") or "—",
        "objective": f"{objective['metric']} ({objective['direction']}, {objective['use']} value)",
        "algorithm": f"{info['sampler']} sampler, {info['pruner']} pruner",
        "budget": f"{budget['trials']} trials, {budget['concurrent']} at a time",
        "trials": f"{_trials_text(info)} launched: {counts}",
        "best": _best_text(info["best_value"]) + (f" (trial {info['best_trial']})"
                                                  if info["best_trial"] is not None else ""),
        "elapsed": f"{info['elapsed']:.0f} s", "page": _page(client, info),
    }
    output.print_fields(fields)
    table = [{"#": t["number"], "state": t["state"], "value": t["value"], "params": _params_text(t["params"]),
              "steps": t["last_step"], "session": t["session_id"],
              "note": (t.get("reason") or "") + (f" (from trial {t['parent_trial']})"
                                                 if t.get("parent_trial") is not None else "")}
             for t in rows]
    colour: dict[str, Callable[[Any], Any]] = {
        "state": lambda state: Text(state, style=STATE_COLOURS.get(state, "white")), "#": str, "session": str}
    columns = ["#", "state", "value", "params", "steps", "session"]
    if any(row["note"] for row in table):
        columns.append("note")
    output.print_table(table, columns=columns, formats=colour, right=["value", "steps"],
                       title=f"{len(table)} of {info['launched']} trials")


@app.command("best")
def best(study: str = typer.Argument(..., help=STUDY_HELP), as_json: JsonOpt = False) -> None:
    """Print the best completed trial: its value and parameters (--json: the whole trial)."""
    trial = _client().request_json("GET", _path(study, "best"))

    def show() -> None:
        output.say(f"{trial['value']!r}")
        for name, value in trial["params"].items():
            output.say(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
        output.note(f"trial {trial['number']}, session {trial['session_id']}")

    output.emit(trial, as_json=as_json, show=show)


@app.command("export")
def export(
    study: str = typer.Argument(..., help=STUDY_HELP),
    format: str = typer.Option("csv", "--format", help="csv (one row per trial, a column per parameter) "
                               "or json (the study and its trials)."),
    out: Path = out_option("Write to this file (atomically) instead of printing.", None),
) -> None:
    """Export a study's trials (number, state, value, parameters, steps, compute time, session)."""
    from haneul.io import atomic_write_text

    if format not in ("csv", "json"):
        raise InvalidInput(f"--format {format!r} is unknown; use csv or json")
    client = _client()
    text = client._request("GET", _path(study, "export"), params={"format": format}).text
    if out is None:
        output.say(text.rstrip("\n"))
        return
    atomic_write_text(out, text)
    output.note(f"wrote {out}")


# ------------------------------------------------------------------ changing
@app.command("stop")
def stop(study: str = typer.Argument(..., help=STUDY_HELP), as_json: JsonOpt = False) -> None:
    """Stop launching trials; running trials are paused (they save and exit), so `resume` continues them."""
    s = _client().request_json("POST", _path(study, "stop"))
    output.emit(s, as_json=as_json, show=lambda: output.say(f"study {s['name']}: {s['status']}"))


@app.command("resume")
def resume(study: str = typer.Argument(..., help=STUDY_HELP), as_json: JsonOpt = False) -> None:
    """Run a stopped or finished study again: paused trials resume, new ones launch while budget is left."""
    s = _client().request_json("POST", _path(study, "resume"))
    output.emit(s, as_json=as_json, show=lambda: output.say(
        f"study {s['name']}: {s['status']} ({_trials_text(s)} trials)"))


@app.command("edit")
def edit(
    study: str = typer.Argument(..., help=STUDY_HELP),
    trials: int = typer.Option(None, "--trials", min=1, help="The new trial budget (raise it to extend the study)."),
    concurrent: int = typer.Option(None, "--concurrent", min=1, help="How many trials may run at once."),
    set_range: list[str] = typer.Option([], "--set-range", help="PARAM=LOW:HIGH: narrow or widen a number "
                                        "parameter's range; repeatable."),
    file: Path = typer.Option(None, "--file", help="A study file: its space and budget replace the study's "
                              "(the command, objective and algorithm of a study cannot change)."),
    as_json: JsonOpt = False,
) -> None:
    """Change a study while it runs: budget, concurrency, the search space. Trials launched from now on follow.

    A finished study whose trial budget was raised goes on after `haneul tune resume`.
    Example: haneul tune edit lr-search --trials 60 --set-range lr=1e-4:1e-2
    """
    client = _client()
    current = client.request_json("GET", _path(study))
    changes: dict[str, Any] = _file_changes(current["spec"], file) if file is not None else {}
    budget = dict(changes.get("budget") or {})
    if trials is not None:
        budget["trials"] = trials
    if concurrent is not None:
        budget["concurrent"] = concurrent
    if budget:
        changes["budget"] = budget
    if set_range:
        space = dict(changes.get("space") or {})
        base = {**current["spec"]["space"], **{k: v for k, v in space.items() if v is not None}}
        for item in set_range:
            name, low, high = _parse_range(item)
            if name not in base:
                raise InvalidInput(f"--set-range {item!r}: {name!r} is not a parameter of the study "
                                   f"({', '.join(base)})")
            param = base[name]
            if param["type"] == "categorical":
                raise InvalidInput(f"--set-range {item!r}: {name!r} is categorical; change its choices with --file")
            space[name] = {**param, "low": low, "high": high}
        changes["space"] = space
    if not changes:
        raise InvalidInput("nothing to change; give --trials, --concurrent, --set-range or --file")
    s = client.request_json("PATCH", _path(study), json=changes)

    def show() -> None:
        output.say(f"study {s['name']}: {s['status']}, budget {s['budget']['trials']} trials, "
                   f"{s['budget']['concurrent']} at a time")
        if s["status"] != "running" and s["launched"] < s["budget"]["trials"]:
            output.note(f"the study is {s['status']}; `haneul tune resume {s['name']}` runs the new budget")

    output.emit(s, as_json=as_json, show=show)


def _parse_range(item: str) -> tuple[str, float, float]:
    name, sep, rest = item.partition("=")
    low, colon, high = rest.partition(":")
    if not sep or not colon or not name:
        raise InvalidInput(f"--set-range {item!r} must look like PARAM=LOW:HIGH, e.g. lr=1e-4:1e-2")
    bounds = []
    for text in (low, high):
        number = _value(text.strip())
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise InvalidInput(f"--set-range {item!r}: {text!r} is not a number")
        bounds.append(number)
    return name, bounds[0], bounds[1]


def _file_changes(current: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """What an edited study file changes: its space (a parameter it dropped maps to null) and budget.

    The running study keeps its command, objective and algorithm; a file that changes them is
    refused with one line rather than half-applied.
    """
    from haneul.tune.spec import StudySpec

    new = StudySpec.load(file, name=str(current["name"])).to_dict()
    fixed = sorted(key for key in set(new) | set(current)
                   if key not in (*EDITABLE, "name", "cwd", "enqueue") and new.get(key) != current.get(key))
    if fixed:
        raise InvalidInput(f"{file} changes {', '.join(fixed)}, which a running study keeps; a study can change "
                           f"only {', '.join(EDITABLE)}: start a new study for the rest")
    if new.get("cwd") != current.get("cwd"):
        output.note(f"the study keeps running its trials in {current.get('cwd')} (the file's folder is not used)",
                    style="yellow")
    if new.get("enqueue") != current.get("enqueue"):
        output.note(f"the enqueue list of {file} is read only when a study is created; queue trials of a "
                    "running study with `haneul tune enqueue`", style="yellow")
    changes: dict[str, Any] = {}
    space: dict[str, Any] = dict(new["space"])
    space.update({name: None for name in current["space"] if name not in new["space"]})
    if space != current["space"]:
        changes["space"] = space
    if new["budget"] != current["budget"]:
        changes["budget"] = new["budget"]
    for key in ("description", "priority"):
        if new.get(key) != current.get(key):
            changes[key] = new[key]
    return changes


@app.command("enqueue")
def enqueue(
    study: str = typer.Argument(..., help=STUDY_HELP),
    params: list[str] = typer.Argument(..., help="PARAM=VALUE for every parameter of the space, e.g. "
                                       "lr=0.003 dim=64 loss=bpr."),
    as_json: JsonOpt = False,
) -> None:
    """Queue a hand-written trial: the next trial the study launches uses these parameters.

    Use it to try a known good setting first, or one the sampler has not reached. A finished study
    launches it after its budget is raised (edit --trials) and it is resumed.
    """
    chosen: dict[str, Any] = {}
    for pair in params:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"{pair!r} must look like PARAM=VALUE, e.g. lr=0.003")
        chosen[name] = _value(text)
    res = _client().request_json("POST", _path(study, "trials"), json={"params": chosen})
    output.emit(res, as_json=as_json, show=lambda: output.say(
        f"queued a trial with {_params_text(res['params'])}"))


@app.command("rm")
def rm(
    study: str = typer.Argument(..., help=STUDY_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm: the study, its trials and Optuna's record of "
                             "them are deleted for good (the trials' sessions stay)."),
) -> None:
    """Delete a study: its running trials are stopped; their sessions stay on the platform."""
    if not yes:
        raise InvalidInput(f"removing study {study} deletes it and its trial records for good; add --yes to "
                           f"confirm (or stop it: haneul tune stop {study})")
    client = _client()
    client._request("DELETE", _path(study))
    output.say(f"study {study}: deleted")
