"""Sending a finished evaluation run to the haneul server, where the ``/evals`` page shows it.

``haneul eval run`` calls :func:`publish` after it has written ``results.json`` (so the local copy
exists whatever the server does) whenever a server is configured, which is always the case inside
a platform session; ``haneul eval publish`` uploads an existing run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from haneul.errors import HaneulError, InvalidInput, NotFound, ServerUnavailable


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a ``results.json`` (or the results folder that holds one) and validate it."""
    from haneul.evals.store import validate_results

    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise NotFound(f"{p} does not exist; pass the results.json (or --out folder) of a finished `haneul eval run`")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{p} is not valid JSON ({exc}); pass the results.json of `haneul eval run`") from None
    try:
        return validate_results(doc)
    except InvalidInput as exc:
        raise InvalidInput(f"{p}: {exc.message}") from None


def publish(
    results: dict[str, Any],
    server: str | None = None,
    session: str | int | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """POST ``results`` to ``server`` (default: the configured server URL); return the stored run's summary.

    ``session`` defaults to ``HANEUL_SESSION``, the platform session this process runs in.
    Raises :class:`ServerUnavailable` when the server cannot be reached, and the server's own error
    (e.g. :class:`InvalidInput`) when it refuses the document.
    """
    import httpx

    if server is None:
        from haneul.settings import get_settings

        server = get_settings().server_url
    server = server.rstrip("/")
    if session is None:
        session = os.environ.get("HANEUL_SESSION") or None
    params = {"session": str(session)} if session is not None else {}
    body = json.dumps(results, ensure_ascii=False, allow_nan=True).encode("utf-8")
    from haneul.platform.credentials import find_token

    headers = {"Content-Type": "application/json"}
    token = find_token(server)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        res = httpx.post(f"{server}/api/v1/evals/results", content=body, params=params, timeout=timeout,
                         headers=headers)
    except httpx.TransportError as exc:
        raise ServerUnavailable(
            f"cannot reach the haneul server at {server} ({exc.__class__.__name__}); start it with "
            "`haneul server` or set HANEUL_SERVER, then run `haneul eval publish`"
        ) from None
    if res.status_code >= 400:
        try:
            error = res.json()["error"]
        except (ValueError, KeyError, TypeError):
            if res.status_code == 404:  # a server without this router answers the framework's own 404
                raise NotFound(f"the server at {server} has no evaluation results API; "
                               "upgrade it to this haneul version") from None
            raise HaneulError(f"server at {server} answered {res.status_code}: {res.text[:200]}") from None
        raise HaneulError.from_dict(error)
    return res.json()
