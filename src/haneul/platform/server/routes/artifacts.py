"""Artifacts: upload by relative path (the session's token or its team's members, streamed body), list, download, preview."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from haneul.platform.server.deps import (
    STREAMED_BODY_EXTENSION,
    PlatformDep,
    ReadSession,
    ReportSession,
    StreamedBody,
    errors,
)
from haneul.platform.server.downloads import send_stored
from haneul.platform.store import MAX_PREVIEW_LINES

router = APIRouter(prefix="/api/v1/sessions/{sid}/artifacts", tags=["artifacts"])

# A stored SVG or HTML file opened straight from the server would run its scripts with the site's
# origin; sandboxed, it is only shown. nosniff keeps a browser from guessing a riskier type.
_SAFE_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


@router.get("", responses=errors(400, 404, 500, 503))
def list_artifacts(sid: ReadSession, platform: PlatformDep) -> list[dict[str, Any]]:
    """Every artifact of the session by path: ``path``, ``size``, ``sha256``, ``media_type``, ``created_at``."""
    return platform.list_artifacts(sid)


@router.put(
    "/{path:path}",
    status_code=201,
    responses=errors(400, 401, 404, 409, 500, 503, 507),
    dependencies=[StreamedBody],
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}},
        "description": "the file's bytes, streamed to disk (not bound by the request body limit). "
        "Needs the session's own token or a member of its team."}, STREAMED_BODY_EXTENSION: True},
)
async def upload(sid: ReportSession, path: str, request: Request, platform: PlatformDep) -> dict[str, Any]:
    """Store one file at ``path`` (relative: ``plots/loss.png``), replacing an earlier one there."""
    from haneul.platform.store import validate_artifact_path

    validate_artifact_path(path)  # before the body is read: a bad path costs no upload
    with tempfile.TemporaryFile() as spool:  # as for checkpoints: keep disk writes off the event loop
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            while data := spool.read(1 << 20):
                yield data

        return await run_in_threadpool(lambda: platform.save_artifact(sid, path=path, chunks=chunks()))


@router.get(
    "/{path:path}",
    responses={**errors(400, 404, 500, 503),
               200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                 "application/json": {"schema": {"type": "object"}}},
                     "description": "the file (X-Haneul-Sha256 carries its checksum), or with preview=1 its "
                     "first lines as JSON: kind 'table' (columns, rows), 'text' (lines) or 'none'"}},
)
def download(
    sid: ReadSession,
    path: str,
    platform: PlatformDep,
    preview: Annotated[bool, Query(description="answer the first lines or rows as JSON instead of the file")] = False,
    lines: Annotated[int, Query(ge=1, le=MAX_PREVIEW_LINES, description="lines or rows in a preview")] = 50,
) -> Any:
    if preview:
        return platform.artifact_preview(sid, path, lines=lines)
    record, stored = platform.artifact_file(sid, path)
    return send_stored(stored, media_type=record["media_type"], filename=path.rsplit("/", 1)[-1], inline=True,
                       headers={"X-Haneul-Sha256": record["sha256"], **_SAFE_HEADERS})
