"""Top-level `haneul` commands that serve a session's checkpoint: deploy, undeploy, deployments."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt
from haneul.errors import HaneulError, InvalidInput
from haneul.platform.format import age


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("undeploy")(undeploy)
    app.command("deployments")(deployments)


def _client() -> Any:
    from haneul.platform.client import Client

    return Client()


def _call(method: str, path: str, **kwargs: Any) -> Any:
    with contextlib.closing(_client()) as client:
        return client.call(method, path, **kwargs)


def target_body(target: str) -> dict[str, Any]:
    """``SESSION`` or ``model:NAME[@ALIAS|:VERSION]`` as the deploy request's ``session`` or ``model``."""
    if target.startswith("model:"):
        ref = target[len("model:"):]
        if not ref:
            raise InvalidInput("model: needs a name, e.g. haneul deploy model:nsmc@production")
        return {"model": ref}
    if not target.isdigit():
        raise InvalidInput(f"{target!r} is neither a session id nor model:NAME[@ALIAS|:VERSION]; "
                           "e.g. haneul deploy 12 or haneul deploy model:nsmc@production")
    return {"session": int(target)}


def deploy(
    target: str = typer.Argument(..., help="A session id, or model:NAME[@ALIAS|:VERSION] of the model registry "
                                 "(ls: list the deployments, as haneul deployments does)."),
    checkpoint: str = typer.Option(None, "--checkpoint", "-c", help="The session's checkpoint to serve "
                                   "(default: the latest)."),
    name: str = typer.Option(None, "--name", "-n", help="The deployment's name (default: <session name>-<id>)."),
    replicas: int = typer.Option(1, "--replicas", "-r", help="Serving processes to start (1-16; a language "
                                 "model is served by the server itself and ignores it)."),
    batch: int = typer.Option(1, "--batch", help="Micro-batching: gather up to N concurrent inputs into one "
                              "infer call (1: off)."),
    batch_wait_ms: float = typer.Option(0.0, "--batch-wait-ms", help="Micro-batching: how long a replica waits "
                                        "for a batch to fill, in milliseconds."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the replicas are started, without "
                                 "waiting for them to be ready."),
    as_json: JsonOpt = False,
) -> None:
    """Serve a session's checkpoint: start replicas of its code with HANEUL_MODE=serve, where
    haneul.bind(load=..., infer=...) loads the checkpoint and answers
    POST /api/v1/deployments/NAME/predict {"inputs": [...]}. Waits until every replica is ready.
    A checkpoint that is a language model (a folder with its config.json and tokenizer.json) is served
    by the server itself at /v1/chat/completions and /v1/completions with "model": NAME.
    Example: haneul deploy 12 --replicas 2 --batch 8 --batch-wait-ms 5
    """
    if target == "ls":
        deployments(as_json=as_json)
        return
    body = {**target_body(target), "checkpoint": checkpoint, "name": name, "replicas": replicas,
            "batch": batch, "batch_wait_ms": batch_wait_ms}
    d = _call("POST", "/api/v1/deployments", json=body)
    if d.get("kind") == "lm" and (replicas > 1 or batch > 1):
        output.note("a language model is served by the server itself: --replicas and --batch do not apply")
    if not no_wait:
        d = _wait(d)
    if as_json:
        output.print_json(d)
        return
    output.say(d["name"])
    url = _client().url + d["url"]
    if d.get("kind") == "lm":
        output.note(f"deployment {d['name']} {d['status']} (language model): POST {url} with "
                    f'{{"model": "{d["name"]}", "messages": [...]}}')
        return
    output.note(f"deployment {d['name']} {d['status']} ({d['replicas_ready']}/{d['replicas_wanted']} replicas "
                f"ready): POST {url}")


def _wait(d: dict[str, Any]) -> dict[str, Any]:
    name = d["name"]
    started = time.monotonic()
    shown = ""
    while d["status"] == "starting":
        line = (f"deployment {name}: {d['replicas_ready']}/{d['replicas_wanted']} replicas ready "
                f"({time.monotonic() - started:.0f} s)")
        if line != shown:
            output.note(line)
            shown = line
        time.sleep(0.2)
        d = _call("GET", f"/api/v1/deployments/{name}")
    if d["status"] == "failed":
        raise HaneulError(f"deployment {name} failed: {d['reason']}")
    return d


def undeploy(
    name: str = typer.Argument(..., help="The deployment's name (see haneul deployments)."),
    as_json: JsonOpt = False,
) -> None:
    """Stop a deployment's replicas (SIGTERM, then SIGKILL after 5 s) and mark it stopped."""
    d = _call("DELETE", f"/api/v1/deployments/{name}")
    output.emit(d, as_json=as_json, show=lambda: output.say(f"deployment {name}: {d['status']}"))


def deployments(as_json: JsonOpt = False) -> None:
    """List deployments: kind (infer: replicas of the session's code; lm: a language model served at
    /v1/chat/completions), status, replicas ready, requests, errors and latency p50/p99 (this server's
    run) and the path to call."""
    items = _call("GET", "/api/v1/deployments")
    if as_json:
        output.print_json(items)
        return
    if not items:
        output.note("no deployments; start one with `haneul deploy SESSION`")
        return

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    rows = [{"name": d["name"], "kind": d.get("kind", "infer"), "status": d["status"],
             "checkpoint": f"{d['session_id']}:{d['checkpoint']}",
             "ready": "-" if d.get("kind") == "lm" else f"{d['replicas_ready']}/{d['replicas_wanted']}",
             "requests": str(d["metrics"]["requests"]), "errors": str(d["metrics"]["errors"]),
             "p50 ms": ms(d["metrics"]["p50_ms"]), "p99 ms": ms(d["metrics"]["p99_ms"]),
             "POST to": d.get("url", ""), "age": age(d["created_at"]), "why": d.get("reason") or ""}
            for d in items]
    output.print_table(rows, right=["requests", "errors", "p50 ms", "p99 ms"], no_wrap=["name"])
