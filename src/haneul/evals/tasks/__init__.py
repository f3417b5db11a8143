"""Evaluation tasks, registered by name: Korean benchmarks with loaders that take a path.

Each module in this package defines one task family and registers its :class:`Task` objects;
:func:`get_task` resolves a name (the error lists the valid names) and :func:`load_task_spec` builds a
task from a user's YAML spec, so new tasks need no code.
"""

from __future__ import annotations

from haneul.errors import InvalidInput
from haneul.evals.tasks._base import Example, Task, TaskKind

_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in _REGISTRY:
        raise ValueError(f"task {task.name!r} is registered twice")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    if name not in _REGISTRY:
        raise InvalidInput(f"unknown task {name!r}; choose one of {', '.join(sorted(_REGISTRY))} or pass a YAML spec")
    return _REGISTRY[name]


def list_tasks() -> list[Task]:
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


# Importing the modules registers their tasks.
from haneul.evals.tasks import (  # noqa: E402
    klue_nli,
    klue_sts,
    klue_ynat,
    kobest_boolq,
    kobest_copa,
    kobest_hellaswag,
    kobest_sentineg,
    kobest_wic,
    kornli,
    korquad,
    korsts,
    multiple_choice,
    nsmc,
)
from haneul.evals.tasks.yaml_spec import load_task_spec  # noqa: E402

del (
    kobest_boolq, kobest_copa, kobest_hellaswag, kobest_sentineg, kobest_wic, klue_nli, klue_sts,
    klue_ynat, kornli, korquad, korsts, multiple_choice, nsmc,
)

__all__ = ["Example", "Task", "TaskKind", "get_task", "list_tasks", "load_task_spec", "register"]
