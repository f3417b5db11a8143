"""The ``haneul`` entry point: the platform commands at top level, one sub-app per package.

Command modules import only typer/rich at import time, so ``haneul --help`` stays fast and never
imports torch. Any :class:`~haneul.errors.HaneulError` is printed as one line and exits non-zero.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from haneul.errors import HaneulError

app = typer.Typer(
    name="haneul",
    help="haneul (하늘): a Korean-first ML platform. Run training sessions, watch them live, keep checkpoints.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Modules that add top-level commands to ``app`` (each defines ``register(app)``).
TOP_LEVEL = ["haneul.cli.server", "haneul.cli.sessions"]

# Sub-command groups: ``haneul <name> ...`` from module ``haneul.cli.<module>`` exposing ``app``.
GROUPS = {
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


def _build() -> typer.Typer:
    for module in TOP_LEVEL:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(app)
    for name, module in GROUPS.items():
        if importlib.util.find_spec(module) is not None:
            sub = importlib.import_module(module).app
            app.add_typer(sub, name=name)
    return app


_build()


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="haneul")
    except HaneulError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
