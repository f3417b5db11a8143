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

from haneul.errors import InvalidInput, NotFound
from haneul.platform.format import age
from haneul.platform.plugins import NavEntry
from haneul.platform.server.deps import INT64_MAX, PlatformDep, SessionId, TemplatesDep

HERE = Path(__file__).with_name("web")
router = APIRouter(include_in_schema=False)

#: the platform's own header links; plugins add theirs between these (orders 10-20 and 1000)
NAV = (NavEntry("Sessions", "/", 10), NavEntry("Compare", "/compare", 20), NavEntry("API", "/api/v1/docs", 1000))
#: metrics shown per row of the sessions list
ROW_METRICS = 4
#: charts on one page of a session's keys; a session with more gets a filter and pages of keys
PAGE_KEYS = 24
#: keys offered per session in the compare page's key list
COMPARE_KEYS = 500
_PAGE_MAX = 1_000_000_000  # page numbers beyond any real list, still far inside 64-bit offsets


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
    page: Annotated[int, Query(ge=1, le=_PAGE_MAX)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    status = [s for s in (status or []) if s]
    items, total = platform.list_sessions(
        status=status or None, owner=owner or None, q=q or None, sort=sort, desc=desc,
        limit=per_page, offset=(page - 1) * per_page,
    )
    return templates.TemplateResponse(request, "sessions.html", {
        "items": items, "total": total, "page": page, "per_page": per_page, "pages": max(1, -(-total // per_page)),
        "status": status, "owner": owner or "", "q": q or "", "sort": sort, "desc": desc,
        "row_metrics": ROW_METRICS, "statuses": ["queued", "running", "done", "failed", "stopped", "lost"],
    })


@router.get("/sessions/{sid}", response_class=HTMLResponse)
def session_page(
    sid: SessionId,
    request: Request,
    platform: PlatformDep,
    templates: TemplatesDep,
    mq: Annotated[str | None, Query(description="show only metric keys containing this")] = None,
    mpage: Annotated[int, Query(ge=1, le=_PAGE_MAX)] = 1,
) -> Any:
    session = platform.get_session(sid)
    mq = mq or None
    total = platform.count_metric_keys(sid, q=mq)
    pages = max(1, -(-total // PAGE_KEYS))
    mpage = min(mpage, pages)
    keys = platform.metric_keys(sid, q=mq, limit=PAGE_KEYS, offset=(mpage - 1) * PAGE_KEYS)
    return templates.TemplateResponse(request, "session.html", {
        "s": session, "keys": keys, "key_total": total, "all_keys": session["metric_count"],
        "mq": mq or "", "mpage": mpage, "mpages": pages, "first": (mpage - 1) * PAGE_KEYS + 1,
        # with one page of keys and no filter the page follows every key, so keys reported later
        # get their charts too; otherwise it follows exactly the keys it shows
        "follow_all": mq is None and session["metric_count"] <= PAGE_KEYS, "page_keys": PAGE_KEYS,
        "checkpoints": platform.list_checkpoints(sid),
    })


def _parse_ids(ids: str) -> list[int]:
    out = []
    for part in ids.replace(" ", "").split(","):
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or int(part) > INT64_MAX:
            raise InvalidInput(f"ids={ids[:80]!r}: write session numbers separated by commas, e.g. 3,4,7")
        out.append(int(part))
    return out


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, platform: PlatformDep, templates: TemplatesDep, ids: str = "", key: str | None = None
) -> Any:
    sids = _parse_ids(ids)
    sessions = [platform.get_session(sid) for sid in sids]
    names: dict[str, None] = {}  # ordered and O(1) membership: sessions may hold thousands of keys
    for sid in sids:
        names.update(dict.fromkeys(k["key"] for k in platform.metric_keys(sid, limit=COMPARE_KEYS)))
    keys = sorted(names)
    key = key or (keys[0] if keys else "")
    if key and key not in names:
        keys.insert(0, key)
    latest = {}
    for sid in sids:
        found = platform.metric_key(sid, key) if key else None
        latest[sid] = found["last_value"] if found else None
    return templates.TemplateResponse(request, "compare.html", {
        "sessions": sessions, "ids": ",".join(map(str, sids)), "keys": keys, "key": key, "latest": latest,
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
        raise NotFound(f"static file {name!r} not found")
    return FileResponse(path, media_type=media)


def error_page(request: Request, status_code: int, code: str, message: str) -> HTMLResponse:
    """An error answer to a page request: the message in the site's layout, with the same status."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status_code": status_code, "code": code,
                                                              "message": message}, status_code=status_code)
