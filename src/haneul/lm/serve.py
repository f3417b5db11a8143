"""OpenAI-compatible serving of haneul's language models (HyperCLOVA §4: models behind an API).

:func:`create_router` returns a FastAPI ``APIRouter`` with ``GET /v1/models``, ``POST /v1/completions``
and ``POST /v1/chat/completions`` (Server-Sent Events when ``stream`` is true; chat prompts rendered
with the model's chat template). :func:`plugin` mounts it on the haneul server (entry point ``lm`` in
the ``haneul.plugins`` group) over the server's own ``<home>/models`` and the language-model
checkpoints deployed with ``haneul deploy`` (each under its deployment's name, for the principals that
may read its team; :class:`haneul.platform.deploy.DeployedLMs`); this module imports no torch: a
model is loaded on its first request and kept. :func:`create_app` wraps the router in a
standalone app for ``haneul lm serve``.

Errors are answered in OpenAI's shape, ``{"error": {"message", "type", "code"}}``, with the status of
the :class:`~haneul.errors.HaneulError` (a prompt longer than the context window is a 400). Models
named as remote are passed through to another OpenAI-compatible server. A BCQ quantised base (kind
``bcq``, AlphaTuning §3) decodes on its packed codes, with an AlphaTuning task file's scales when the
pool is given one for that name (``alphas``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from haneul.errors import HaneulError, InvalidInput, NotFound, ServerUnavailable
from haneul.lm.registry import SMOLLM2, ModelSource, list_models, models_dir
from haneul.platform.plugins import CurrentPrincipal, Plugin, Principal, ServerContext

if TYPE_CHECKING:
    from haneul.platform.deploy import DeployedLMs

__all__ = ["create_router", "create_app", "plugin", "ModelPool"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # extension
    repetition_penalty: float = 1.0  # extension
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    n: int = 1


class CompletionRequest(_Request):
    prompt: str | list[str] = ""


class ChatRequest(_Request):
    messages: list[dict[str, Any]]


# --------------------------------------------------------------------------------------------------
# model back-ends


class _Local:
    """A :class:`~haneul.lm.generate.Generator`, loaded on first use; one request at a time.
    ``alphas`` is an AlphaTuning task file applied to a quantised base."""

    def __init__(self, source: ModelSource, root: Path | None, alphas: str | None = None) -> None:
        self.source = source
        self.root = root
        self.alphas = alphas
        self._gen: Any = None
        self.lock = threading.Lock()

    @property
    def gen(self) -> Any:
        if self._gen is None:
            if self.alphas is not None and self.source.kind != "bcq":
                raise InvalidInput(
                    f"task file {self.alphas} is given for {self.source.name}, which is not a quantised base "
                    f"(kind {self.source.kind}); AlphaTuning scales apply to a base from `haneul quant quantize`"
                )
            from haneul.lm.generate import Generator

            if self.source.kind == "smollm2":
                self._gen = _load_smollm2(self.root)
            elif self.source.kind == "bcq":
                self._gen = Generator.from_quantized(self.source.location, alphas=self.alphas, name=self.source.name)
            else:
                self._gen = Generator.from_pretrained(self.source.location, name=self.source.name)
        return self._gen


def _load_smollm2(root: Path | None) -> Any:
    try:
        from haneul.lm.models.smollm2 import load_smollm2
    except ImportError as exc:
        raise NotFound(f"{SMOLLM2} is not available in this installation ({exc}); serve another model") from None
    from haneul.lm.generate import Generator

    model, tokenizer = load_smollm2(models_root=root)
    return Generator.from_hf(model, tokenizer, name=SMOLLM2)


DEPLOYED = "deployment"  # the origin of a model deployed from a session's checkpoint


class ModelPool:
    """Back-ends by name, created lazily and kept for the life of the process. ``root`` is the models
    folder (default: ``HANEUL_HOME/models``). ``deployed`` adds the platform's language-model
    deployments, each visible only to a principal that may read its team and looked up before the
    other sources; an undeployed model's back-end is dropped at the next look-up. ``alphas`` maps a
    model name to an AlphaTuning task file applied when that quantised base loads."""

    def __init__(self, models: Mapping[str, str] | None = None, *, root: Path | None = None,
                 deployed: DeployedLMs | None = None, alphas: Mapping[str, str] | None = None) -> None:
        self.explicit = dict(models or {})
        self.root = root
        self.deployed = deployed
        self.alphas = {name: str(path) for name, path in (alphas or {}).items()}
        self._backends: dict[ModelSource, _Local] = {}
        self._lock = threading.Lock()

    def sources(self, principal: Principal | None = None) -> list[ModelSource]:
        found = list_models(self.explicit, root=self.root)
        if self.deployed is None:
            return found
        deployed = [ModelSource(d.name, "folder", str(d.folder), DEPLOYED)
                    for d in self._running(principal or Principal())]
        names = {s.name for s in deployed}
        return deployed + [s for s in found if s.name not in names]

    def source(self, name: str, principal: Principal | None = None) -> ModelSource:
        principal = principal or Principal()
        if self.deployed is not None:
            self._running(principal)  # drops the back-ends of undeployed models
            d = self.deployed.get(name, principal=principal)
            if d is not None:
                return ModelSource(d.name, "folder", str(d.folder), DEPLOYED)
        for s in list_models(self.explicit, root=self.root):
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self.sources(principal)) or "none"
        raise NotFound(f"model {name!r} does not exist; available models: {names}")

    def _running(self, principal: Principal) -> list[Any]:
        """The deployments ``principal`` may read; forgets the loaded models of those no longer running."""
        assert self.deployed is not None
        running = self.deployed.running()
        live = {(d.name, str(d.folder)) for d in running}
        with self._lock:
            for src in list(self._backends):
                if src.origin == DEPLOYED and (src.name, src.location) not in live:
                    del self._backends[src]
        return [d for d in running if principal.can_read(d.team_id)]

    def local(self, source: ModelSource) -> _Local:
        with self._lock:
            if source not in self._backends:  # by where it lives: a name deployed again loads its new checkpoint
                alphas = self.alphas.get(source.name) if source.origin != DEPLOYED else None
                self._backends[source] = _Local(source, self.root, alphas)
            return self._backends[source]

    def record(self, source: ModelSource, started: float, ok: bool) -> None:
        """Count a request to a deployed model in its deployment's metrics."""
        if self.deployed is not None and source.origin == DEPLOYED:
            self.deployed.record(source.name, (time.perf_counter() - started) * 1000, ok)


