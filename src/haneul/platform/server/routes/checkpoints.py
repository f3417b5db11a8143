"""Checkpoints: upload (the session's token or its team's members, streamed body), list, download (sha256-verified;
from a local folder or streamed from an object store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from haneul.platform.server.deps import (
    STREAMED_BODY_EXTENSION,
    PlatformDep,
    ReadSession,
    ReportSession,
    StreamedBody,
    errors,
)
from haneul.platform.server.downloads import send_stored

router = APIRouter(prefix="/api/v1/sessions/{sid}/checkpoints", tags=["checkpoints"])


@router.get("", responses=errors(400, 404))
def list_checkpoints(sid: ReadSession, platform: PlatformDep) -> list[dict[str, Any]]:
    platform.get_session(sid)
    return platform.list_checkpoints(sid)


@router.put(
    "/{name}",
    status_code=201,
    responses=errors(400, 401, 404, 503, 507),
    dependencies=[StreamedBody],
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}},
        "description": "the file's bytes, streamed to disk (not bound by the request body limit). "
        "Needs the session's own token or a member of its team."}, STREAMED_BODY_EXTENSION: True},
)
async def upload(sid: ReportSession, name: str, request: Request, platform: PlatformDep,
                 kind: str = "file") -> dict[str, Any]:
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


@router.get(
    "/{name}",
    responses={**errors(400, 404, 500, 503),
               200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "the file; X-Haneul-Sha256 carries its checksum"}},
    response_class=Response,
)
def download(sid: ReadSession, name: str, platform: PlatformDep) -> Response:
    record, stored = platform.checkpoint_download(sid, name)
    return send_stored(stored, media_type="application/octet-stream", filename=f"{sid}-{name}",
                       headers={"X-Haneul-Sha256": record["sha256"], "X-Haneul-Kind": record["kind"]})
