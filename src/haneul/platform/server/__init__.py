"""The haneul server: REST API under /api/v1, web pages, live streams (FastAPI)."""

from haneul.platform.server.app import create_app

__all__ = ["create_app"]
