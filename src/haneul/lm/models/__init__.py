"""Embedded default models (loaded from installed packages, never from a hub)."""
