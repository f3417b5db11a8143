"""REST route for recommendations from saved ``haneul.rec`` models.

``create_router()`` returns a FastAPI ``APIRouter`` serving
``GET /api/v1/rec/{model_name}/recommend/{user}?k=10&friends=a,b`` from bundles under
``HANEUL_HOME/rec/models`` (or ``root``). Serving is numpy only: neither this module nor a request
imports torch. Errors are :class:`~haneul.errors.HaneulError` subclasses (unknown model ->
``NotFound``), which the server's exception handler turns into JSON with the right status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def create_router(root: str | Path | None = None):  # -> fastapi.APIRouter
    """A router serving recommendations from the models in ``root`` (default: the models folder)."""
    from fastapi import APIRouter, Query

    from haneul.errors import InvalidInput

    router = APIRouter(tags=["rec"])
    cache: dict[Path, tuple[float, Any]] = {}

    def model_for(name: str):
        from haneul.rec.bundle import RecModel, load_model, models_dir

        if not name or "/" in name or name.startswith("."):
            raise InvalidInput(f"model name {name!r} is not valid; use the --name given to `haneul rec train`")
        folder = Path(root) / name if root is not None else models_dir() / name
        meta = folder / "meta.json"
        if not meta.exists():
            return load_model(folder)  # raises NotFound with the fix
        stamp = meta.stat().st_mtime
        hit = cache.get(folder)
        if hit is None or hit[0] != stamp:
            cache[folder] = (stamp, RecModel.load(folder))
        return cache[folder][1]

    @router.get("/api/v1/rec/{model_name}/recommend/{user}")
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


__all__ = ["create_router"]
