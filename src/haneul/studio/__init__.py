"""HyperCLOVA Studio (HyperCLOVA §5): prompt presets, a playground that streams completions, and a
preset served as an OpenAI-compatible endpoint, for people who build with prompts rather than code.

The library parts (:mod:`haneul.studio.prompt`, :mod:`haneul.studio.service`,
:mod:`haneul.studio.models`) import no torch and no server; :mod:`haneul.studio.server` is the server
plugin that mounts them.
"""

from __future__ import annotations

from haneul.studio.prompt import Example, Params, PromptSpec, check_budget, check_input

__all__ = ["Example", "Params", "PromptSpec", "check_budget", "check_input"]
