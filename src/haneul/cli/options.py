"""The options every ``haneul`` command group shares, spelled and explained once.

A concept that recurs across groups (``--json``, ``--out``, ``--seed``, ``--threads``, ``--device``,
the model name sent to an OpenAI-compatible endpoint) is declared here as an ``Annotated`` alias, so
``haneul lm pretrain --seed`` and ``haneul rec train --seed`` read and behave the same. Older
spellings stay accepted as hidden aliases: :data:`HIDDEN_NAMES` lists them, and :class:`Typer` (the
app class every group uses) leaves them out of ``--help`` while the parser still takes them.

Only typer and click are imported here, so ``haneul --help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

__all__ = [
    "DEVICE_HELP",
    "HIDDEN_NAMES",
    "JSON_HELP",
    "SEED_HELP",
    "THREADS_HELP",
    "Command",
    "DeviceOpt",
    "EndpointModelOpt",
    "JsonOpt",
    "OptionalSeedOpt",
    "SeedOpt",
    "ThreadsOpt",
    "Typer",
    "auto_device",
    "out_option",
]

#: Spellings that earlier releases used; still parsed, no longer shown in ``--help``.
HIDDEN_NAMES = frozenset({"--output", "--lm-model", "--tasks"})

JSON_HELP = "Print the result as one JSON document (for scripts) instead of a table."
SEED_HELP = "Random seed; the same seed gives the same result."
THREADS_HELP = "CPU threads for torch (unset: torch's own choice)."
DEVICE_HELP = "Torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, ..."
ENDPOINT_MODEL_HELP = "Model name sent to the OpenAI-compatible endpoint."

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
SeedOpt = Annotated[int, typer.Option("--seed", help=SEED_HELP)]
OptionalSeedOpt = Annotated[int | None, typer.Option("--seed", help=SEED_HELP)]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help=THREADS_HELP)]
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
EndpointModelOpt = Annotated[
    str | None, typer.Option("--endpoint-model", "--lm-model", help=ENDPOINT_MODEL_HELP)
]


def out_option(help: str, default: Any = ...) -> Any:
    """``--out`` / ``-o`` (formerly also ``--output``): where a command writes; ``help`` says what.

    Use it inside ``Annotated[Path, out_option(...)]``, or as the default of a plain parameter
    (``out: Path = out_option(..., default)``; without ``default`` the option is required).
    """
    return typer.Option(default, "--out", "-o", "--output", help=help)


def auto_device(device: str) -> str | None:
    """``None`` for ``auto``: the libraries that pick cuda-or-cpu themselves take ``None`` for it."""
    return None if device.strip().lower() == "auto" else device


@contextmanager
def _without_hidden_names(params: list[Any]) -> Iterator[None]:
    saved = [(p, p.opts, p.secondary_opts) for p in params]
    try:
        for p in params:
            p.opts = [o for o in p.opts if o not in HIDDEN_NAMES]
            p.secondary_opts = [o for o in p.secondary_opts if o not in HIDDEN_NAMES]
        yield
    finally:
        for p, opts, secondary in saved:
            p.opts, p.secondary_opts = opts, secondary


class Command(TyperCommand):
    """A typer command whose ``--help`` leaves out the hidden old spellings of its options."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _without_hidden_names(self.params):
            super().format_help(ctx, formatter)


class Typer(typer.Typer):
    """``typer.Typer`` whose commands are :class:`Command`: one place decides how options are shown."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable:
        return super().command(name, cls=cls or Command, **kwargs)
