"""Small formatting helpers shared by the CLI and the web pages (no heavy imports)."""

from __future__ import annotations

import time


def age(ts: float | None) -> str:
    """Seconds since ``ts`` as a short age: ``42s``, ``5m``, ``3h``, ``2d``; ``-`` when unknown."""
    if not ts:
        return "-"
    s = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
