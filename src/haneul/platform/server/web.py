"""Server-rendered web pages: sessions list, session detail (live logs and charts), compare.

Pages render their first state on the server (so they are useful without JavaScript and fast to
first paint); small vanilla scripts then keep them live through the JSON API and SSE streams.
plotly.js is served from the installed ``plotly`` package: no CDN, no build step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from haneul.platform.format import age
from haneul.platform.plugins import NavEntry
from haneul.platform.server.deps import PlatformDep, TemplatesDep

HERE = Path(__file__).with_name("web")
router = APIRouter(include_in_schema=False)

#: the platform's own header links; plugins add theirs between these (orders 10-20 and 1000)
NAV = (NavEntry("Sessions", "/", 10), NavEntry("Compare", "/compare", 20), NavEntry("API", "/api/v1/docs", 1000))


def _fmt_value(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def make_templates(plugin_folders: Mapping[str, Path], nav: Iterable[NavEntry]) -> Jinja2Templates:
    """One Jinja environment for every page: the platform's templates (``base.html`` and its pages) and
    each plugin's folder under its name, so a plugin page extends the same layout and nav."""
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(str(HERE / "templates")),
        jinja2.PrefixLoader({name: jinja2.FileSystemLoader(str(folder)) for name, folder in plugin_folders.items()}),
    ])
    templates = Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True))
    templates.env.filters["age"] = age
    templates.env.filters["num"] = _fmt_value
    templates.env.globals["nav"] = sorted([*NAV, *nav], key=lambda e: e.order)
    return templates


@router.get("/", response_class=HTMLResponse)
def sessions_page(
    request: Request,
    platform: PlatformDep,
    templates: TemplatesDep,
    status: Annotated[list[str] | None, Query()] = None,
    owner: str | None = None,
    q: str | None = None,
    sort: str = "id",
    desc: bool = True,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    status = [s for s in (status or []) if s]
    items, total = platform.list_sessions(
        status=status or None, owner=owner or None, q=q or None, sort=sort, desc=desc,
        limit=per_page, offset=(page - 1) * per_page,
    )
    keys: list[str] = []
    for item in items:
        for k in item.get("metrics", {}):
            if k not in keys:
                keys.append(k)
    return templates.TemplateResponse(request, "sessions.html", {
        "items": items, "total": total, "page": page, "per_page": per_page, "pages": max(1, -(-total // per_page)),
        "status": status, "owner": owner or "", "q": q or "", "sort": sort, "desc": desc,
        "metric_keys": keys[:4], "statuses": ["queued", "running", "done", "failed", "stopped", "lost"],
    })


@router.get("/sessions/{sid}", response_class=HTMLResponse)
def session_page(sid: int, request: Request, platform: PlatformDep, templates: TemplatesDep) -> Any:
    session = platform.get_session(sid)
    return templates.TemplateResponse(request, "session.html", {
        "s": session, "keys": platform.metric_keys(sid), "checkpoints": platform.list_checkpoints(sid),
    })


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, platform: PlatformDep, templates: TemplatesDep, ids: str = "", key: str | None = None
) -> Any:
    sids = [int(x) for x in ids.replace(" ", "").split(",") if x.isdigit()]
    sessions = [platform.get_session(sid) for sid in sids]
    keys: list[str] = []
    for s in sessions:
        for k in s["metrics"]:
            if k not in keys:
                keys.append(k)
    return templates.TemplateResponse(request, "compare.html", {
        "sessions": sessions, "ids": ",".join(map(str, sids)), "keys": sorted(keys), "key": key or (keys[0] if keys else ""),
    })


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return FileResponse(path, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    path = HERE / "static" / Path(name).name
    media = {"js": "application/javascript", "css": "text/css"}.get(path.suffix.lstrip("."), "text/plain")
    if not path.is_file():
        from haneul.errors import NotFound

        raise NotFound(f"static file {name!r} not found")
    return FileResponse(path, media_type=media)
