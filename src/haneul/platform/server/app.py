"""The FastAPI application factory.

``create_app()`` wires the platform service, the API routers, the web pages, the installed plugins
(:mod:`haneul.platform.plugins`), the request body limit and the error handlers: on the API every
:class:`~haneul.errors.HaneulError`, request validation failure (400) and routing miss (404, 405)
becomes ``{"error": {"code", "message"}}`` with its HTTP status, and the OpenAPI document says so;
on a web page the same error is an HTML page in the site's layout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from haneul import __version__
from haneul.errors import HaneulError
from haneul.platform.accounts import Accounts
from haneul.platform.db.engine import is_outage, unreachable
from haneul.platform.plugins import LoadedPlugin, ServerContext, load_plugins, parse_disabled
from haneul.platform.server.auth import AsLocalAdmin, AuthMiddleware
from haneul.platform.server.auth import pages as auth_pages
from haneul.platform.server.deps import (
    BODY_LIMIT_KEY,
    ERROR_DESCRIPTIONS,
    STREAMED_BODY_EXTENSION,
    BodyLimit,
    ErrorBody,
)
from haneul.platform.service import INT64_MAX, INT64_MIN, Platform
from haneul.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, platform: Platform | None = None,
               server_url: str | None = None, authenticate: bool = True) -> FastAPI:
    """The server. ``authenticate=False`` leaves out accounts (every request is the local admin): for a
    benchmark's baseline or an app embedded behind its own gate, never reachable from settings."""
    settings = settings or get_settings()
    platform = platform or Platform(settings, server_url=server_url)
    plugins = _load(settings, platform)
    accounts = Accounts(platform.engine)
    from haneul.platform.deploy import DeployManager

    deploy_manager = DeployManager(platform)
    from haneul.platform.leaderboard import Leaderboards

    competitions = Leaderboards(platform)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ingest_limiter = anyio.CapacityLimiter(settings.ingest_threads)
        platform.start()  # a no-op when the caller started it (to report a busy home in one line)
        accounts.ensure_local_admin(settings.home)  # a no-op once anyone exists (`haneul server` did it)
        deploy_manager.start()  # re-attaches to the replicas a previous server process started
        competitions.start()  # queues again the submissions a previous server process left waiting
        for loaded in plugins:
            if loaded.plugin.on_start is not None:
                loaded.plugin.on_start()
        try:
            yield
        finally:
            competitions.close()  # evaluations under way end as errors that do not count
            deploy_manager.close()  # the replicas keep serving; the next server re-attaches to them
            await deploy_manager.aclose()
            for loaded in plugins:
                if loaded.plugin.on_close is not None:
                    loaded.plugin.on_close()
            platform.close()

    app = FastAPI(
        title="haneul",
        version=__version__,
        description="Korean-first ML platform: sessions, metrics, checkpoints, logs.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.accounts = accounts
    app.state.deployments = deploy_manager
    app.state.leaderboards = competitions

    @app.exception_handler(HaneulError)
    async def _haneul_error(request: Request, exc: HaneulError) -> Response:
        return _error(request, exc.http_status, exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 400, {"code": "invalid_input", "message": _validation_message(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # routing misses (404, 405) and the body limit's 413 arrive here; give them the error shape
        return _error(request, exc.status_code, {"code": _HTTP_CODES.get(exc.status_code, "error"),
                                                 "message": _http_message(request, exc)}, exc.headers)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        # The platform's own routes bound their integers; this catches a plugin route's unbounded
        # integer reaching the database driver, which is the caller's mistake, not the server's.
        message = (f"invalid request: a number is out of range ({exc}); integers must fit in "
                   f"a signed 64-bit range ({INT64_MIN} to {INT64_MAX})")
        return _error(request, 400, {"code": "invalid_input", "message": message})

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> Response:
        # The database refused a value (PostgreSQL: a NUL character in text, an integer past a 32-bit
        # column, a string past its length; SQLite stores them). The platform's own routes check these
        # first; this catches a plugin route that stores what it was sent. The transaction is rolled
        # back, so nothing is half-written.
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc.__class__.__name__
        if "NUL" in reason:
            message = "invalid request: text must not contain a NUL character (\\u0000); remove it and send again"
        else:
            message = f"invalid request: the database cannot store a value ({reason}); send a smaller or plainer value"
        return _error(request, 400, {"code": "invalid_input", "message": message[:500]})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # never a bare 500 page: the client still gets one line it can print
        message = f"internal server error: {exc.__class__.__name__}: {exc}"[:500]
        return _error(request, 500, {"code": "error", "message": message})

    @app.exception_handler(OperationalError)
    async def _database_away(request: Request, exc: OperationalError) -> Response:
        # the database went away (restart, network) or is busy: 503, and the SDK keeps its points and
        # retries; any other OperationalError is a wrong statement, answered as the error it is
        if not is_outage(exc):
            return await _unexpected(request, exc)
        return _error(request, 503, unreachable(settings.database_url, exc).to_dict(), {"Retry-After": "5"})

    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, object]:
        # the SDK sizes its metric batches from "limits" instead of learning them from 413s
        return {"status": "ok", "version": __version__, "home": str(settings.home),
                "limits": {"max_metric_batch": settings.max_metric_batch}}

    from haneul.platform.server.routes import accounts as accounts_routes
    from haneul.platform.server.routes import (
        artifacts,
        checkpoints,
        datasets,
        deployments,
        leaderboards,
        logs,
        metrics,
        projects,
        sessions,
    )
    from haneul.platform.server.web import make_templates
    from haneul.platform.server.web import router as web_router

    for routes in (sessions, metrics, checkpoints, artifacts, logs, projects, datasets, deployments,
                   leaderboards):
        app.include_router(routes.router)
    for loaded in plugins:
        plugin = loaded.plugin
        if plugin.router is not None:
            app.include_router(plugin.router)
        if plugin.static is not None:
            app.mount(f"/static/{loaded.name}", StaticFiles(directory=plugin.static), name=f"static-{loaded.name}")
    app.state.templates = make_templates(
        {p.name: Path(p.plugin.templates) for p in plugins if p.plugin.templates is not None},
        [entry for p in plugins for entry in p.plugin.nav],
    )
    app.state.plugins = [p.name for p in plugins]
    app.include_router(accounts_routes.router)
    app.include_router(auth_pages)
    app.include_router(web_router)
    app.add_middleware(_BodyLimit, max_bytes=settings.max_request_bytes)
    if authenticate:
        app.add_middleware(AuthMiddleware, accounts=accounts,  # outermost: nothing runs for a stranger
                           public_paths=[x for p in plugins for x in p.plugin.public_paths],
                           route_keys=[x for p in plugins for x in p.plugin.route_keys])
    else:
        app.add_middleware(AsLocalAdmin, accounts=accounts)
    _document_errors(app)
    return app


def _load(settings: Settings, platform: Platform) -> list[LoadedPlugin]:
    """Load the installed plugins and register their migrations with the platform."""
    sessions = sessionmaker(platform.engine)

    def context(name: str) -> ServerContext:
        return ServerContext(name=name, settings=settings, engine=platform.engine, sessions=sessions,
                             artifacts=Path(settings.artifacts), platform=platform)

    plugins = load_plugins(context, disabled=parse_disabled(settings.disable_plugins))
    platform.add_migrations({p.name: Path(p.plugin.migrations) for p in plugins if p.plugin.migrations is not None})
    return plugins


# --------------------------------------------------------------------------------------------------
# errors: one JSON shape on the API, one HTML page in the site's layout on web pages

#: path prefixes answered in JSON: the REST API, the OpenAI-compatible API and static files
NOT_PAGES = ("/api/", "/v1/", "/static/")
_HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "payload_too_large"}


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not any(path.startswith(prefix) or path == prefix.rstrip("/") for prefix in NOT_PAGES)


def _error(request: Request, status_code: int, body: dict[str, Any],
           headers: Mapping[str, str] | None = None) -> Response:
    if _is_page(request) and request.method in ("GET", "HEAD"):
        from haneul.platform.server.web import error_page

        try:
            page = error_page(request, status_code, str(body["code"]), str(body["message"]))
        except Exception:  # a broken template must not hide the error it was to show
            pass
        else:
            page.headers.update(headers or {})
            return page
    return JSONResponse({"error": body}, status_code=status_code, headers=dict(headers or {}))


def _validation_message(exc: RequestValidationError) -> str:
    """The first problem, naming the parameter and the value it got: ``query parameter step_min=...``."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ())]
    msg = first.get("msg", "malformed")
    if loc and loc[0] in ("path", "query", "header") and len(loc) > 1:
        value = repr(first.get("input"))[:80]
        return f"invalid request: {loc[0]} parameter {'.'.join(loc[1:])}={value}: {msg}"
    where = ".".join(p for p in loc if p != "body")
    return f"invalid request: {'body field ' + where if where else 'body'}: {msg}"


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404 and exc.detail == "Not Found":
        if _is_page(request):
            return f"there is no page at {request.url.path}"
        return f"no route for {where}; the API is described at /api/v1/docs"
    if exc.status_code == 405:
        # not the Allow header: the router fills it from one of the routes on the path, not all
        return f"{where} is not allowed; the methods each path answers are at /api/v1/docs"
    return str(exc.detail)


# --------------------------------------------------------------------------------------------------
# the request body limit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413 before it is read whole: on the route's first
    read when the Content-Length says so (nothing is read), else as soon as the bytes received pass
    the limit. The error is an HTTPException, which FastAPI's body parsing passes through unchanged.
    A route that streams its body to disk lifts the limit with the ``StreamedBody`` dependency,
    which runs before it reads; the state lives in the scope so that the dependency can reach it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope[BODY_LIMIT_KEY] = BodyLimit(self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length", b"")

        async def limited() -> Message:
            if limit.max_bytes is None:
                return await receive()
            if limit.received == 0 and declared.isdigit() and int(declared) > limit.max_bytes:
                raise StarletteHTTPException(413, _too_large(declared.decode(), limit.max_bytes))
            message = await receive()
            if message["type"] == "http.request":
                limit.received += len(message.get("body", b""))
                if limit.received > limit.max_bytes:
                    raise StarletteHTTPException(413, _too_large(f"over {limit.received}", limit.max_bytes))
            return message

        await self.app(scope, limited, send)


def _too_large(size: str, max_bytes: int) -> str:
    return (f"request body of {size} bytes is over the limit of {max_bytes} bytes "
            "(HANEUL_MAX_REQUEST_BYTES); send smaller batches")


# --------------------------------------------------------------------------------------------------
# the OpenAPI document


def _document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document tell the truth about errors: validation failures are 400 (not
    FastAPI's 422) in the :class:`~haneul.platform.server.deps.ErrorBody` shape, and every route
    that reads a body may answer 413 from the body limit. This covers plugin routes too."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components.setdefault("ErrorBody", error_schema)

        def error(code: int) -> dict[str, Any]:
            return {"description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}

        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", error(400))
                if "requestBody" in op and not op.get(STREAMED_BODY_EXTENSION):
                    responses.setdefault("413", error(413))
        if "#/components/schemas/HTTPValidationError" not in str(schema["paths"]):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)  # only HTTPValidationError refers to it
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
