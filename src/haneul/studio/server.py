"""The ``studio`` server plugin (HyperCLOVA §5, "HyperCLOVA Studio"): REST routes for presets, their
versions, diffs, forks, exports and runs; the playground's streaming run route; token counting; and a
preset served as an OpenAI-compatible chat endpoint.

``POST /api/v1/studio/run`` answers Server-Sent Events: ``token`` (``{"text"}``) as the model writes,
then ``done`` (latency and token counts) or ``error`` (``{"code", "message"}``); the run is logged
either way. ``POST /v1/presets/{name}/chat/completions`` answers like OpenAI's chat route (plain or
``stream: true``) with the preset's prompt around the request's messages; the request's sampling
parameters override the preset's. Every preset belongs to a team and is checked like the platform's
resources (another team's preset is a 404, a viewer changing one a 403).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from haneul.errors import Forbidden, HaneulError, InvalidInput, NotFound
from haneul.platform.plugins import CurrentPrincipal, NavEntry, Plugin, Principal, ServerContext, errors
from haneul.studio.db import MIGRATIONS
from haneul.studio.filters import NOTICE, Screen, TeamFilters
from haneul.studio.models import Backend, Catalog
from haneul.studio.prompt import Assembled, Params, PromptSpec, assemble, check_budget, render_input
from haneul.studio.service import VERSION_FIELDS, Studio, VersionFields

__all__ = ["plugin", "create_router", "Prepared"]

HERE = Path(__file__).resolve().parent
PresetRef = Annotated[str, Field(min_length=1, max_length=100)]
Number = Annotated[int, Ge(1), Le(2**31 - 1)]
TeamId = Annotated[int | None, Field(None, ge=0, le=2**31 - 1, description="the team (default: yours)")]


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruction: str | None = None
    examples: list[dict[str, Any]] | None = None
    input_template: str | None = None
    mode: str | None = None
    model: str | None = Field(None, description="a name from GET /api/v1/studio/models")
    params: dict[str, Any] | None = Field(None, description="temperature, top_p, top_k, max_tokens, "
                                          "repetition_penalty, stop, inject_start, inject_restart, seed")

    def fields(self) -> dict[str, Any]:
        return {k: v for k in VERSION_FIELDS if (v := getattr(self, k)) is not None}


class PresetIn(VersionIn):
    name: str = Field(min_length=1, max_length=100)
    team: TeamId = None
    description: str = Field("", max_length=2000)
    note: str = Field("", max_length=2000)


class PresetEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)


class NewVersionIn(VersionIn):
    note: str = Field("", max_length=2000)


class ForkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: TeamId = None
    name: str | None = Field(None, min_length=1, max_length=100)


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(description="what GET /api/v1/studio/presets/{preset}/export gave")
    team: TeamId = None
    name: str | None = Field(None, min_length=1, max_length=100, description="a new name (default: the document's)")


class RunIn(VersionIn):
    input: str = Field(max_length=200_000)
    preset: str | None = Field(None, min_length=1, max_length=100, description="start from this preset's version")
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="its version (default: the newest)")
    team: TeamId = None


class TokensIn(VersionIn):
    text: str | None = Field(None, max_length=1_000_000, description="count this text alone")
    input: str = Field("", max_length=200_000)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=500, description="the server's base URL, e.g. http://host:8000/v1")
    model: str = Field("", max_length=200, description="the model name the server expects (default: name)")
    context_window: int | None = Field(None, ge=1, le=10_000_000)
    team: TeamId = None


def plugin(ctx: ServerContext) -> Plugin:
    from haneul.lm.registry import models_dir
    from haneul.studio.ptune import PTuneJobs

    studio = Studio(ctx.engine)
    tuned = PTuneJobs(ctx.engine, ctx.home / ctx.name / "ptune", ctx.platform)
    catalog = Catalog(ctx.engine, root=models_dir(ctx.home), remotes=configured_endpoints(ctx.home / ctx.name),
                      soft_prompts=tuned)
    router = create_router(studio, catalog, ctx)
    # further studio features bring their own routers, mounted here one line each
    from haneul.studio.compare import tools_router  # it imports this module, so not at the top
    router.include_router(tools_router(studio, catalog, ctx))  # few-shot builder, batch tests, compare
    from haneul.studio.apps import create_apps_router  # imports this module: loaded once it is complete
    router.include_router(create_apps_router(studio, catalog, ctx))
    from haneul.studio.ptune import ptune_router  # imports compare, which imports this module
    router.include_router(ptune_router(studio, catalog, ctx, tuned))  # soft prompts learned from a preset
    return Plugin(router=router, templates=HERE / "templates", static=HERE / "static",
                  nav=[NavEntry("Studio", "/studio", order=40)], migrations=MIGRATIONS,
                  # a shared test app's page and run route check its share token themselves (an unknown
                  # or revoked one is a 404); a preset endpoint checks a preset API key (hnk-...)
                  public_paths=[r"/studio/apps/[A-Za-z0-9_-]{16,128}(/run)?"],
                  route_keys=[("hnk-", r"/v1/presets/[^/]{1,100}/chat/completions")])


def configured_endpoints(folder: Path) -> dict[str, str]:
    """The server-wide remote models of ``<home>/studio/endpoints.json``: ``{"name": "http://host/v1#model"}``
    (``#model`` is the name the remote server expects; default: ``name``)."""
    path = folder / "endpoints.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith(("http://", "https://")) for k, v in data.items()):
        raise InvalidInput(f'{path} must map model names to http(s) URLs, e.g. {{"local-vllm": "http://127.0.0.1:8001/v1#qwen"}}')
    return data


# --------------------------------------------------------------------------------------------------
# a run: prepared (checked, counted) before the stream starts, so a bad request is a plain 400


@dataclass
class Prepared:
    backend: Backend
    prompt: Assembled
    params: Params
    input: str
    team_id: int | None
    version_id: int | None
    prompt_tokens: int | None
    context_window: int | None
    restart: str = ""


def prepare(catalog: Catalog, principal: Principal, *, content: VersionFields, text: str, team_id: int | None,
            version_id: int | None, prompt: Assembled | None = None) -> Prepared:
    spec = content.spec()
    assembled = prompt if prompt is not None else assemble(spec, text)
    backend = catalog.backend(content.model, principal.readable_teams(), prefer_team=team_id)
    n_prompt = backend.count(assembled)
    window = backend.context_window()
    if n_prompt is not None:
        check_budget(n_prompt, content.params.max_tokens, window, content.model)
    return Prepared(backend, assembled, content.params, text, team_id, version_id, n_prompt, window,
                    restart=content.params.inject_restart if content.mode == "completion" else "")


def execute(studio: Studio, prep: Prepared, *, source: str, created_by: str,
            screen: Screen | None = None) -> Iterator[tuple[str, Any]]:
    """Generate and log one run: yields ``("token", text)`` then ``("done", info)`` or ``("error", info)``.
    A caller that stops reading (the playground's stop button) leaves the run logged as ``stopped``; an
    answer the team's ``screen`` blocks ends with ``("filtered", info)`` and is logged as ``filtered``."""
    run_id = studio.start_run(team_id=prep.team_id, preset_version_id=prep.version_id, source=source,
                              created_by=created_by, model=prep.backend.name, mode=prep.prompt.mode,
                              prompt=prep.prompt.stored(), input=prep.input, params=prep.params,
                              prompt_tokens=prep.prompt_tokens)
    started = time.perf_counter()
    out: list[str] = []
    logged = False
    stream = prep.backend.stream(prep.prompt, prep.params)

    def ms() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        while True:
            try:
                delta = next(stream)
            except StopIteration as end:
                reason = end.value or "stop"
                break
            out.append(delta)
            verdict = screen.output("".join(out)) if screen is not None else None
            if verdict is not None and verdict.blocked:  # the delta that tipped it is never sent
                studio.finish_run(run_id, status="filtered", output="".join(out), latency_ms=ms(),
                                  error=verdict.reason)
                logged = True
                yield "filtered", {"run_id": run_id, "reason": verdict.reason, "notice": NOTICE}
                return
            yield "token", delta
        text = "".join(out)
        # a remote server's own counts when it sent them (its back-end object serves this request only);
        # else the answer re-encoded with the model's tokenizer
        usage = getattr(prep.backend, "usage", None) or {}
        prompt_tokens = usage.get("prompt_tokens", prep.prompt_tokens)
        completion_tokens = usage.get("completion_tokens", prep.backend.count(text))
        latency = ms()
        studio.finish_run(run_id, status="done", output=text, latency_ms=latency, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens)
        logged = True
        yield "done", {"run_id": run_id, "finish_reason": reason, "latency_ms": latency,
                       "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "context_window": prep.context_window, "restart": prep.restart}
    except GeneratorExit:
        if logged:  # the caller had its answer and hung up before reading on
            raise
        studio.finish_run(run_id, status="stopped", output="".join(out), latency_ms=ms(),
                          error="the caller stopped reading the stream")
        raise
    except Exception as exc:
        err = exc if isinstance(exc, HaneulError) else \
            HaneulError(f"generation failed: {exc.__class__.__name__}: {exc}".splitlines()[0][:500])
        studio.finish_run(run_id, status="failed", output="".join(out), latency_ms=ms(), error=err.message)
        yield "error", {"run_id": run_id, "code": err.code, "message": err.message}
    finally:
        stream.close()  # lets a local model's lock go when the caller went away


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# --------------------------------------------------------------------------------------------------
# the router


def create_router(studio: Studio, catalog: Catalog, ctx: ServerContext | None = None) -> APIRouter:
    router = APIRouter(tags=["studio"])

    def readable(ref: str, principal: Principal) -> int:
        pid = studio.find(ref, teams=principal.readable_teams(), prefer_team=principal.team_id)
        principal.check_read(studio.team_of(pid), f"preset {ref!r}")
        return pid

    def writable(ref: str, principal: Principal) -> int:
        pid = readable(ref, principal)
        principal.check_write(studio.team_of(pid), f"preset {ref!r}")
        return pid

    def new_team(principal: Principal, team: int | None) -> int | None:
        if principal.session_id is not None:
            raise Forbidden("a session's token may not change presets; use your own login")
        if principal.admin and team is None and principal.team_id is None:
            return None  # the local admin of a server without teams
        return principal.writable_team(team)

    # -- models and endpoints
    @router.get("/api/v1/studio/models", responses=errors())
    def list_models(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return [c.to_dict() for c in catalog.choices(principal.readable_teams())]

    @router.get("/api/v1/studio/endpoints", responses=errors())
    def list_endpoints(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return catalog.list_endpoints(principal.readable_teams())

    @router.post("/api/v1/studio/endpoints", status_code=201, responses=errors(400, 403, 404, 409))
    def add_endpoint(body: EndpointIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return catalog.add_endpoint(team_id=new_team(principal, body.team), name=body.name, url=body.url,
                                    remote_model=body.model, context_window=body.context_window,
                                    created_by=principal.name)

    @router.delete("/api/v1/studio/endpoints/{endpoint_id}", status_code=204, responses=errors(400, 403, 404))
    def remove_endpoint(endpoint_id: Annotated[int, Ge(1), Le(2**31 - 1)], principal: CurrentPrincipal) -> None:
        found = [e for e in catalog.list_endpoints(principal.readable_teams()) if e["id"] == endpoint_id]
        if not found:
            raise NotFound(f"endpoint {endpoint_id} not found; list them with GET /api/v1/studio/endpoints")
        principal.check_write(found[0]["team_id"], f"endpoint {endpoint_id}")
        catalog.remove_endpoint(endpoint_id)

    # -- presets
    @router.get("/api/v1/studio/presets", responses=errors())
    def list_presets(principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return studio.list_presets(teams=principal.readable_teams())

    @router.post("/api/v1/studio/presets", status_code=201, responses=errors(400, 403, 404, 409))
    def create_preset(body: PresetIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.create(name=body.name, team_id=new_team(principal, body.team), created_by=principal.name,
                             description=body.description, fields=body.fields(), note=body.note)

    @router.get("/api/v1/studio/presets/{preset}", responses=errors(400, 404))
    def get_preset(preset: PresetRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.get(readable(preset, principal))

    @router.patch("/api/v1/studio/presets/{preset}", responses=errors(400, 403, 404, 409))
    def edit_preset(preset: PresetRef, body: PresetEdit, principal: CurrentPrincipal) -> dict[str, Any]:
        if body.name is None and body.description is None:
            raise InvalidInput("nothing to change; give name or description (content changes are new versions)")
        return studio.update(writable(preset, principal), name=body.name, description=body.description)

    @router.delete("/api/v1/studio/presets/{preset}", status_code=204, responses=errors(400, 403, 404))
    def delete_preset(preset: PresetRef, principal: CurrentPrincipal) -> None:
        studio.delete(writable(preset, principal))

    @router.get("/api/v1/studio/presets/{preset}/versions", responses=errors(400, 404))
    def list_versions(preset: PresetRef, principal: CurrentPrincipal) -> list[dict[str, Any]]:
        return studio.versions(readable(preset, principal))

    @router.post("/api/v1/studio/presets/{preset}/versions", status_code=201, responses=errors(400, 403, 404))
    def save_version(preset: PresetRef, body: NewVersionIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.save_version(writable(preset, principal), fields=body.fields(), created_by=principal.name,
                                   note=body.note)

    @router.get("/api/v1/studio/presets/{preset}/versions/{number}", responses=errors(400, 404))
    def get_version(preset: PresetRef, number: Number, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.version(readable(preset, principal), number)

    @router.get("/api/v1/studio/presets/{preset}/diff", responses=errors(400, 404))
    def diff(preset: PresetRef, a: Annotated[int, Query(ge=1, le=2**31 - 1)],
             b: Annotated[int, Query(ge=1, le=2**31 - 1)], principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.diff(readable(preset, principal), a, b)

    @router.post("/api/v1/studio/presets/{preset}/fork", status_code=201, responses=errors(400, 403, 404, 409))
    def fork(preset: PresetRef, body: ForkIn, principal: CurrentPrincipal) -> dict[str, Any]:
        pid = readable(preset, principal)
        return studio.fork(pid, team_id=new_team(principal, body.team if body.team is not None else
                                                 studio.team_of(pid)),
                           name=body.name, created_by=principal.name)

    @router.get("/api/v1/studio/presets/{preset}/export", responses=errors(400, 404))
    def export(preset: PresetRef, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.export(readable(preset, principal))

    @router.post("/api/v1/studio/import", status_code=201, responses=errors(400, 403, 404, 409))
    def import_preset(body: ImportIn, principal: CurrentPrincipal) -> dict[str, Any]:
        return studio.import_(body.document, team_id=new_team(principal, body.team), created_by=principal.name,
                              name=body.name)

    @router.get("/api/v1/studio/runs", responses=errors(400, 404))
    def list_runs(principal: CurrentPrincipal, preset: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  offset: Annotated[int, Query(ge=0, le=2**62)] = 0) -> list[dict[str, Any]]:
        pid = readable(preset, principal) if preset is not None else None
        return studio.list_runs(teams=principal.readable_teams(), preset_id=pid, limit=limit, offset=offset)

    # -- the playground
    def run_content(body: RunIn | TokensIn, principal: Principal,
                    preset: str | None = None, version: int | None = None) -> tuple[VersionFields, int | None, int | None]:
        """The content a run uses, the version it matches (if it matches one) and its team."""
        if preset is None:
            team = body.team if isinstance(body, RunIn) else None
            team_id = principal.team_id if team is None else team
            if team is not None:
                principal.check_read(team, f"team {team}")
            return VersionFields.from_dict(body.fields()), None, team_id
        pid = readable(preset, principal)
        vid, base = studio.content(pid, version)
        content = VersionFields.from_dict(body.fields(), base=base)
        same = all(getattr(content, k) == getattr(base, k) for k in VERSION_FIELDS if k != "params")
        return content, vid if same else None, studio.team_of(pid)

    @router.post("/api/v1/studio/tokens", responses=errors(400, 404))
    def count_tokens(body: TokensIn, principal: CurrentPrincipal) -> dict[str, Any]:
        """Tokens of a text, or of the prompt the fields assemble around ``input``, with the model's
        tokenizer, and how many the context window leaves after ``max_tokens``."""
        content, _, team_id = run_content(body, principal)
        backend = catalog.backend(content.model, principal.readable_teams(), prefer_team=team_id)
        if body.text is not None:
            n = backend.count(body.text)
        else:
            spec = content.spec()
            n = backend.count(Assembled("completion", text=spec.completion_text(body.input)) if spec.mode == "completion"
                              else Assembled("chat", messages=spec.chat_messages(body.input)))
        window = backend.context_window()
        left = None if n is None or window is None else window - n - content.params.max_tokens
        return {"model": content.model, "tokens": n, "context_window": window,
                "max_tokens": content.params.max_tokens, "left": left}

    @router.post("/api/v1/studio/run", responses=errors(400, 403, 404),
                 response_class=StreamingResponse)
    def run(body: RunIn, principal: CurrentPrincipal) -> StreamingResponse:
        """Run a prompt; Server-Sent Events ``token``, then ``done`` or ``error``."""
        if principal.session_id is not None:
            raise Forbidden("a session's token may not run prompts; use your own login")
        # reading a preset is enough to run it (a viewer may try a team's prompts; the run is logged)
        content, vid, team_id = run_content(body, principal, body.preset, body.version)
        screen = TeamFilters(studio.engine).screen(team_id)
        if screen is not None:
            screen.input(body.input)
        prep = prepare(catalog, principal, content=content, text=body.input, team_id=team_id, version_id=vid)
        events = (_sse(kind, {"text": data} if kind == "token" else data)
                  for kind, data in execute(studio, prep, source="playground", created_by=principal.name,
                                            screen=screen))
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    add_preset_endpoint(router, studio, catalog, readable)
    if ctx is not None:
        from haneul.studio.pages import add_pages

        add_pages(router, studio, catalog, ctx, readable)
    return router


# --------------------------------------------------------------------------------------------------
# a preset as an OpenAI-compatible chat endpoint

#: request fields the preset endpoint accepts and ignores (the client library's defaults)
_IGNORED = {"model", "messages", "stream", "n", "user", "stream_options", "logprobs", "top_logprobs",
            "frequency_penalty", "presence_penalty", "response_format", "tools", "tool_choice", "metadata"}
_OVERRIDES = ("temperature", "top_p", "top_k", "max_tokens", "repetition_penalty", "stop", "seed")


def _openai_error(exc: HaneulError) -> JSONResponse:
    kind = "invalid_request_error" if exc.http_status < 500 else "server_error"
    retry = exc.details.get("retry_after")  # a preset key's rate limit
    return JSONResponse({"error": {"message": exc.message, "type": kind, "param": None, "code": exc.code}},
                        exc.http_status, headers={"Retry-After": str(retry)} if retry is not None else None)


def _chat_body(raw: Any) -> tuple[list[dict[str, str]], dict[str, Any], bool]:
    if not isinstance(raw, dict):
        raise InvalidInput("the request body must be a JSON object with 'messages'")
    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("messages must be a non-empty list of {'role', 'content'} objects")
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidInput("every message must be an object with a 'role' and a 'content'")
        content = m.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}]
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise InvalidInput(f"the content of a {m['role']!r} message must be a string")
        out.append({"role": m["role"], "content": content})
    if out[-1]["role"] != "user":
        raise InvalidInput(f"the last message must be the user's; got role {out[-1]['role']!r}")
    if raw.get("n", 1) not in (1, None):
        raise InvalidInput(f"n={raw.get('n')} is not supported; send n=1 and repeat the request for more")
    unknown = sorted(set(raw) - _IGNORED - set(_OVERRIDES))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; the preset endpoint takes messages, stream and "
                           f"{', '.join(_OVERRIDES)}")
    overrides = {k: raw[k] for k in _OVERRIDES if k in raw and raw[k] is not None}
    return out, overrides, bool(raw.get("stream", False))


def add_preset_endpoint(router: APIRouter, studio: Studio, catalog: Catalog, readable: Any) -> None:
    @router.post("/v1/presets/{name}/chat/completions", tags=["studio"], responses=errors(400, 404, 502))
    async def preset_chat(name: str, request: Request, principal: CurrentPrincipal) -> Any:
        """OpenAI's chat completions with the preset's newest version around the request's messages: in
        chat mode its system message and examples come first and the input template wraps the last user
        message; in completion mode the last user message is the input."""
        from starlette.concurrency import run_in_threadpool

        try:
            key = getattr(request.state, "route_key", None)
            if key is not None:  # a preset's API key instead of a login (see haneul.studio.apps)
                from haneul.studio.apps import key_principal

                principal = await run_in_threadpool(key_principal, studio, key, name)
            try:
                raw = await request.json()
            except ValueError:
                raise InvalidInput("the request body is not JSON") from None
            messages, overrides, stream = _chat_body(raw)

            def setup() -> tuple[Prepared, Screen | None]:
                pid = readable(name, principal)
                screen = TeamFilters(studio.engine).screen(studio.team_of(pid))
                if screen is not None:
                    screen.input("\n".join(m["content"] for m in messages))
                vid, content = studio.content(pid)
                params = Params.from_dict(overrides, base=content.params)
                content = VersionFields(content.instruction, content.examples, content.input_template, content.mode,
                                        content.model, params)
                text = messages[-1]["content"]
                prompt = None
                if content.mode == "chat":
                    spec: PromptSpec = content.spec()
                    if not text.strip():
                        raise InvalidInput("the input is empty; send a user message with text")
                    last = {"role": "user", "content": render_input(content.input_template, text)}
                    prompt = Assembled("chat", messages=spec.chat_messages(None) + messages[:-1] + [last])
                return prepare(catalog, principal, content=content, text=text, team_id=studio.team_of(pid),
                               version_id=vid, prompt=prompt), screen

            prep, screen = await run_in_threadpool(setup)
        except HaneulError as exc:
            return _openai_error(exc)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        model = str(raw.get("model") or name)
        events = execute(studio, prep, source="endpoint", created_by=principal.name, screen=screen)
        if stream:
            return StreamingResponse(_chat_chunks(events, rid, created, model), media_type="text/event-stream")
        done = await run_in_threadpool(_collect, events)
        if "error" in done:
            err = done["error"]
            status = 502 if err["code"] == "upstream_error" else 500 if err["code"] == "error" else 400
            return JSONResponse({"error": {"message": err["message"], "type": "server_error", "param": None,
                                           "code": err["code"]}}, status)
        if "filtered" in done:  # OpenAI's own finish reason for an answer its filter withheld
            done.update(text=NOTICE, finish_reason="content_filter", prompt_tokens=prep.prompt_tokens,
                        completion_tokens=0, latency_ms=None)
        usage = {"prompt_tokens": done["prompt_tokens"] or 0, "completion_tokens": done["completion_tokens"] or 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choice = {"index": 0, "message": {"role": "assistant", "content": done["text"]},
                  "finish_reason": done["finish_reason"]}
        return {"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": [choice],
                "usage": usage, "haneul": {"run_id": done["run_id"], "latency_ms": done["latency_ms"]}}


def _collect(events: Iterator[tuple[str, Any]]) -> dict[str, Any]:
    parts: list[str] = []
    for kind, data in events:
        if kind == "token":
            parts.append(data)
        elif kind == "done":
            return {**data, "text": "".join(parts)}
        elif kind == "filtered":
            return {"filtered": data["reason"], "run_id": data["run_id"]}
        else:
            return {"error": data}
    return {"error": {"code": "error", "message": "the run ended without an answer"}}


def _chat_chunks(events: Iterator[tuple[str, Any]], rid: str, created: int, model: str) -> Iterator[str]:
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, str], reason: str | None = None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for kind, data in events:
        if kind == "token":
            yield chunk({"content": data})
        elif kind == "done":
            yield chunk({}, data["finish_reason"])
            yield "data: [DONE]\n\n"
        elif kind == "filtered":
            yield chunk({"content": "\n" + data["notice"]})
            yield chunk({}, "content_filter")
            yield "data: [DONE]\n\n"
        else:  # OpenAI's own streams report a failure as an error object in the stream
            body = {"error": {"message": data["message"], "type": "server_error", "code": data["code"]}}
            yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
