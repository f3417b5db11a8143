"""Deployments and models: API routes (deploy, list, get, logs, undeploy, predict; register, list,
info and alias models) and the /deployments pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from haneul.errors import NotFound
from haneul.platform.deploy import DeployManager, ModelRegistry
from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.server.deps import NonNegInt64, PlatformDep, TemplatesDep, errors

router = APIRouter(tags=["deployments"])


def _manager(request: Request) -> DeployManager:
    return request.app.state.deployments


class DeployBody(BaseModel):
    session: NonNegInt64 | None = Field(default=None, description="the session whose checkpoint to serve")
    model: str | None = Field(default=None, max_length=300,
                              description="instead of a session: NAME, NAME@ALIAS or NAME:VERSION")
    checkpoint: str | None = Field(default=None, max_length=255, description="default: the session's latest")
    name: str | None = Field(default=None, max_length=128, description="default: <session name>-<id>")
    replicas: int = Field(default=1, ge=1, le=16, description="serving processes (a language model is served "
                          "by the server itself: ignored)")
    batch: int = Field(default=1, ge=1, le=4096, description="most inputs gathered into one infer call")
    batch_wait_ms: float = Field(default=0.0, ge=0, le=10_000, allow_inf_nan=False,
                                 description="how long a replica waits for a batch to fill")


class RegisterBody(BaseModel):
    name: str = Field(max_length=128)
    session: NonNegInt64
    checkpoint: str = Field(max_length=255)
    alias: str | None = Field(default=None, max_length=64)


class AliasBody(BaseModel):
    version: NonNegInt64
    alias: str = Field(max_length=64)


# -------------------------------------------------------------------------------------- deployments


@router.post("/api/v1/deployments", status_code=201, responses=errors(400, 403, 404, 409))
async def deploy(body: DeployBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Start the replicas; answers at once with status ``starting`` (poll the deployment until it is
    ``running``, or ``failed`` with the reason). A language-model checkpoint is served by the server
    itself: kind ``lm``, ``running`` at once, called at ``/v1/chat/completions`` with ``"model": name``."""
    manager = _manager(request)
    return await run_in_threadpool(lambda: manager.deploy(
        principal=principal, session_id=body.session, model=body.model, checkpoint=body.checkpoint,
        name=body.name, replicas=body.replicas, batch=body.batch, batch_wait_ms=body.batch_wait_ms))


@router.get("/api/v1/deployments", responses=errors(400))
def list_deployments(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return _manager(request).list_all(principal=principal)


@router.get("/api/v1/deployments/{name}", responses=errors(400, 404))
def get_deployment(name: str, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    return _manager(request).get(name, principal=principal)


@router.get("/api/v1/deployments/{name}/logs", responses=errors(400, 404))
def deployment_logs(name: str, request: Request, principal: CurrentPrincipal,
                    lines: Annotated[int, Query(ge=1, le=10_000)] = 50) -> dict[str, list[str]]:
    """The last lines of each replica's log, by replica index."""
    return _manager(request).logs(name, principal=principal, lines=lines)


@router.delete("/api/v1/deployments/{name}", responses=errors(400, 403, 404, 409))
async def undeploy(name: str, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Stop the replicas (SIGTERM, then SIGKILL after a grace) and mark the deployment stopped."""
    manager = _manager(request)
    return await run_in_threadpool(lambda: manager.undeploy(name, principal=principal))


@router.post(
    "/api/v1/deployments/{name}/predict",
    responses={**errors(400, 404, 502, 503), 200: {"description": '{"predictions": [...]} or {"prediction": y}',
                                                   "content": {"application/json": {"schema": {"type": "object"}}}}},
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"inputs": {"type": "array", "items": {}}, "input": {}}}}},
        "description": '{"inputs": [x1, x2, ...]} or {"input": x}'}},
)
async def predict(name: str, request: Request, principal: CurrentPrincipal) -> Response:
    """Forward the inputs to a ready replica (round robin): ``{"inputs": [...]}`` -> ``{"predictions":
    [...]}``, ``{"input": x}`` -> ``{"prediction": y}``."""
    answer = await _manager(request).predict(name, await request.body(), principal=principal)
    return Response(answer, media_type="application/json")


# -------------------------------------------------------------------------------------- models


@router.post("/api/v1/models", status_code=201, responses=errors(400, 403, 404), tags=["models"])
def register_model(body: RegisterBody, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Add the next version of model ``name`` pointing at a session's checkpoint (created if new)."""
    return ModelRegistry(platform).register(name=body.name, session_id=body.session, checkpoint=body.checkpoint,
                                            alias=body.alias, principal=principal)


@router.get("/api/v1/models", responses=errors(400), tags=["models"])
def list_models(platform: PlatformDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return ModelRegistry(platform).list_all(principal=principal)


@router.get("/api/v1/model-ref", responses=errors(400, 404), tags=["models"])
def resolve_model(ref: Annotated[str, Query(max_length=200, description="NAME, NAME@ALIAS or NAME:VERSION")],
                  platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The model version a reference names: its session, checkpoint and the checkpoint's sha256 and
    kind (what `haneul lm` and `haneul eval` fetch for ``model:NAME@ALIAS``)."""
    got = ModelRegistry(platform).resolve(ref, principal=principal)
    records = {c["name"]: c for c in platform.list_checkpoints(got["session_id"])}
    record = records.get(got["checkpoint"])
    if record is None:
        raise NotFound(f"model {got['model']!r} version {got['version']} names checkpoint {got['checkpoint']!r} "
                       f"of session {got['session_id']}, which no longer exists")
    return {**got, "sha256": record["sha256"], "kind": record["kind"], "size": record["size"]}


@router.get("/api/v1/models/{name}", responses=errors(400, 404), tags=["models"])
def model_info(name: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return ModelRegistry(platform).info(name, principal=principal)


@router.post("/api/v1/models/{name}/aliases", responses=errors(400, 403, 404), tags=["models"])
def set_alias(name: str, body: AliasBody, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Point ``alias`` at ``version`` (moving it from the version it named before)."""
    return ModelRegistry(platform).set_alias(name, version=body.version, alias=body.alias, principal=principal)


# -------------------------------------------------------------------------------------- pages


@router.get("/deployments", response_class=HTMLResponse, include_in_schema=False)
def deployments_page(request: Request, templates: TemplatesDep, principal: CurrentPrincipal) -> Any:
    return templates.TemplateResponse(request, "deployments.html",
                                      {"deployments": _manager(request).list_all(principal=principal)})


@router.get("/deployments/{name}", response_class=HTMLResponse, include_in_schema=False)
def deployment_page(name: str, request: Request, templates: TemplatesDep, principal: CurrentPrincipal) -> Any:
    manager = _manager(request)
    item = manager.get(name, principal=principal)
    return templates.TemplateResponse(request, "deployment.html", {
        "d": item, "logs": manager.logs(name, principal=principal, lines=40)})
