"""haneul.evals: zero- and few-shot evaluation of language models on Korean tasks.

Tasks (NSMC, KorNLI, KorSTS, KLUE, KorQuAD, KoBEST, KMMLU / HAE-RAE and YAML specs for users' own
data) are scored by option log-likelihood or generation against any backend: a Hugging Face model
folder, the embedded SmolLM2, or an OpenAI-compatible endpoint; finished runs can be published to
the platform server's models × tasks results page. This is the in-context evaluation of
HyperCLOVA (Kim et al., 2021, section 4) and the harness of the corpus study (Shin et al., 2022).
"""

from __future__ import annotations

from haneul.evals.backends import (
    Backend,
    EndpointUnavailable,
    HFBackend,
    OpenAIBackend,
    load_backend,
)
from haneul.evals.metrics import (
    bootstrap_stderr,
    char_f1,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    korquad_scores,
    normalize_answer,
)
from haneul.evals.prompts import build_context, sample_demos
from haneul.evals.publish import publish, read_results
from haneul.evals.runner import EvalConfig, TaskRun, markdown_report, parse_task_arg, run_eval, validate_runs
from haneul.evals.store import ResultStore, leaderboard, validate_results
from haneul.evals.tasks import Example, Task, get_task, list_tasks, load_task_spec

__all__ = [
    "Backend",
    "EndpointUnavailable",
    "EvalConfig",
    "Example",
    "HFBackend",
    "OpenAIBackend",
    "ResultStore",
    "Task",
    "TaskRun",
    "bootstrap_stderr",
    "build_context",
    "char_f1",
    "corpus_bleu",
    "corpus_chrf",
    "exact_match",
    "get_task",
    "korquad_scores",
    "leaderboard",
    "list_tasks",
    "load_backend",
    "load_task_spec",
    "markdown_report",
    "normalize_answer",
    "parse_task_arg",
    "publish",
    "read_results",
    "run_eval",
    "sample_demos",
    "validate_results",
    "validate_runs",
]
