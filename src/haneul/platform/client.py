"""The HTTP client of the haneul server, used by the CLI and by the SDK inside sessions.

Errors come back as the same :class:`~haneul.errors.HaneulError` subclass the server raised.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from haneul.errors import (
    Forbidden,
    HaneulError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServerUnavailable,
    TooManyRequests,
    Unauthorized,
)
from haneul.io import atomic_open, iter_file, sha256_file

# environment a session started from a shell keeps, so it runs the same Python and sees the same GPUs
INHERITED_ENV = ("PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES")


def inherited_env() -> dict[str, str]:
    """The variables of :data:`INHERITED_ENV` that this process has.

    With no virtual or conda environment active (``.venv/bin/haneul run -- python train.py`` from a
    plain shell), the folder of this interpreter goes first on ``PATH``: the session's ``python`` is
    then one that has haneul, not whichever the shell would have found.
    """
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    if "VIRTUAL_ENV" not in env and "CONDA_PREFIX" not in env:
        bindir = str(Path(sys.executable).parent)
        path = env.get("PATH", "")
        if path.split(os.pathsep)[:1] != [bindir]:
            env["PATH"] = os.pathsep.join([bindir, path]) if path else bindir
    return env


class Client:
    """A connection to a haneul server. Without a ``token`` it uses the one :func:`find_token` finds
    for the URL: ``HANEUL_API_TOKEN``, the ``haneul login`` of that server, or on this machine the
    local admin's token that the server wrote on its first start."""

    def __init__(self, url: str | None = None, *, token: str | None = None, timeout: float = 60.0) -> None:
        if url is None:
            from haneul.settings import get_settings

            url = get_settings().server_url
        self.url = url.rstrip("/")
        if token is None:
            from haneul.platform.credentials import find_token

            token = find_token(self.url)
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    @classmethod
    def from_env(cls) -> Client:
        return cls(os.environ.get("HANEUL_SERVER") or None, token=os.environ.get("HANEUL_TOKEN") or None)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request to the server's API; its JSON answer (None for an empty one)."""
        res = self._request(method, path, **kwargs)
        return res.json() if res.content else None

    # -- plumbing
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            res = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"cannot reach the haneul server at {self.url} ({exc.__class__.__name__}); "
                "start it with `haneul server` or set HANEUL_SERVER"
            ) from None
        if res.status_code >= 400:
            raise _error_from(res)
        return res

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call any route of the server (``path`` from the host root) and decode its JSON answer;
        error answers raise the server's :class:`~haneul.errors.HaneulError`."""
        return self._request(method, path, **kwargs).json()

    _json = request_json

    # -- sessions
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/api/v1/health")

    def create_session(self, **body: Any) -> dict[str, Any]:
        return self._json("POST", "/api/v1/sessions", json=body)

    def list_sessions(self, **params: Any) -> dict[str, Any]:
        return self._json("GET", "/api/v1/sessions", params={k: v for k, v in params.items() if v is not None})

    def get_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/sessions/{sid}")

    def stop_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/sessions/{sid}/stop")

    def pause_session(self, sid: int | str, grace: float | None = None) -> dict[str, Any]:
        """Ask a session to save and exit; it is stopped after ``grace`` seconds (default: the server's)."""
        return self._json("POST", f"/api/v1/sessions/{sid}/pause", json={"grace": grace})

    def resume_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/sessions/{sid}/resume")

    def fork_session(self, sid: int | str, **body: Any) -> dict[str, Any]:
        """Start a new session from ``sid``: ``checkpoint``, ``env``, ``args``, ``name``, ``priority``,
        ``preemptible`` (each optional)."""
        return self._json("POST", f"/api/v1/sessions/{sid}/fork", json=body)

    def update_session(self, sid: int | str, **body: Any) -> dict[str, Any]:
        """Edit ``notes`` and ``tags`` (a tag set to None is removed)."""
        return self._json("PATCH", f"/api/v1/sessions/{sid}", json=body)

    def set_params(self, sid: int | str, params: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/sessions/{sid}/params", json={"params": params})

    def archive_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/sessions/{sid}/archive")

    def restore_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/sessions/{sid}/restore")

    def delete_session(self, sid: int | str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/v1/sessions/{sid}")

    def list_projects(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/projects")

    def list_views(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/views")

    def save_view(self, **body: Any) -> dict[str, Any]:
        return self._json("POST", "/api/v1/views", json=body)

    # -- metrics
    def log_metrics(self, sid: int | str, groups: dict[str, tuple[list[int], list[float], list[float]]]) -> int:
        """Ship points grouped by key, ``{key: (steps, values, times)}``, in one batch."""
        body = orjson.dumps({"metrics": {k: {"steps": g[0], "values": g[1], "times": g[2]}
                                         for k, g in groups.items()}})
        res = self._json("POST", f"/api/v1/sessions/{sid}/metrics", content=body,
                         headers={"Content-Type": "application/json"})
        return int(res["accepted"])

    def metric_keys(self, sid: int | str) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/v1/sessions/{sid}/metrics")

    def metric_history(self, sid: int | str, key: str, **params: Any) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/sessions/{sid}/metrics/{key}",
                          params={k: v for k, v in params.items() if v is not None})

    # -- checkpoints
    def list_checkpoints(self, sid: int | str) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/v1/sessions/{sid}/checkpoints")

    def upload_checkpoint(self, sid: int | str, name: str, path: Path, kind: str) -> dict[str, Any]:
        record = self._json("PUT", f"/api/v1/sessions/{sid}/checkpoints/{name}", params={"kind": kind},
                            content=iter_file(path), timeout=None)
        if record["sha256"] != sha256_file(path):
            raise IntegrityError(f"checkpoint {name!r} arrived corrupted on the server; save it again")
        return record

    def download_checkpoint(self, sid: int | str, name: str, dest: Path) -> tuple[str, Path]:
        headers = self._download(f"/api/v1/sessions/{sid}/checkpoints/{name}", dest,
                                 what=f"checkpoint {name!r} of session {sid}")
        return headers.get("x-haneul-kind", "file"), dest

    def _download(self, path: str, dest: Path, *, what: str) -> httpx.Headers:
        """Stream ``path`` to ``dest`` atomically and check it against the sha256 the server sent."""
        try:
            with self._http.stream("GET", path, timeout=None) as res:
                if res.status_code >= 400:
                    res.read()
                    raise _error_from(res)
                with atomic_open(dest, "wb") as fh:
                    for chunk in res.iter_bytes(1 << 20):
                        fh.write(chunk)
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"cannot reach the haneul server at {self.url}: {exc}") from None
        expected = res.headers.get("x-haneul-sha256", "")
        if expected and sha256_file(dest) != expected:
            dest.unlink(missing_ok=True)
            raise IntegrityError(f"{what} failed its sha256 check after download")
        return res.headers

    # -- artifacts
    def list_artifacts(self, sid: int | str) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/v1/sessions/{sid}/artifacts")

    def upload_artifact(self, sid: int | str, path: str, src: Path) -> dict[str, Any]:
        record = self._json("PUT", f"/api/v1/sessions/{sid}/artifacts/{quote(path)}",
                            content=iter_file(src), timeout=None)
        if record["sha256"] != sha256_file(src):
            raise IntegrityError(f"artifact {path!r} arrived corrupted on the server; log it again")
        return record

    def artifact_preview(self, sid: int | str, path: str, lines: int = 50) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/sessions/{sid}/artifacts/{quote(path)}",
                          params={"preview": 1, "lines": lines})

    def download_artifact(self, sid: int | str, path: str, dest: Path) -> Path:
        """Write artifact ``path`` to ``dest`` atomically; its sha256 is checked after the download."""
        self._download(f"/api/v1/sessions/{sid}/artifacts/{quote(path)}", dest,
                       what=f"artifact {path!r} of session {sid}")
        return dest

    # -- logs
    def tail_logs(self, sid: int | str, lines: int = 100) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/sessions/{sid}/logs", params={"tail": lines})

    def stream_logs(self, sid: int | str, tail: int = 100) -> Iterator[list[str]]:
        """Yield batches of log lines as they are written, until the session ends."""
        yield from (data for event, data in self._sse(f"/api/v1/sessions/{sid}/stream/logs", {"tail": tail})
                    if event == "lines")

    def _sse(self, path: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        try:
            with self._http.stream("GET", path, params=params, timeout=httpx.Timeout(10.0, read=None)) as res:
                if res.status_code >= 400:
                    res.read()
                    raise _error_from(res)
                event = "message"
                for line in res.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        yield event, json.loads(line[5:])
                        if event == "end":
                            return
                        event = "message"
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"lost the connection to the haneul server at {self.url}: {exc}") from None


# what a status means when the answer is not haneul's JSON (a proxy's page): whether a caller retries,
# splits a batch or gives up depends on the class
_BY_STATUS: dict[int, type[HaneulError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PayloadTooLarge, 429: TooManyRequests,
    502: ServerUnavailable, 503: ServerUnavailable, 504: ServerUnavailable,
}


def _error_from(res: httpx.Response) -> HaneulError:
    try:
        body = res.json()
        return HaneulError.from_dict(body["error"])
    except (ValueError, KeyError, TypeError):
        cls = _BY_STATUS.get(res.status_code, HaneulError)
        return cls(f"server answered {res.status_code}: {' '.join(res.text[:200].split())}")
