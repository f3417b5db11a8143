"""Helpers for the platform tests: a live server subprocess, free ports, polling (shared with the
other packages' tests through :mod:`haneul.platform.testing`)."""

from __future__ import annotations

from haneul.platform.testing import BIN, LiveServer, free_port, start_server, wait_for

__all__ = ["BIN", "S3_BUCKET", "LiveServer", "free_port", "start_server", "wait_for"]

#: the bucket the ``s3`` fixture's server (conftest.py) holds
S3_BUCKET = "haneul-test"
