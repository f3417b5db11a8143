"""haneul.text: language helpers that every package shares and that depend on nothing else in haneul.

:mod:`haneul.text.korean` chooses particles (josa), reads numbers aloud and normalises text; the
dialogue templates, the data-to-text task and the synthetic call speech all use it, so a fix there
reaches each of them.
"""

from __future__ import annotations
