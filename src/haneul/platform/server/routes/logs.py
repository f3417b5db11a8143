"""Logs: tail, read from a byte offset, and a live SSE stream of lines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from haneul.platform.server import sse
from haneul.platform.server.deps import NonNegInt64, PlatformDep, ReadSession, errors

router = APIRouter(prefix="/api/v1/sessions/{sid}", tags=["logs"])


class _LogFollower:
    def __init__(self, offset: int, first: list[str]) -> None:
        self.offset = offset
        self.first = first
        self.pending = b""


@router.get("/logs", responses=errors(400, 404))
def logs(
    sid: ReadSession,
    platform: PlatformDep,
    tail: Annotated[int, Query(ge=0, le=100_000)] = 100,
    offset: Annotated[NonNegInt64 | None, Query(description="read from this byte offset instead of tailing")] = None,
) -> dict[str, Any]:
    if offset is not None:
        data, end = platform.read_log(sid, offset=offset)
        return {"text": data.decode("utf-8", errors="replace"), "offset": end}
    lines, end = platform.tail_log(sid, lines=tail)
    return {"lines": lines, "offset": end}


@router.get("/stream/logs", responses=errors(400, 404))
async def stream_logs(
    sid: ReadSession,
    request: Request,
    platform: PlatformDep,
    tail: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> Any:
    """``lines`` events with new log lines; ``end`` once the session has ended and the log is drained."""
    lines, offset = await run_in_threadpool(platform.tail_log, sid, lines=tail)
    follower = _LogFollower(offset, lines)

    async def poll() -> tuple[list[str], bool]:
        def work() -> tuple[list[str], bool]:
            frames = []
            if follower.first:
                frames.append(sse.frame(follower.first, event="lines"))
                follower.first = []
            ended = platform.status(sid) not in ("queued", "running")
            data, follower.offset = platform.read_log(sid, offset=follower.offset)
            buf = follower.pending + data
            if ended:
                complete, follower.pending = buf, b""
            else:  # hold a partial last line until its newline arrives
                cut = buf.rfind(b"\n") + 1
                complete, follower.pending = buf[:cut], buf[cut:]
            if complete:
                text = complete.decode("utf-8", errors="replace").splitlines()
                frames.append(sse.frame(text, event="lines"))
            return frames, ended and not data

        return await run_in_threadpool(work)

    return sse.stream(sse.follow(request, poll))
