"""Server-rendered web pages: sessions list, session detail (live logs and charts), compare.

Pages render their first state on the server (so they are useful without JavaScript and fast to
first paint); small vanilla scripts then keep them live through the JSON API and SSE streams.
plotly.js is served from the installed ``plotly`` package: no CDN, no build step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from haneul.errors import InvalidInput, NotFound
from haneul.platform.format import age
from haneul.platform.plugins import CurrentPrincipal, NavEntry, current_principal
from haneul.platform.server.deps import INT64_MAX, PlatformDep, ReadSession, TemplatesDep

HERE = Path(__file__).with_name("web")
router = APIRouter(include_in_schema=False)

#: the platform's own header links; plugins add theirs between these (orders 10-20 and 1000)
NAV = (NavEntry("Sessions", "/", 10), NavEntry("Projects", "/projects", 15), NavEntry("Compare", "/compare", 20),
       NavEntry("Datasets", "/datasets", 25), NavEntry("Leaderboards", "/leaderboards", 26),
       NavEntry("Deployments", "/deployments", 27),
       NavEntry("API", "/api/v1/docs", 1000))
#: metrics shown per row of the sessions list
ROW_METRICS = 4
#: charts on one page of a session's keys; a session with more gets a filter and pages of keys
PAGE_KEYS = 24
#: metric keys the launcher reports (CPU, memory, GPU): drawn in the session page's System section
SYSTEM_PREFIX = "sys/"
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
    templates.env.filters["notes"] = render_notes
    templates.env.filters["cell"] = _fmt_cell
    templates.env.globals["nav"] = sorted([*NAV, *nav], key=lambda e: e.order)
    return templates


def _fmt_cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_notes(text: str | None) -> Markup:
    """Notes as HTML: a small Markdown subset (headings, lists, **bold**, `code`, fenced blocks,
    paragraphs). Every character of the text is escaped first, so notes can never inject markup."""
    out: list[str] = []
    in_list = in_code = False
    for line in (text or "").splitlines():
        if line.strip().startswith("```"):
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(str(escape(line)))
            continue
        html = str(escape(line.strip()))
        html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
        html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
        item = re.match(r"[-*] (.*)", html)
        if in_list and not item:
            out.append("</ul>")
            in_list = False
        if item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{item.group(1)}</li>")
        elif heading := re.match(r"(#{1,4}) (.*)", html):
            level = len(heading.group(1)) + 2  # below the page's own h1/h2
            out.append(f"<h{level}>{heading.group(2)}</h{level}>")
        elif html:
            out.append(f"<p>{html}</p>")
    out.append("</ul>" if in_list else "")
    out.append("</pre>" if in_code else "")
    return Markup("\n".join(out))


class ListQuery:
    """The query of a sessions table (the sessions page and a project's page), read by FastAPI."""

    def __init__(
        self,
        status: Annotated[list[str] | None, Query()] = None,
        owner: str | None = None,
        q: str | None = None,
        filter: str | None = None,
        cols: str | None = None,
        archived: str = "0",
        sort: str = "id",
        desc: bool = True,
        page: Annotated[int, Query(ge=1, le=_PAGE_MAX)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> None:
        self.status = [s for s in (status or []) if s]
        self.owner, self.q, self.filter = owner or "", q or "", filter or ""
        self.cols = [c for c in (cols or "").split(",") if c]
        self.archived, self.sort, self.desc, self.page, self.per_page = archived, sort, desc, page, per_page


ListQueryDep = Annotated[ListQuery, Depends()]


def _list_page(request: Request, platform: Any, templates: Jinja2Templates, query: ListQuery, *,
               project: str | None, template: str = "sessions.html") -> Any:
    """The sessions table, for the sessions page and a project's page. A bad filter expression is
    shown above an empty table, so it can be corrected in the box where it was typed."""
    lq, error = query, None
    teams = current_principal(request).readable_teams()
    try:
        items, total = platform.list_sessions(
            status=lq.status or None, owner=lq.owner or None, q=lq.q or None, project=project,
            filter=lq.filter or None, archived=lq.archived, sort=lq.sort, desc=lq.desc, limit=lq.per_page,
            offset=(lq.page - 1) * lq.per_page, columns=lq.cols or None, teams=teams,
        )
    except InvalidInput as exc:
        items, total, error = [], 0, exc.message
    offered = sorted({f"params.{k}" for i in items for k in i["params"]}
                     | {f"metrics.{k}" for i in items for k in i.get("metrics", {})}
                     | {f"tags.{k}" for i in items for k in i["tags"]} | set(lq.cols))
    link = urlencode([("project", project or ""), *(("status", st) for st in lq.status), ("owner", lq.owner),
                      ("q", lq.q), ("filter", lq.filter), ("cols", ",".join(lq.cols)), ("archived", lq.archived)])
    return templates.TemplateResponse(request, template, {
        "items": items, "total": total, "page": lq.page, "per_page": lq.per_page,
        "pages": max(1, -(-total // lq.per_page)), "status": lq.status, "owner": lq.owner, "q": lq.q,
        "sort": lq.sort, "desc": lq.desc, "filter": lq.filter, "cols": lq.cols, "offered": offered,
        "archived": lq.archived, "error": error, "project": project, "views": platform.list_views(teams=teams),
        "query": link, "row_metrics": ROW_METRICS,
        "statuses": ["queued", "running", "paused", "done", "failed", "stopped", "lost"],
    })


@router.get("/", response_class=HTMLResponse)
def sessions_page(request: Request, platform: PlatformDep, templates: TemplatesDep, query: ListQueryDep,
                  project: str | None = None) -> Any:
    return _list_page(request, platform, templates, query, project=project or None)


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, platform: PlatformDep, templates: TemplatesDep,
                  principal: CurrentPrincipal) -> Any:
    projects = platform.list_projects(teams=principal.readable_teams())
    return templates.TemplateResponse(request, "projects.html", {"projects": projects})


@router.get("/projects/{name}", response_class=HTMLResponse)
def project_page(name: str, request: Request, platform: PlatformDep, templates: TemplatesDep,
                 query: ListQueryDep) -> Any:
    return _list_page(request, platform, templates, query, project=name, template="project.html")


@router.get("/sessions/{sid}", response_class=HTMLResponse)
def session_page(
    sid: ReadSession,
    request: Request,
    platform: PlatformDep,
    templates: TemplatesDep,
    mq: Annotated[str | None, Query(description="show only metric keys containing this")] = None,
    mpage: Annotated[int, Query(ge=1, le=_PAGE_MAX)] = 1,
) -> Any:
    session = platform.get_session(sid)
    mq = mq or None
    # the launcher's sys/* keys have their own section (_system.html): the charts, pages and counts
    # here are of the run's own keys, and the system keys are counted apart
    total = platform.count_metric_keys(sid, q=mq, exclude_prefix=SYSTEM_PREFIX)
    main_keys = total if mq is None else platform.count_metric_keys(sid, exclude_prefix=SYSTEM_PREFIX)
    pages = max(1, -(-total // PAGE_KEYS))
    mpage = min(mpage, pages)
    keys = platform.metric_keys(sid, q=mq, limit=PAGE_KEYS, offset=(mpage - 1) * PAGE_KEYS,
                                exclude_prefix=SYSTEM_PREFIX)
    return templates.TemplateResponse(request, "session.html", {
        "s": session, "keys": keys, "key_total": total, "all_keys": main_keys,
        "system_keys": session["metric_count"] - main_keys, "system_prefix": SYSTEM_PREFIX,
        "mq": mq or "", "mpage": mpage, "mpages": pages, "first": (mpage - 1) * PAGE_KEYS + 1,
        # with one page of keys and no filter the page follows every key, so keys reported later
        # get their charts too; otherwise it follows exactly the keys it shows
        "follow_all": mq is None and main_keys <= PAGE_KEYS, "page_keys": PAGE_KEYS,
        "checkpoints": platform.list_checkpoints(sid),
        "forks": platform.session_forks(sid),
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
    request: Request,
    platform: PlatformDep,
    templates: TemplatesDep,
    ids: str = "",
    key: Annotated[list[str] | None, Query(description="metric keys to chart (repeat for more)")] = None,
) -> Any:
    sids = _parse_ids(ids)
    principal = current_principal(request)
    for sid in sids:
        principal.check_read(platform.session_team(sid), f"session {sid}")
    sessions = [platform.get_session(sid) for sid in sids]
    names: dict[str, None] = {}  # ordered and O(1) membership: sessions may hold thousands of keys
    for sid in sids:
        names.update(dict.fromkeys(k["key"] for k in platform.metric_keys(sid, limit=COMPARE_KEYS)))
    chosen = list(dict.fromkeys(k for k in (key or []) if k)) or ([next(iter(names))] if names else [])
    keys = [*(k for k in chosen if k not in names), *sorted(names)]
    latest: dict[int, dict[str, float | None]] = {}
    for sid in sids:
        found = {k: platform.metric_key(sid, k) for k in chosen}
        latest[sid] = {k: f["last_value"] if f else None for k, f in found.items()}
    diff = params_diff(sessions)
    chart_data = {
        "sessions": [{"id": s["id"], "name": s["name"]} for s in sessions],
        "keys": chosen,
        "latest": {str(sid): values for sid, values in latest.items()},
        "params": {str(s["id"]): {k: (s.get("params") or {}).get(k) for k in diff.numeric} for s in sessions},
        "numeric": diff.numeric,
    }
    return templates.TemplateResponse(request, "compare.html", {
        "sessions": sessions, "ids": ",".join(map(str, sids)), "keys": keys, "chosen": chosen, "latest": latest,
        "diff": diff, "chart_data": chart_data,
    })


@dataclass(frozen=True)
class ParamsDiff:
    """The params that tell compared sessions apart: ``keys`` whose values differ (a key some
    sessions lack counts), ``numeric`` those of them that are numbers in every session (the axes a
    parallel-coordinates plot can draw); ``recorded`` is False when no session carries params."""

    recorded: bool
    keys: list[str]
    numeric: list[str]


def params_diff(sessions: list[dict[str, Any]]) -> ParamsDiff:
    recorded: list[dict[str, Any]] = [s["params"] for s in sessions if isinstance(s.get("params"), dict)]
    if not recorded:
        return ParamsDiff(False, [], [])
    missing = object()
    every = sorted({k for params in recorded for k in params})
    keys = []
    for k in every:
        values = [(s.get("params") or {}).get(k, missing) for s in sessions]
        # True == 1 in Python; a flag and a count are still different values
        marked = [(isinstance(v, bool), v) for v in values]
        if any(v is missing or m != marked[0] for v, m in zip(values, marked, strict=True)):
            keys.append(k)

    def is_number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    numeric = [k for k in keys if all(is_number((s.get("params") or {}).get(k)) for s in sessions)]
    return ParamsDiff(True, keys, numeric)


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
