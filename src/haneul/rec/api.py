"""REST route for recommendations from saved ``haneul.rec`` models.

:func:`plugin` gives the haneul server (entry point ``rec`` in the ``haneul.plugins`` group) a
router serving ``GET /api/v1/rec/{model_name}/recommend/{user}?k=10&friends=a,b`` from the bundles
under the server's ``<home>/rec/models``. Serving is numpy only: neither this module nor a request
imports torch. Errors are :class:`~haneul.errors.HaneulError` subclasses (unknown model ->
``NotFound``), which the server's exception handler turns into JSON with the right status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query

from haneul.errors import InvalidInput
from haneul.platform.plugins import Plugin, ServerContext, errors


def plugin(ctx: ServerContext) -> Plugin:
    from haneul.rec.bundle import models_dir

    return Plugin(router=create_router(models_dir(ctx.home)))


def create_router(root: str | Path) -> APIRouter:
    """A router serving recommendations from the model bundles in the folder ``root``."""
    router = APIRouter(tags=["rec"])
    cache: dict[Path, tuple[float, Any]] = {}

    def model_for(name: str):
        from haneul.rec.bundle import RecModel, load_model

        if not name or "/" in name or name.startswith("."):
            raise InvalidInput(f"model name {name!r} is not valid; use the --name given to `haneul rec train`")
        folder = Path(root) / name
        meta = folder / "meta.json"
        if not meta.exists():
            return load_model(folder)  # raises NotFound with the fix
        stamp = meta.stat().st_mtime
        hit = cache.get(folder)
        if hit is None or hit[0] != stamp:
            cache[folder] = (stamp, RecModel.load(folder))
        return cache[folder][1]

    @router.get("/api/v1/rec/{model_name}/recommend/{user}",
                responses=errors(404, described={404: "no trained model with this name"}))
    def recommend_route(
        model_name: str,
        user: str,
        k: int = Query(10, ge=1, le=1000, description="how many items to return"),
        friends: str | None = Query(None, description="comma-separated known friends, used for unknown users"),
    ) -> dict[str, Any]:
        """Top-k items for ``user``; unknown users get popular items of their friends' groups."""
        model = model_for(model_name)
        friend_list = [f for f in (friends or "").split(",") if f]
        return {"model": model_name, **model.recommend(user, k, friends=friend_list).as_dict()}

    return router


__all__ = ["create_router", "plugin"]
