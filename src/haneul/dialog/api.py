"""REST routes under ``/api/v1/dialog`` for the CareCall agent: memory show / update / history / revert,
session summaries and memory-grounded replies; the haneul server mounts them as the ``dialog`` plugin.

:func:`plugin` is the server's entry point (``haneul.plugins``): the routes keep memory in the
server's own database (the ``dialog_*`` tables of the migrations it returns, applied by the server
beside the platform's), and a classifier named in an update is looked up under the server's home.
:func:`create_router` builds the same routes over any store, for an application of one's own.
Clients reach these routes through :class:`~haneul.dialog.stores.HttpMemoryStore`. Library errors are
:class:`~haneul.errors.HaneulError` subclasses; the server's handler turns them into
``{"error": {"code", "message"}}`` with the matching HTTP status. Importing this module does not
import torch: the classifier is loaded on the first update that needs it and then reused.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from haneul.dialog.operators import Operator, get_operator
from haneul.dialog.stores import DIALOG_MIGRATIONS, BaseMemoryStore, MemoryStore, check_person
from haneul.dialog.text import MAX_SENTENCE_CHARS
from haneul.platform.plugins import Plugin, errors

if TYPE_CHECKING:
    from haneul.platform.plugins import ServerContext


VERSION_MAX = (1 << 31) - 1  # the version column is a 32-bit integer on PostgreSQL
VersionField = Annotated[int, Field(ge=0, le=VERSION_MAX)]


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
    expected_version: VersionField | None = Field(
        None, description="The version the caller last saw; another one is a conflict.")


class RevertIn(BaseModel):
    version: VersionField
    expected_version: VersionField | None = None


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


NO_PERSON = {404: "no memory for this person, or no such version"}
NO_MODEL = {404: "no such summariser model folder"}


def plugin(ctx: ServerContext) -> Plugin:
    """The ``dialog`` server plugin: the routes over the server's database, and the tables' migrations."""
    store = MemoryStore(ctx.engine, home=ctx.home)
    return Plugin(router=create_router(store, home=ctx.home), migrations=DIALOG_MIGRATIONS)


def create_router(store: BaseMemoryStore | None = None, *, home: Path | None = None) -> APIRouter:
    """Routes over ``store`` (default: the local file under ``home``); a classifier named in an update
    is looked up under ``home`` (default ``HANEUL_HOME``) and loaded once."""
    memory = store if store is not None else MemoryStore(home=home)
    router = APIRouter(prefix="/api/v1/dialog", tags=["dialog"])
    operators: dict[tuple[str, str], Operator] = {}
    summarizers: dict[str, Any] = {}
    lock = threading.Lock()

    def operator_for(body: UpdateIn) -> Operator:
        if body.operator.strip().lower() == "lm":
            return get_operator("lm", model=body.model, endpoint=body.endpoint, lm_model=body.lm_model,
                                timeout=body.timeout, home=home)
        key = (body.operator, body.model)
        with lock:  # loading a classifier once per server keeps updates fast
            if key not in operators:
                operators[key] = get_operator(body.operator, model=body.model, home=home)
            return operators[key]

    @router.get("/memory")
    def people() -> dict[str, list[str]]:
        return {"people": memory.people()}

    @router.get("/memory/{person}", responses=errors(404, described=NO_PERSON))
    def show(person: str) -> dict[str, Any]:
        person = check_person(person)
        latest = memory.latest(person)
        return {"person": person, "version": latest.version if latest else 0,
                "sentences": latest.sentences if latest else []}

    @router.post("/memory/{person}/update", responses=errors(404, 409, 502, described=NO_PERSON))
    def update(person: str, body: UpdateIn) -> dict[str, Any]:
        res = memory.update(person, body.summary, operator=operator_for(body), expected_version=body.expected_version,
                            session=body.session, max_chars=body.max_chars)
        return res.to_dict()

    @router.get("/memory/{person}/history", responses=errors(404, described=NO_PERSON))
    def history(person: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in memory.history(person)]

    @router.get("/memory/{person}/versions/{version}", responses=errors(404, described=NO_PERSON))
    def version(person: str,
                version: Annotated[int, PathParam(ge=0, le=VERSION_MAX, description="version number")]) -> dict[str, Any]:
        return memory.get(person, version).to_dict()

    @router.post("/memory/{person}/revert", responses=errors(404, 409, described=NO_PERSON))
    def revert(person: str, body: RevertIn) -> dict[str, Any]:
        return memory.revert(person, body.version, expected_version=body.expected_version).to_dict()

    @router.post("/summarize", responses=errors(404, 502, described=NO_MODEL))
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

    @router.post("/respond/{person}", responses=errors(404, 502, described=NO_PERSON))
    def respond(person: str, body: RespondIn) -> dict[str, Any]:
        from haneul.dialog.lm import ChatClient
        from haneul.dialog.responder import Responder

        client = ChatClient(body.endpoint, model=body.lm_model, timeout=body.timeout) if body.endpoint else None
        latest = memory.latest(person)
        sentences = latest.sentences if latest else []
        return Responder(client, top_k=body.top_k).respond(sentences, [t.model_dump() for t in body.dialogue]).to_dict()

    return router
