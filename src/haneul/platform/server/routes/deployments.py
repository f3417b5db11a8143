"""Deployments: API routes and pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