# --------------------------------------------------------------------------------------------------
# helpers


def _error(exc: HaneulError) -> JSONResponse:
    kind = "invalid_request_error" if exc.http_status < 500 else "server_error"
    return JSONResponse({"error": {"message": exc.message, "type": kind, "param": None, "code": exc.code}}, exc.http_status)


def _params(req: _Request, default_max: int) -> Any:
    from haneul.lm.generate import SamplingParams

    if req.n != 1:
        raise InvalidInput(f"n={req.n} is not supported; send n=1 and repeat the request for more samples")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    return SamplingParams(
        max_tokens=default_max if req.max_tokens is None else req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        repetition_penalty=req.repetition_penalty,
        stop=stop,
        seed=req.seed,
    ).check()


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if content is None:
        return ""
    raise InvalidInput("message content must be a string or a list of text parts")


def _passthrough(source: ModelSource, path: str, body: dict[str, Any]) -> Any:
    import httpx

    base, _, remote_name = source.location.partition("#")
    payload = {**body, "model": remote_name or body["model"]}
    url = base.rstrip("/") + path
    if body.get("stream"):

        def relay() -> Iterator[bytes]:
            with httpx.Client(timeout=None) as client, client.stream("POST", url, json=payload) as resp:
                yield from resp.iter_bytes()

        return StreamingResponse(relay(), media_type="text/event-stream")
    try:
        resp = httpx.post(url, json=payload, timeout=600)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"the remote model server {base} did not answer ({exc}); check that it is running") from None
    return JSONResponse(resp.json(), status_code=resp.status_code)


# --------------------------------------------------------------------------------------------------
# the router


def plugin(ctx: ServerContext) -> Plugin:
    deployed = None
    if ctx.platform is not None:
        from haneul.platform.deploy import deployed_lms

        deployed = deployed_lms(ctx.platform)
    return Plugin(router=create_router(pool=ModelPool(root=models_dir(ctx.home), deployed=deployed)))


def create_router(models: Mapping[str, str] | None = None, *, pool: ModelPool | None = None,
                  alphas: Mapping[str, str] | None = None) -> APIRouter:
    """The OpenAI-compatible routes. ``models`` maps extra names to folders or URLs; the registry,
    the models folder (``pool.root``, default ``HANEUL_HOME/models``) and the embedded model are always
    available. ``alphas`` maps names of quantised bases to AlphaTuning task files (for a pool made here)."""
    if pool is not None and alphas:
        raise InvalidInput("pass alphas to the ModelPool itself when giving a pool")
    pool = pool or ModelPool(models, alphas=alphas)
    router = APIRouter(prefix="/v1", tags=["lm"])

    def _described(s: ModelSource) -> dict[str, str]:
        out = s.to_dict()
        if s.kind == "bcq" and s.origin != DEPLOYED and s.name in pool.alphas:
            out["alphas"] = pool.alphas[s.name]
        return out

    @router.get("/models")
    def get_models(principal: CurrentPrincipal) -> dict[str, Any]:
        created = int(time.time())
        data = [
            {"id": s.name, "object": "model", "created": created, "owned_by": "haneul", "haneul": _described(s)}
            for s in pool.sources(principal)
        ]
        return {"object": "list", "data": data}

    async def handle(request: Request, principal: Principal, model: type[CompletionRequest] | type[ChatRequest],
                     path: str, run: Callable[[_Local, Any], Any]) -> Any:
        source: ModelSource | None = None
        started = time.perf_counter()
        try:
            body = await request.json()
            req = model.model_validate(body)
            source = pool.source(req.model, principal)
            if source.kind == "remote":
                return _passthrough(source, path, body)
            started = time.perf_counter()
            answer = await _run_in_thread(run, pool.local(source), req)
        except HaneulError as exc:
            if source is not None:
                pool.record(source, started, ok=False)
            return _error(exc)
        except ValueError as exc:  # JSON or validation problems in the request body
            if source is not None:
                pool.record(source, started, ok=False)
            return _error(InvalidInput(f"invalid request body: {exc}".splitlines()[0]))
        if isinstance(answer, StreamingResponse):  # counted when the stream ends
            answer.body_iterator = _recorded(answer.body_iterator, lambda ok: pool.record(source, started, ok))
        else:
            pool.record(source, started, ok=True)
        return answer

    @router.post("/completions")
    async def completions(request: Request, principal: CurrentPrincipal) -> Any:
        return await handle(request, principal, CompletionRequest, "/completions", _complete)

    @router.post("/chat/completions")
    async def chat(request: Request, principal: CurrentPrincipal) -> Any:
        return await handle(request, principal, ChatRequest, "/chat/completions", _chat)

    return router


