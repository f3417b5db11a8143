"""REST routes under ``/api/v1/dialog`` for the CareCall agent: memory show / update / history / revert,
session summaries and memory-grounded replies.

``create_router()`` returns a FastAPI router for the haneul server to mount (it is listed in the
server's ``EXTRA_ROUTERS``). Memory is kept in the database of the platform that serves the request
(its ``database_url``; the ``dialog_*`` tables are created on first use beside the platform's own), or
in the database at ``url`` when one is given. Clients reach these routes through
:class:`~haneul.dialog.remote.HttpMemoryStore`. Library errors are
:class:`~haneul.errors.HaneulError` subclasses; the server's handler turns them into
``{"error": {"code", "message"}}`` with the matching HTTP status. Importing this module does not
import torch: the classifier is loaded on the first update that needs it and then reused.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from haneul.dialog.text import MAX_SENTENCE_CHARS


class TurnIn(BaseModel):
    role: str
    text: str


class UpdateIn(BaseModel):
    summary: list[str] = Field(description="Summary sentences of the new session.")
    operator: str = Field("auto", description="auto, classifier, lm, lexical, append-only or latest-only.")
    model: str = Field("default", description="Trained classifier name or folder.")
    session: str | None = None
    endpoint: str | None = Field(None, description="OpenAI-compatible base URL for the lm operator.")
    lm_model: str | None = None
    timeout: float = 30.0
    max_chars: int = Field(MAX_SENTENCE_CHARS, description="Longer sentences are truncated with a warning.")
    expected_version: int | None = Field(None, description="The version the caller last saw; another one is a conflict.")


class RevertIn(BaseModel):
    version: int
    expected_version: int | None = None


class SummarizeIn(BaseModel):
    dialogue: list[TurnIn]
    memory: list[str] = []
    backend: str = "extractive"
    model: str | None = Field(None, description="Model folder of the finetuned backend (on the server).")
    endpoint: str | None = None
    lm_model: str | None = None
    timeout: float = 30.0


class RespondIn(BaseModel):
    dialogue: list[TurnIn]
    endpoint: str | None = None
    lm_model: str | None = None
    timeout: float = 30.0
    top_k: int = 3


def create_router(url: str | None = None) -> APIRouter:
    """Routes over the memory database at ``url`` (default: the serving platform's own database)."""
    from haneul.dialog.memory import Memory, MemoryStore
    from haneul.errors import Conflict

    router = APIRouter(prefix="/api/v1/dialog", tags=["dialog"])
    operators: dict[tuple[str, str], Any] = {}
    summarizers: dict[str, Any] = {}
    lock = threading.Lock()

    def store_for(request: Request) -> MemoryStore:
        if url:
            return MemoryStore(url)
        platform = getattr(request.app.state, "platform", None)
        if platform is not None:
            return MemoryStore(platform.settings.database_url)
        from haneul.settings import get_settings

        return MemoryStore(get_settings().database_url)

    def load(request: Request, person: str, expected: int | None = None) -> Memory:
        mem = Memory.load(person, store=store_for(request))
        if expected is not None and expected != mem.version:
            raise Conflict(
                f"memory of {mem.person!r} moved from version {expected} to {mem.version} meanwhile; "
                "reload it with Memory.load and update again"
            )
        return mem

    def operator_for(body: UpdateIn):
        from haneul.dialog.operators import get_operator

        if body.operator.strip().lower() == "lm":
            return get_operator("lm", model=body.model, endpoint=body.endpoint, lm_model=body.lm_model, timeout=body.timeout)
        key = (body.operator, body.model)
        with lock:  # loading a classifier once per server keeps updates fast
            if key not in operators:
                operators[key] = get_operator(body.operator, model=body.model)
            return operators[key]

    @router.get("/memory")
    def people(request: Request) -> dict[str, list[str]]:
        return {"people": store_for(request).people()}

    @router.get("/memory/{person}")
    def show(request: Request, person: str) -> dict[str, Any]:
        mem = load(request, person)
        return {"person": mem.person, "version": mem.version, "sentences": mem.sentences}

    @router.post("/memory/{person}/update")
    def update(request: Request, person: str, body: UpdateIn) -> dict[str, Any]:
        mem = load(request, person, body.expected_version)
        res = mem.update(body.summary, operator=operator_for(body), session=body.session, max_chars=body.max_chars)
        return res.to_dict()

    @router.get("/memory/{person}/history")
    def history(request: Request, person: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in load(request, person).history()]

    @router.get("/memory/{person}/versions/{version}")
    def version(request: Request, person: str, version: int) -> dict[str, Any]:
        mem = load(request, person)
        return mem.store.get(mem.person, version).to_dict()

    @router.post("/memory/{person}/revert")
    def revert(request: Request, person: str, body: RevertIn) -> dict[str, Any]:
        return load(request, person, body.expected_version).revert(body.version).to_dict()

    @router.post("/summarize")
    def summarize(body: SummarizeIn) -> dict[str, Any]:
        from haneul.dialog.summarizer import get_summarizer

        if body.backend.strip().lower() == "finetuned":
            key = body.model or ""
            with lock:  # the fine-tuned model is loaded once per folder
                if key not in summarizers:
                    summarizers[key] = get_summarizer("finetuned", model=body.model)
                s = summarizers[key]
        else:
            s = get_summarizer(body.backend, endpoint=body.endpoint, lm_model=body.lm_model, timeout=body.timeout)
        return s.summarize([t.model_dump() for t in body.dialogue], body.memory).to_dict()

    @router.post("/respond/{person}")
    def respond(request: Request, person: str, body: RespondIn) -> dict[str, Any]:
        from haneul.dialog.lm import ChatClient
        from haneul.dialog.responder import Responder

        client = ChatClient(body.endpoint, model=body.lm_model, timeout=body.timeout) if body.endpoint else None
        memory = load(request, person).sentences
        return Responder(client, top_k=body.top_k).respond(memory, [t.model_dump() for t in body.dialogue]).to_dict()

    return router
