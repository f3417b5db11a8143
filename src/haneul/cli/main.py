"""The ``haneul`` entry point: the platform commands at top level, one sub-app per package.

Command modules import only typer/rich at import time, so ``haneul --help`` stays fast and never
imports torch. Every group prints through :mod:`haneul.cli.output` (a table for people, one JSON
document with ``--json``) and takes the shared options of :mod:`haneul.cli.options`. Any
:class:`~haneul.errors.HaneulError` is printed as one line and exits non-zero.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from haneul.cli.options import Typer
from haneul.errors import HaneulError

HELP = "haneul (하늘): a Korean-first ML platform. Run training sessions, watch them live, keep checkpoints."

# Modules that add top-level commands (each defines ``register(app)``).
TOP_LEVEL = ["haneul.cli.server", "haneul.cli.sessions", "haneul.cli.accounts", "haneul.cli.deploy",
             "haneul.cli.submit", "haneul.cli.backup"]

# Sub-command groups: ``haneul <name> ...`` from a module exposing ``app``.
GROUPS = {
    "dataset": "haneul.cli.dataset",
    "model": "haneul.cli.model",
    "lm": "haneul.cli.lm",
    "eval": "haneul.cli.evals",
    "quant": "haneul.cli.quant",
    "dialog": "haneul.cli.dialog",
    "speech": "haneul.cli.speech",
    "rec": "haneul.cli.rec",
    "tune": "haneul.cli.tune",
    "studio": "haneul.cli.studio",
    "carecall": "haneul.cli.carecall",
}


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI; with ``only`` a group name, just that group is imported (faster start-up)."""
    app = Typer(
        name="haneul",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    if only is None or only not in GROUPS:
        for module in TOP_LEVEL:
            importlib.import_module(module).register(app)
    for name, module in GROUPS.items():
        if only in GROUPS and name != only:
            continue
        if only is not None and only not in GROUPS:
            break  # a top-level command: no group needed
        if importlib.util.find_spec(module) is not None:
            app.add_typer(importlib.import_module(module).app, name=name)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the complete CLI, for documentation and tests
        return build_app()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    top = first is not None and first not in GROUPS and "-h" not in args[:1] and "--help" not in args[:1]
    try:
        build_app(first if (first in GROUPS or top) else None)(args=args, prog_name="haneul")
    except HaneulError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def run(argv: list[str]) -> int:
    """Run ``haneul ARGV`` in this process and return its exit status instead of exiting."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    main()
