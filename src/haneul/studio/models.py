"""The Studio's model picker and generation back-ends (HyperCLOVA §5: the playground sends a prompt to a
model and shows the answer as it is written).

Three kinds of model can be picked:

- the models ``haneul.lm`` serves locally: the embedded ``smollm2-135m``, models registered with
  ``haneul lm register`` and trained model folders under ``<home>/models``; they are loaded and
  sampled by :mod:`haneul.lm.serve` / :mod:`haneul.lm.generate` (one request at a time per model),
- OpenAI-compatible servers given to the plugin (``endpoints={"name": "http://host/v1#model"}``),
- OpenAI-compatible servers a team configured (``/api/v1/studio/endpoints``), picked as
  ``endpoint:NAME``.

Every back-end streams text deltas and returns the finish reason; a failure mid-stream raises a
:class:`~haneul.errors.HaneulError`, which the run route turns into an ``error`` event. Nothing here
imports torch until a local model is used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select

from haneul.errors import Conflict, HaneulError, InvalidInput, NotFound, register
from haneul.studio.db import endpoints
from haneul.studio.prompt import Assembled, Params

__all__ = ["Backend", "Catalog", "LocalBackend", "RemoteBackend", "UpstreamError", "ENDPOINT_PREFIX"]

#: how a team's configured endpoint is named in the model picker
ENDPOINT_PREFIX = "endpoint:"


@register
class UpstreamError(HaneulError):
    """The model server a request named failed or went away."""

    code = "upstream_error"
    http_status = 502


class Backend(Protocol):
    """A model that counts tokens and streams a completion."""

    name: str

    def context_window(self) -> int | None:
        """Tokens the model sees at once (prompt + answer); ``None`` when unknown (a remote server)."""

    def count(self, prompt: Assembled | str) -> int | None:
        """Tokens of a text or an assembled prompt with this model's tokenizer; ``None`` when unknown."""

    def stream(self, prompt: Assembled, params: Params) -> Generator[str, None, str]:
        """Yield text deltas; the return value is the finish reason (``stop`` or ``length``)."""


# --------------------------------------------------------------------------------------------------
# local models: haneul.lm's loader and sampler


class LocalBackend:
    """A model ``haneul.lm`` loads (a :class:`haneul.lm.serve.ModelPool` entry), loaded on first use."""

    def __init__(self, name: str, local: Any) -> None:
        self.name = name
        self._local = local  # haneul.lm.serve._Local: .gen (loaded lazily) and .lock

    @property
    def gen(self) -> Any:
        try:
            return self._local.gen
        except HaneulError:
            raise
        except Exception as exc:  # a folder deleted or broken since it was listed
            raise NotFound(f"model {self.name!r} could not be loaded ({exc.__class__.__name__}: {exc}); "
                           "pick another model".splitlines()[0]) from None

    def context_window(self) -> int | None:
        return int(self.gen.context_window)

    def _text(self, prompt: Assembled | str) -> str:
        if isinstance(prompt, str):
            return prompt
        return prompt.text if prompt.mode == "completion" and prompt.text is not None else \
            self.gen.render_chat(prompt.messages)

    def count(self, prompt: Assembled | str) -> int | None:
        return len(self.gen.tokenizer.encode(self._text(prompt)))

    def stream(self, prompt: Assembled, params: Params) -> Generator[str, None, str]:
        from haneul.lm.generate import SamplingParams

        gen = self.gen
        sampling = SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p,
            repetition_penalty=params.repetition_penalty, stop=list(params.stop), seed=params.seed,
        ).check()
        text = self._text(prompt)
        with self._local.lock:
            reason = yield from gen.stream(text, sampling)
        return reason


# --------------------------------------------------------------------------------------------------
# remote models: any OpenAI-compatible server


_client_lock = threading.Lock()
_client: Any = None