async def _recorded(chunks: AsyncIterable[Any], done: Callable[[bool], None]) -> AsyncIterator[Any]:
    ok = False
    try:
        async for chunk in chunks:
            yield chunk
        ok = True
    finally:
        done(ok)


async def _run_in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def _framed(deltas: Generator[str, None, str], frame: Callable[[str], str]) -> Generator[str, None, str]:
    """SSE frames of a text stream; returns the stream's finish reason."""
    while True:
        try:
            delta = next(deltas)
        except StopIteration as end:
            return end.value or "stop"
        yield frame(delta)


def _complete(backend: _Local, req: CompletionRequest) -> Any:
    gen = backend.gen
    prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
    if not prompts:
        raise InvalidInput("prompt is empty; send a string or a non-empty list of strings")
    params = _params(req, 16)
    for p in prompts:  # fail with a 400 before a stream starts
        gen.check_length(len(gen.encode_prompt(p)))
    rid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    base = {"id": rid, "object": "text_completion", "created": created, "model": req.model}
    if req.stream:
        if len(prompts) != 1:
            raise InvalidInput("stream=true takes one prompt; send a string, not a list")

        def events() -> Iterator[str]:
            with backend.lock:
                reason = yield from _framed(gen.stream(prompts[0], params), lambda delta: _sse(
                    {**base, "choices": [{"text": delta, "index": 0, "logprobs": None, "finish_reason": None}]}))
                done = {"text": "", "index": 0, "logprobs": None, "finish_reason": reason}
                yield _sse({**base, "choices": [done]})
                yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    with backend.lock:
        results = gen.generate(prompts, params)
    choices = [
        {"text": c.text, "index": i, "logprobs": None, "finish_reason": c.finish_reason} for i, c in enumerate(results)
    ]
    prompt_tokens = sum(c.prompt_tokens for c in results)
    completion_tokens = sum(len(c.token_ids) for c in results)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    return {**base, "choices": choices, "usage": usage}


def _chat(backend: _Local, req: ChatRequest) -> Any:
    gen = backend.gen
    if not req.messages:
        raise InvalidInput("messages is empty; send at least one {'role': 'user', 'content': ...} message")
    messages = [{"role": str(m.get("role", "user")), "content": _message_text(m.get("content"))} for m in req.messages]
    prompt = gen.render_chat(messages)
    n_prompt = len(gen.encode_prompt(prompt))
    gen.check_length(n_prompt)
    params = _params(req, gen.context_window - n_prompt)
    rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    base = {"id": rid, "created": created, "model": req.model}
    if req.stream:

        def events() -> Iterator[str]:
            chunk = {**base, "object": "chat.completion.chunk"}
            yield _sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            with backend.lock:
                reason = yield from _framed(gen.stream(prompt, params), lambda delta: _sse(
                    {**chunk, "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}))
            yield _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    with backend.lock:
        c = gen.generate(prompt, params)[0]
    usage = {"prompt_tokens": c.prompt_tokens, "completion_tokens": len(c.token_ids), "total_tokens": c.prompt_tokens + len(c.token_ids)}
    choice = {"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
    return {**base, "object": "chat.completion", "choices": [choice], "usage": usage}


def create_app(models: Mapping[str, str] | None = None, *, alphas: Mapping[str, str] | None = None) -> Any:
    """A standalone FastAPI app serving the routes above (``haneul lm serve``); ``alphas`` maps names of
    quantised bases to AlphaTuning task files."""
    from fastapi import FastAPI

    app = FastAPI(title="haneul lm", description="OpenAI-compatible completions for haneul's language models")
    app.include_router(create_router(models, alphas=alphas))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
