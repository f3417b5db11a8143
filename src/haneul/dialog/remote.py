"""Dialogue memory kept by a haneul server: :class:`HttpMemoryStore`, defined in
:mod:`haneul.dialog.stores.http` and re-exported here under its earlier import path."""

from __future__ import annotations

from haneul.dialog.stores.http import PREFIX, HttpMemoryStore, operator_request

__all__ = ["PREFIX", "HttpMemoryStore", "operator_request"]