def _http() -> Any:
    """The one HTTP client every remote model's requests share. A new ``httpx.Client`` builds an SSL context
    and loads the CA bundle (26-42 ms on a busy 2-core machine) even for an http:// URL, which a client per
    run added to every run's time to first token; a shared one also keeps connections alive. Its limit
    covers a batch test's largest batch of concurrent requests."""
    global _client
    with _client_lock:
        if _client is None:
            import httpx

            _client = httpx.Client(timeout=httpx.Timeout(600, connect=5),
                                   limits=httpx.Limits(max_connections=256, max_keepalive_connections=32))
        return _client


class RemoteBackend:
    """An OpenAI-compatible server at ``url`` (its base, ending in ``/v1``) serving ``remote_model``."""

    def __init__(self, name: str, url: str, remote_model: str, window: int | None = None) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.remote_model = remote_model
        self.window = window
        self.usage: dict[str, int] = {}  # what the server reported for the last stream

    def context_window(self) -> int | None:
        return self.window

    def count(self, prompt: Assembled | str) -> int | None:
        return None  # its tokenizer is the server's own

    def payload(self, prompt: Assembled, params: Params) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.remote_model, "stream": True, "max_tokens": params.max_tokens,
                                "temperature": params.temperature, "top_p": params.top_p}
        if prompt.mode == "chat":
            body["messages"] = prompt.messages
        else:
            body["prompt"] = prompt.text
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        # extensions vLLM and haneul understand; left out at their neutral values for strict servers
        if params.top_k:
            body["top_k"] = params.top_k
        if params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty
        return body

    def stream(self, prompt: Assembled, params: Params) -> Generator[str, None, str]:
        import httpx

        path = "/chat/completions" if prompt.mode == "chat" else "/completions"
        finished: str | None = None
        self.usage = {}
        where = f"the model endpoint {self.name} ({self.url})"
        try:
            with _http().stream("POST", self.url + path, json=self.payload(prompt, params)) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise UpstreamError(f"{where} answered {resp.status_code}: {_message(resp.text)}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = finished or "stop"
                        break
                    chunk = json.loads(data)
                    if isinstance(chunk.get("usage"), dict):
                        self.usage = {k: int(v) for k, v in chunk["usage"].items() if isinstance(v, int)}
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content") if prompt.mode == "chat" \
                            else choice.get("text")
                        if delta:
                            yield delta
                        if choice.get("finish_reason"):
                            finished = str(choice["finish_reason"])
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{where} stopped answering mid-stream ({exc.__class__.__name__}: {exc}); "
                                "check that it is running".splitlines()[0]) from None
        except json.JSONDecodeError:
            raise UpstreamError(f"{where} sent a stream event that is not JSON; is it OpenAI-compatible?") from None
        if finished is None:
            raise UpstreamError(f"{where} closed the stream before the answer finished; check that it is running")
        return finished


