"""Logs: tail, read from a byte offset, and a live SSE stream of lines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from haneul.platform.server import sse
from haneul.platform.server.deps import PlatformDep

router = APIRouter(prefix="/api/v1/sessions/{sid}", tags=["logs"])


@router.get("/logs")
def logs(
    sid: int,
    platform: PlatformDep,
    tail: Annotated[int, Query(ge=0, le=100_000)] = 100,
    offset: Annotated[int | None, Query(ge=0, description="read from this byte offset instead of tailing")] = None,
) -> dict[str, Any]:
    if offset is not None:
        data, end = platform.read_log(sid, offset=offset)
        return {"text": data.decode("utf-8", errors="replace"), "offset": end}
    lines, end = platform.tail_log(sid, lines=tail)
    return {"lines": lines, "offset": end}


@router.get("/stream/logs")
async def stream_logs(
    sid: int,
    request: Request,
    platform: PlatformDep,
    tail: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> Any:
    """``lines`` events with new log lines; ``end`` once the session has ended and the log is drained."""
    lines, offset = await run_in_threadpool(platform.tail_log, sid, lines=tail)
    state = {"offset": offset, "pending": b"", "first": lines}

    async def poll() -> tuple[list[str], bool]:
        def work() -> tuple[list[str], bool]:
            frames = []
            if state["first"]:
                frames.append(sse.frame(state["first"], event="lines"))
                state["first"] = []
            ended = platform.get_session(sid)["status"] not in ("queued", "running")
            data, state["offset"] = platform.read_log(sid, offset=state["offset"])
            buf = state["pending"] + data
            if ended:
                complete, state["pending"] = buf, b""
            else:
                cut = buf.rfind(b"\n") + 1
                complete, state["pending"] = buf[:cut], buf[cut:]
            if complete:
                text = complete.decode("utf-8", errors="replace").splitlines()
                frames.append(sse.frame(text, event="lines"))
            return frames, ended and not data

        return await run_in_threadpool(work)

    return sse.stream(sse.follow(request, poll))
