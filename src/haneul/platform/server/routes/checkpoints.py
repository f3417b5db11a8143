"""Checkpoints: upload (session token, streamed body), list, download (sha256-verified)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from haneul.platform.server.deps import PlatformDep, TokenDep

router = APIRouter(prefix="/api/v1/sessions/{sid}/checkpoints", tags=["checkpoints"])


@router.get("")
def list_checkpoints(sid: int, platform: PlatformDep) -> list[dict[str, Any]]:
    platform.get_session(sid)
    return platform.list_checkpoints(sid)


@router.put("/{name}", status_code=201)
async def upload(sid: int, name: str, request: Request, platform: PlatformDep, token: TokenDep,
                 kind: str = "file") -> dict[str, Any]:
    await run_in_threadpool(platform.authenticate, sid, token)
    # Spool the body to a temporary file first: the store then writes tmp-then-rename from disk
    # without holding the event loop, and a dropped upload leaves nothing behind.
    import tempfile

    with tempfile.TemporaryFile() as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            while data := spool.read(1 << 20):
                yield data

        return await run_in_threadpool(
            lambda: platform.save_checkpoint(sid, name=name, kind=kind, chunks=chunks())
        )


@router.get("/{name}")
def download(sid: int, name: str, platform: PlatformDep) -> FileResponse:
    record, path = platform.checkpoint_file(sid, name)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{sid}-{name}",
        headers={"X-Haneul-Sha256": record["sha256"], "X-Haneul-Kind": record["kind"]},
    )
