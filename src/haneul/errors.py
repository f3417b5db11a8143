"""One exception root for haneul.

Every user-facing failure is a :class:`HaneulError` subclass carrying a stable ``code`` and the HTTP
status the server answers with. The server turns one into a JSON body ``{"error": {"code", "message"}}``
and the client rebuilds the same class from that body, so library code never raises HTTP exceptions
and the CLI can print any of them as one line.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HaneulError(Exception):
    """Base class: ``code`` names the failure, ``http_status`` is what the server answers."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    @staticmethod
    def from_dict(body: dict[str, Any]) -> HaneulError:
        cls = _BY_CODE.get(str(body.get("code")), HaneulError)
        return cls(str(body.get("message", "unknown error")), **(body.get("details") or {}))


class InvalidInput(HaneulError):
    """The caller passed something malformed (bad payload, bad option value)."""

    code = "invalid_input"
    http_status = 400


class NotFound(HaneulError):
    code = "not_found"
    http_status = 404


class Conflict(HaneulError):
    """The request clashes with the current state (stopping a finished session, a busy home)."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(HaneulError):
    code = "payload_too_large"
    http_status = 413


class Unauthorized(HaneulError):
    code = "unauthorized"
    http_status = 401


class Forbidden(HaneulError):
    """The caller is known and may see the resource, but its role may not do this (a viewer writing)."""

    code = "forbidden"
    http_status = 403


class TooManyRequests(HaneulError):
    """A quota is spent (e.g. a team's daily submissions); the message says when it refills."""

    code = "too_many_requests"
    http_status = 429


class StorageError(HaneulError):
    """An artifact could not be written or read back intact (full disk, checksum mismatch)."""

    code = "storage_error"
    http_status = 507


class IntegrityError(StorageError):
    code = "integrity_error"
    http_status = 500


class ServerUnavailable(HaneulError):
    """The haneul server cannot be reached."""

    code = "server_unavailable"
    http_status = 503


class DatabaseUnavailable(HaneulError):
    """The server's database cannot be reached (wrong URL, database server down); retry later."""

    code = "database_unavailable"
    http_status = 503


class PluginError(HaneulError):
    """A server plugin could not be loaded (its import, its factory or what it returned failed)."""

    code = "plugin_error"
    http_status = 500


def _subclasses(cls: type[HaneulError]) -> list[type[HaneulError]]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


_BY_CODE: dict[str, type[HaneulError]] = {}


def register(cls: type[HaneulError]) -> type[HaneulError]:
    """Make a subclass defined elsewhere (e.g. in an ML package) round-trip through the client."""
    _BY_CODE[cls.code] = cls
    return cls


for _cls in [HaneulError, *_subclasses(HaneulError)]:
    register(_cls)

__all__ = [
    "HaneulError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "Unauthorized",
    "StorageError",
    "IntegrityError",
    "ServerUnavailable",
    "DatabaseUnavailable",
    "PluginError",
    "register",
]
