"""The Studio's pages (HyperCLOVA §5): the preset list and the playground, where a preset's instruction,
examples and input are edited, the model and its parameters picked, the answer streamed in as it is
written and a new version saved. The pages are rendered with the server's layout; the playground's
editing, token counting and streaming happen in ``static/studio.js`` against the REST routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from haneul.platform.plugins import CurrentPrincipal, Principal, ServerContext
from haneul.studio.models import Catalog
from haneul.studio.service import Studio, VersionFields

__all__ = ["add_pages"]


def add_pages(router: APIRouter, studio: Studio, catalog: Catalog, ctx: ServerContext,
              readable: Callable[[str, Principal], int]) -> None:
    @router.get("/studio", response_class=HTMLResponse, include_in_schema=False)
    def presets_page(request: Request, principal: CurrentPrincipal) -> Any:
        return ctx.render(request, "presets.html", {"presets": studio.list_presets(teams=principal.readable_teams())})

    @router.get("/studio/playground", response_class=HTMLResponse, include_in_schema=False)
    def playground(request: Request, principal: CurrentPrincipal, preset: str | None = None,
                   version: int | None = None) -> Any:
        state: dict[str, Any] = {"preset": None, "version": None, "versions": []}
        content = VersionFields()
        if preset is not None:
            pid = readable(preset, principal)
            p = studio.get(pid)
            v = studio.version(pid, version)
            content = VersionFields.from_dict({k: v[k] for k in ("instruction", "examples", "input_template",
                                                                  "mode", "model", "params")})
            state.update(preset={"id": p["id"], "name": p["name"], "team_id": p["team_id"]}, version=v["number"],
                         versions=[{"number": x["number"], "note": x["note"], "created_at": x["created_at"],
                                    "created_by": x["created_by"]} for x in studio.versions(pid)])
        state["content"] = content.to_dict()
        state["models"] = [c.to_dict() for c in catalog.choices(principal.readable_teams())]
        return ctx.render(request, "playground.html", {"state": state, "preset": state["preset"],
                                                       "version": state["version"]})
