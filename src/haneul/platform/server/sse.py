"""Server-Sent Events helpers: framing and a follower loop that ends when the session ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

HEARTBEAT_S = 15.0


def frame(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream(gen: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def follow(
    request: Request,
    poll: Callable[[], Awaitable[tuple[list[str], bool]]],
    interval: float = 0.25,
) -> AsyncIterator[str]:
    """Yield frames from ``poll()`` until it reports the source finished (after one last drain)."""
    idle = 0.0
    while True:
        if await request.is_disconnected():
            return
        frames, finished = await poll()
        for f in frames:
            yield f
        if finished:
            yield frame({"done": True}, event="end")
            return
        if frames:
            idle = 0.0
        else:
            idle += interval
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield ": keep-alive\n\n"
        await asyncio.sleep(interval)
