"""Metrics: batch ingest (session token), keys, history by key with server-side downsampling, SSE."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from haneul.errors import PayloadTooLarge
from haneul.platform.server import sse
from haneul.platform.server.deps import PlatformDep, TokenDep

router = APIRouter(prefix="/api/v1/sessions/{sid}", tags=["metrics"])

MAX_BODY = 64 << 20
_BATCH_EXAMPLE = {"metrics": {"loss": {"steps": [0, 1], "values": [2.3, 2.1], "times": [1.7e9, 1.7e9]}}}


@router.post(
    "/metrics",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"example": _BATCH_EXAMPLE}},
            "description": "points grouped by key; times are optional (server time). Needs the session token.",
        }
    },
)
async def ingest(sid: int, request: Request, platform: PlatformDep, token: TokenDep) -> dict[str, int]:
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise PayloadTooLarge(f"metric batch of {length} bytes exceeds {MAX_BODY} bytes; send smaller batches")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"metric batch exceeds {MAX_BODY} bytes; send smaller batches")

    def work() -> int:
        platform.authenticate(sid, token)
        return platform.ingest_metrics(sid, platform.parse_metric_batch(body))

    return {"accepted": await run_in_threadpool(work)}


@router.get("/metrics")
def keys(sid: int, platform: PlatformDep) -> list[dict[str, Any]]:
    return platform.metric_keys(sid)


@router.get("/metrics/{key:path}")
def history(
    sid: int,
    key: str,
    platform: PlatformDep,
    step_min: int | None = None,
    step_max: int | None = None,
    max_points: Annotated[int, Query(ge=0, le=1_000_000, description="0 = every point")] = 0,
    after_id: Annotated[int, Query(ge=0, description="only points stored after this id")] = 0,
) -> Response:
    """``{"key", "total", "last_id", "steps": [...], "values": [...]}`` in step order."""
    got = platform.query_metrics(
        sid, key, step_min=step_min, step_max=step_max, max_points=max_points, after_id=after_id
    )
    return Response(orjson.dumps(got), media_type="application/json")  # 100k points: skip the encoder


@router.get("/stream/metrics")
async def stream(
    sid: int,
    request: Request,
    platform: PlatformDep,
    max_points: Annotated[int, Query(ge=2, le=100_000)] = 2000,
) -> Any:
    """Live metric points: one ``points`` event per key with new data; ``end`` when the session ends."""
    platform.get_session(sid)
    last: dict[str, int] = {}

    async def poll() -> tuple[list[str], bool]:
        def work() -> tuple[list[str], bool]:
            ended = platform.get_session(sid)["status"] not in ("queued", "running")
            frames = []
            for k in platform.metric_keys(sid):
                key = k["key"]
                got = platform.query_metrics(sid, key, after_id=last.get(key, 0), max_points=max_points)
                if got["total"]:
                    last[key] = got["last_id"]
                    frames.append(sse.frame({"key": key, "steps": got["steps"], "values": got["values"]},
                                            event="points"))
            return frames, ended and not frames

        return await run_in_threadpool(work)

    return sse.stream(sse.follow(request, poll, interval=0.5))


