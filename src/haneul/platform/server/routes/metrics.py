"""Metrics: batch ingest (the session's token or its team's members), keys, history by key with server-side downsampling, SSE."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from haneul.platform.server import sse
from haneul.platform.server.deps import (
    INT64_MAX,
    Int64,
    NonNegInt64,
    PlatformDep,
    ReadSession,
    ReportSession,
    errors,
)

router = APIRouter(prefix="/api/v1/sessions/{sid}", tags=["metrics"])

_BATCH_EXAMPLE = {"metrics": {"loss": {"steps": [0, 1], "values": [2.3, 2.1], "times": [1.7e9, 1.7e9]}}}
# The batch is parsed by hand (100,000 points through a pydantic model would be slow); this schema
# documents what the parser accepts.
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["metrics"],
    "properties": {"metrics": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"minLength": 1, "maxLength": 256},
        "additionalProperties": {
            "type": "object",
            "required": ["steps", "values"],
            "properties": {
                "steps": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": INT64_MAX}},
                "values": {"type": "array", "items": {"type": "number"}},
                "times": {"type": "array", "items": {"type": "number"}, "description": "unix seconds"},
            },
        },
    }},
}


@router.post(
    "/metrics",
    responses=errors(400, 401, 404, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BATCH_SCHEMA, "example": _BATCH_EXAMPLE}},
            "description": "points grouped by key; times are optional (server time); steps are integers "
            "from 0 to 2^63-1. Needs the session's own token or a member of its team. The request body limit "
            "(HANEUL_MAX_REQUEST_BYTES) and the batch limit (HANEUL_MAX_METRIC_BATCH points) give 413; "
            "more keys than HANEUL_MAX_METRIC_KEYS in one session give 400.",
        }
    },
)
async def ingest(sid: ReportSession, request: Request, platform: PlatformDep) -> dict[str, int]:
    body = await request.body()  # the app's request body limit stops an oversized one while it arrives

    def work() -> int:
        return platform.ingest_metrics(sid, platform.parse_metric_batch(body))

    # a limiter of its own: reporting sessions never take every worker thread from pages and reads
    limiter = getattr(request.app.state, "ingest_limiter", None)
    return {"accepted": await anyio.to_thread.run_sync(work, limiter=limiter)}


@router.get("/metrics", responses=errors(400, 404))
def keys(
    sid: ReadSession,
    platform: PlatformDep,
    q: Annotated[str | None, Query(description="only keys containing this text")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="at most this many keys (all when omitted)")] = None,
    offset: Annotated[NonNegInt64, Query(description="skip this many keys (in key order)")] = 0,
) -> list[dict[str, Any]]:
    return platform.metric_keys(sid, q=q, limit=limit, offset=offset)


@router.get(
    "/metrics/{key:path}",
    responses={**errors(400, 404), 200: {"description": "the points, as JSON (or CSV with format=csv)",
                                         "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def history(
    sid: ReadSession,
    key: str,
    platform: PlatformDep,
    step_min: Annotated[Int64 | None, Query(description="only points at this step or later")] = None,
    step_max: Annotated[Int64 | None, Query(description="only points at this step or earlier")] = None,
    max_points: Annotated[int, Query(ge=0, le=1_000_000, description="0 = every point")] = 0,
    after_id: Annotated[NonNegInt64, Query(description="only points stored after this id")] = 0,
    times: Annotated[bool, Query(description="add each point's time (unix seconds) as `times`")] = False,
    band: Annotated[bool, Query(description="when downsampled, add `band`: each bucket's step span with its "
                                "lowest and highest value (null when every point was kept)")] = False,
    format: Annotated[Literal["json", "csv"], Query(description="csv: `step,value,time` lines, a download")] = "json",
) -> Response:
    """``{"key", "total", "last_id", "steps": [...], "values": [...]}`` in step order (``times`` and
    ``band`` when asked for)."""
    if format == "csv":
        got = platform.metric_series(sid, key, step_min=step_min, step_max=step_max, max_points=max_points,
                                     after_id=after_id, times=True)
        return Response(_csv(got), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="session-{sid}-{_file_safe(key)}.csv"'})
    if times or band:
        got = platform.metric_series(sid, key, step_min=step_min, step_max=step_max, max_points=max_points,
                                     after_id=after_id, times=times, band=band)
    else:
        got = platform.query_metrics(
            sid, key, step_min=step_min, step_max=step_max, max_points=max_points, after_id=after_id
        )
    return Response(orjson.dumps(got), media_type="application/json")  # 100k points: skip the encoder


def _csv(got: dict[str, Any]) -> bytes:
    # repr keeps every float exactly; a spreadsheet reads the times as unix seconds
    rows = (f"{s},{v!r},{t!r}\n" for s, v, t in zip(got["steps"], got["values"], got["times"], strict=True))
    return ("step,value,time\n" + "".join(rows)).encode()


def _file_safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "metric"


@router.get("/stream/metrics", responses=errors(400, 404))
async def stream(
    sid: ReadSession,
    request: Request,
    platform: PlatformDep,
    max_points: Annotated[int, Query(ge=2, le=100_000)] = 2000,
    key: Annotated[list[str] | None, Query(max_length=500, description="follow only these keys (repeat, up to "
                                           "500); every key when omitted")] = None,
) -> Any:
    """Live metric points: one ``points`` event per key with new data; ``end`` when the session ends."""
    await run_in_threadpool(platform.status, sid)  # 404 before the stream starts
    cursor = 0
    wanted = key or None

    async def poll() -> tuple[list[str], bool]:
        def work() -> tuple[list[str], bool]:
            nonlocal cursor
            ended = platform.status(sid) not in ("queued", "running")
            # one query for every key with new points, not one per key: a session may hold thousands
            updates, cursor = platform.metric_updates(sid, after_id=cursor, keys=wanted, max_points=max_points)
            frames = [sse.frame(u, event="points") for u in updates]
            return frames, ended and not frames

        return await run_in_threadpool(work)

    return sse.stream(sse.follow(request, poll, interval=0.5))