def _message(text: str) -> str:
    try:
        body = json.loads(text)
        return str(body["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return text.strip().splitlines()[0][:300] if text.strip() else "(empty body)"


def _split_url(location: str) -> tuple[str, str]:
    base, _, remote = location.partition("#")
    return base, remote


# --------------------------------------------------------------------------------------------------
# the picker


@dataclass(frozen=True)
class ModelChoice:
    name: str
    kind: str  # local | remote
    origin: str  # embedded | registered | home | plugin | team | ptune
    team_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "origin": self.origin, "team_id": self.team_id}


class Catalog:
    """The models a principal may pick, and their back-ends. ``root`` is the server's models folder
    (``<home>/models``); ``remotes`` maps names to ``http://host/v1#remote-model`` URLs given to the
    plugin; the teams' own endpoints live in the ``studio_endpoints`` table."""

    def __init__(self, engine: Engine, *, root: Path, remotes: Mapping[str, str] | None = None,
                 pool: Any = None, soft_prompts: Any = None) -> None:
        self.engine = engine
        self.root = root
        self.remotes = dict(remotes or {})
        # the teams' learned soft prompts (haneul.studio.ptune.PTuneJobs), picked as ptune:NAME
        self.soft_prompts = soft_prompts
        if pool is None:
            from haneul.lm.serve import ModelPool

            pool = ModelPool(root=root)
        self.pool = pool

    def choices(self, teams: Collection[int] | None) -> list[ModelChoice]:
        out = [ModelChoice(s.name, "remote" if s.kind == "remote" else "local",
                           "embedded" if s.kind == "smollm2" else s.origin) for s in self.pool.sources()]
        out += [ModelChoice(name, "remote", "plugin") for name in self.remotes]
        out += [ModelChoice(ENDPOINT_PREFIX + e["name"], "remote", "team", e["team_id"])
                for e in self.list_endpoints(teams)]
        if self.soft_prompts is not None:
            from haneul.studio.ptune import PTUNE_PREFIX

            out += [ModelChoice(PTUNE_PREFIX + j["name"], "local", "ptune", j["team_id"])
                    for j in self.soft_prompts.done(teams)]
        return out

    def backend(self, name: str, teams: Collection[int] | None, *, prefer_team: int | None = None) -> Backend:
        if name.startswith(ENDPOINT_PREFIX):
            found = [e for e in self.list_endpoints(teams) if e["name"] == name[len(ENDPOINT_PREFIX):]]
            found.sort(key=lambda e: (e["team_id"] != prefer_team, e["team_id"] or 0))
            if found:
                e = found[0]
                return RemoteBackend(name, e["url"], e["remote_model"], e["context_window"])
        elif self.soft_prompts is not None and name.startswith("ptune:"):
            from haneul.studio.ptune import PTUNE_PREFIX, soft_prompt_model

            tuned = [j for j in self.soft_prompts.done(teams) if j["name"] == name[len(PTUNE_PREFIX):]]
            tuned.sort(key=lambda j: (j["team_id"] != prefer_team, j["team_id"] or 0))
            if tuned:
                return LocalBackend(name, soft_prompt_model(self.soft_prompts.prompt_folder(tuned[0]["id"])))
        elif name in self.remotes:
            base, remote = _split_url(self.remotes[name])
            return RemoteBackend(name, base, remote or name)
        else:
            for s in self.pool.sources():
                if s.name == name:
                    if s.kind == "remote":
                        base, remote = _split_url(s.location)
                        return RemoteBackend(name, base, remote or name)
                    return LocalBackend(name, self.pool.local(s))
        names = ", ".join(c.name for c in self.choices(teams)) or "none"
        raise NotFound(f"model {name!r} does not exist; available models: {names}")

    # -- a team's endpoints
    def list_endpoints(self, teams: Collection[int] | None) -> list[dict[str, Any]]:
        query = select(endpoints).order_by(endpoints.c.id)
        if teams is not None:
            query = query.where(endpoints.c.team_id.in_(list(teams)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def add_endpoint(self, *, team_id: int | None, name: str, url: str, remote_model: str,
                     context_window: int | None, created_by: str) -> dict[str, Any]:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"endpoint url {url!r} must start with http:// or https:// (e.g. http://host:8000/v1)")
        if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
            raise InvalidInput(f"endpoint name {name!r} is invalid; use letters, digits, '.', '_' or '-'")
        if context_window is not None and not 1 <= context_window <= 10_000_000:
            raise InvalidInput(f"context_window={context_window} must be between 1 and 10000000")
        with self.engine.begin() as conn:
            clash = conn.execute(select(endpoints.c.id).where(endpoints.c.team_id == team_id,
                                                              endpoints.c.name == name)).first()
            if clash is not None:
                raise Conflict(f"the team already has an endpoint named {name!r}; delete it first or pick another name")
            conn.execute(insert(endpoints).values(
                team_id=team_id, name=name, url=url.rstrip("/"), remote_model=remote_model or name,
                context_window=context_window, created_by=created_by, created_at=time.time()))
        return next(e for e in self.list_endpoints(None) if e["team_id"] == team_id and e["name"] == name)

    def remove_endpoint(self, endpoint_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(endpoints.delete().where(endpoints.c.id == endpoint_id))
