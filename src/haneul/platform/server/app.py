"""The FastAPI application factory.

``create_app()`` wires the platform service, the API routers, the web pages, the installed plugins
(:mod:`haneul.platform.plugins`) and the error handlers: every :class:`~haneul.errors.HaneulError`
becomes ``{"error": {"code", "message"}}`` with the error's HTTP status, and request validation
failures become a 400 of the same shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker

from haneul import __version__
from haneul.errors import HaneulError
from haneul.platform.plugins import LoadedPlugin, ServerContext, load_plugins, parse_disabled
from haneul.platform.service import Platform
from haneul.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, platform: Platform | None = None,
               server_url: str | None = None) -> FastAPI:
    settings = settings or get_settings()
    platform = platform or Platform(settings, server_url=server_url)
    plugins = _load(settings, platform)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform.start()  # a no-op when the caller started it (to report a busy home in one line)
        try:
            yield
        finally:
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

    @app.exception_handler(HaneulError)
    async def _haneul_error(_request: Request, exc: HaneulError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}"
        return JSONResponse({"error": {"code": "invalid_input", "message": message}}, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # never a bare 500 page: the client still gets one line it can print
        message = f"internal server error: {exc.__class__.__name__}: {exc}"[:500]
        return JSONResponse({"error": {"code": "error", "message": message}}, status_code=500)

    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__, "home": str(settings.home)}

    from haneul.platform.server.routes import checkpoints, logs, metrics, sessions
    from haneul.platform.server.web import make_templates
    from haneul.platform.server.web import router as web_router

    for routes in (sessions, metrics, checkpoints, logs):
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
    app.include_router(web_router)
    return app


def _load(settings: Settings, platform: Platform) -> list[LoadedPlugin]:
    """Load the installed plugins and register their migrations with the platform."""
    sessions = sessionmaker(platform.engine)

    def context(name: str) -> ServerContext:
        return ServerContext(name=name, settings=settings, engine=platform.engine, sessions=sessions,
                             artifacts=Path(settings.artifacts))

    plugins = load_plugins(context, disabled=parse_disabled(settings.disable_plugins))
    platform.add_migrations({p.name: Path(p.plugin.migrations) for p in plugins if p.plugin.migrations is not None})
    return plugins
