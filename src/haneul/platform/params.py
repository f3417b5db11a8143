"""Hyper-parameters as the platform records them: flattened to dotted keys, numbers kept as numbers.

Shared by the SDK (``haneul.config``, which must stay light to import) and the server (which also
reads the ``--name value`` pairs of a session's command line at launch).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from haneul.errors import InvalidInput

MAX_KEY_LEN = 256  # as for metric keys
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INT = re.compile(r"[-+]?\d+")
_INT64 = 1 << 63


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened with dots (``{"opt": {"lr": 1e-3}}`` -> ``{"opt.lr": 1e-3}``).

    Numbers, strings, bools and None stay as they are; lists and other values become their JSON
    text, so every value is one indexed cell a search can compare."""
    out: dict[str, Any] = {}
    for raw_key, value in params.items():
        key = f"{prefix}{raw_key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=key + "."))
            continue
        if not key or len(key) > MAX_KEY_LEN:
            raise InvalidInput(f"param key {key[:40]!r} must be 1-{MAX_KEY_LEN} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"param {key!r} is {value}; params must be finite numbers, strings or bools")
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=str, ensure_ascii=False)
    return out


def parse_value(text: str) -> int | float | str:
    """A command-line value as a param: ``3`` -> 3, ``3e-4`` -> 0.0003, anything else stays text."""
    if _NUMBER.fullmatch(text):
        number = float(text)
        if _INT.fullmatch(text) and -_INT64 <= int(text) < _INT64:
            return int(text)
        if math.isfinite(number):
            return number
    return text


def command_params(command: list[str]) -> dict[str, Any]:
    """The ``--name value`` and ``--name=value`` pairs of a command line, as params.

    Dashes in names become underscores, which is the name argparse gives the option, so a later
    ``haneul.config(args)`` of the same option lands on the same key (and wins). A bare ``--flag``
    is no pair and is left out: whether it takes a value cannot be told from outside the program.
    """
    out: dict[str, Any] = {}
    args = command[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or len(arg) == 2:
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i >= len(args) or (args[i].startswith("-") and not _NUMBER.fullmatch(args[i])):
                continue
            value = args[i]
            i += 1
        key = name.replace("-", "_")
        if key and len(key) <= MAX_KEY_LEN:
            out[key] = parse_value(value)
    return out


__all__ = ["command_params", "flatten_params", "parse_value"]
