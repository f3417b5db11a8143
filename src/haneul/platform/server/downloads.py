"""Sending a stored file (a checkpoint, an artifact): ``sendfile`` from a local folder, a stream from an
object store."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from fastapi.responses import FileResponse, Response, StreamingResponse

from haneul.platform.objects import StoredFile


def send_stored(stored: StoredFile, *, media_type: str, filename: str, headers: Mapping[str, str],
                inline: bool = False) -> Response:
    """The response carrying ``stored``: a FileResponse for a local file (the kernel copies it, and
    ranges work), else its bytes streamed from the object store, checked against its sha256 on the way."""
    disposition = "inline" if inline else "attachment"
    if stored.local is not None:
        return FileResponse(stored.local, media_type=media_type, filename=filename,
                            content_disposition_type=disposition, headers=dict(headers))
    quoted = quote(filename)
    name = f"filename*=utf-8''{quoted}" if quoted != filename else f'filename="{filename}"'
    return StreamingResponse(stored.chunks(), media_type=media_type,
                             headers={**headers, "Content-Disposition": f"{disposition}; {name}",
                                      "Content-Length": str(stored.size)})
