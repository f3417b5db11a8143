"""Dependency aliases shared by the route modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from haneul.platform.service import Platform


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


PlatformDep = Annotated[Platform, Depends(get_platform)]
TokenDep = Annotated[str | None, Depends(bearer_token)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
