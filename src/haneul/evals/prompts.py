"""Few-shot prompt building: templates, deterministic demonstration sampling, content-free inputs.

The prompt of an item is ``k`` demonstrations (template + answer) followed by the item's own
template, joined by the task's separator, as in GPT-3 / HyperCLOVA in-context evaluation. The
demonstrations for an item depend only on (task, seed, item index), never on run order, so a resumed
or re-ordered run builds the same prompts. Content-free inputs (every field replaced by ``N/A``) give
the label prior used by contextual calibration (Zhao et al., 2021).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import replace

from haneul.errors import InvalidInput
from haneul.evals.tasks._base import Example, Task

CONTENT_FREE = "N/A"


def render(task: Task, template: str, example: Example) -> str:
    try:
        return template.format(**example.fields)
    except KeyError as exc:
        raise InvalidInput(
            f"template of task {task.name!r} uses field {exc.args[0]!r} that the data lacks "
            f"(fields: {', '.join(sorted(example.fields))}); fix the template"
        ) from None
    except (IndexError, ValueError) as exc:
        raise InvalidInput(f"template of task {task.name!r} is not a valid format string ({exc}); fix the template") from None


def demonstration(task: Task, template: str, example: Example) -> str:
    return render(task, template, example) + task.answer_prefix + task.gold_text(example)


def build_context(task: Task, example: Example, demos: Sequence[Example], template: str | None = None) -> str:
    """The prompt an option is scored after (or generation continues from)."""
    tpl = template or task.template
    parts = [demonstration(task, tpl, d) for d in demos]
    parts.append(render(task, tpl, example))
    return task.separator.join(parts)


def continuations(task: Task, example: Example) -> list[str]:
    return [task.answer_prefix + option for option in task.options(example)]


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's ``hash`` of a str is salted per run)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sample_demos(
    pool: Sequence[Example], k: int, seed: int, task_name: str, index: int, exclude_self: bool
) -> list[Example]:
    """``k`` demonstrations for item ``index``, drawn without replacement from ``pool``.

    When the pool is the evaluation set itself, the item is excluded from its own demonstrations.
    """
    if k <= 0 or not pool:
        return []
    rng = random.Random(stable_seed(task_name, seed, index))
    n_avail = len(pool) - (1 if exclude_self and index < len(pool) else 0)
    if k > n_avail:
        raise InvalidInput(
            f"task {task_name!r}: {k} shots need at least {k} demonstration examples but the pool has {n_avail}; "
            "lower --shots or pass a larger few-shot file"
        )
    picks = rng.sample(range(len(pool)), min(k + 1, len(pool)))
    if exclude_self:
        picks = [p for p in picks if p != index]
    return [pool[p] for p in picks[:k]]


def content_free(task: Task, example: Example, template: str | None = None) -> Example:
    """The item with every field the template reads replaced by ``N/A``."""
    return replace(example, fields={key: CONTENT_FREE for key in example.fields})
