"""Helpers for the platform tests: a live server subprocess, free ports, polling (shared with the
other packages' tests through :mod:`haneul.platform.testing`)."""

from __future__ import annotations

from haneul.platform.testing import BIN, LiveServer, free_port, start_server, wait_for

__all__ = ["BIN", "LiveServer", "free_port", "start_server", "wait_for"]
