"""REST routes under ``/api/v1/dialog`` for the CareCall agent: memory show / update / history / revert,
session summaries and memory-grounded replies.

``create_router()`` returns a FastAPI router for the haneul server to mount. Library errors are
:class:`~haneul.errors.HaneulError` subclasses; the server's handler turns them into
``{"error": {"code", "message"}}`` with the matching HTTP status. Importing this module does not
import torch: the classifier is loaded on the first update that needs it and then reused.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field


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


class RevertIn(BaseModel):
    version: int


class SummarizeIn(BaseModel):
    dialogue: list[TurnIn]
    memory: list[str] = []
    backend: str = "extractive"
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
    """Routes over the memory database at ``url`` (default: the local SQLite file under HANEUL_HOME)."""
    from haneul.dialog.memory import Memory
    from haneul.dialog.operators import get_operator

    router = APIRouter(prefix="/api/v1/dialog", tags=["dialog"])
    operators: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def operator_for(body: UpdateIn):
        if body.operator.strip().lower() == "lm":
            return get_operator("lm", model=body.model, endpoint=body.endpoint, lm_model=body.lm_model, timeout=body.timeout)
        key = (body.operator, body.model)
        with lock:  # loading a classifier once per server keeps updates fast
            if key not in operators:
                operators[key] = get_operator(body.operator, model=body.model)
            return operators[key]

    @router.get("/memory/{person}")
    def show(person: str) -> dict[str, Any]:
        mem = Memory.load(person, url=url)
        return {"person": mem.person, "version": mem.version, "sentences": mem.sentences}

    @router.post("/memory/{person}/update")
    def update(person: str, body: UpdateIn) -> dict[str, Any]:
        return Memory.load(person, url=url).update(body.summary, operator=operator_for(body), session=body.session).to_dict()

    @router.get("/memory/{person}/history")
    def history(person: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in Memory.load(person, url=url).history()]

    @router.post("/memory/{person}/revert")
    def revert(person: str, body: RevertIn) -> dict[str, Any]:
        return Memory.load(person, url=url).revert(body.version).to_dict()

    @router.post("/summarize")
    def summarize(body: SummarizeIn) -> dict[str, Any]:
        from haneul.dialog.summarizer import get_summarizer

        s = get_summarizer(body.backend, endpoint=body.endpoint, lm_model=body.lm_model, timeout=body.timeout)
        return s.summarize([t.model_dump() for t in body.dialogue], body.memory).to_dict()

    @router.post("/respond/{person}")
    def respond(person: str, body: RespondIn) -> dict[str, Any]:
        from haneul.dialog.lm import ChatClient
        from haneul.dialog.responder import Responder

        client = ChatClient(body.endpoint, model=body.lm_model, timeout=body.timeout) if body.endpoint else None
        memory = Memory.load(person, url=url).sentences
        return Responder(client, top_k=body.top_k).respond(memory, [t.model_dump() for t in body.dialogue]).to_dict()

    return router
