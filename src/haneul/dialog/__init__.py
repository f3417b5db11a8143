"""haneul.dialog: long-term dialogue memory with PASS / APPEND / REPLACE / DELETE updates (Keep Me Updated).

A person's memory is a versioned list of short sentences (:class:`Memory`). After each session a
summariser extracts the new facts, a memory operator labels every (memory, summary) sentence pair and
the pair labels are resolved into the next version; a responder brings remembered facts back into
the conversation. Memory is kept in the platform database through the haneul server when one is
configured (``HANEUL_SERVER``), in a local SQLite file otherwise. torch is imported only by the classifier (:mod:`haneul.dialog.model`).
"""

from __future__ import annotations

from typing import Any

from haneul.dialog.data import (
    DialogSession,
    Transition,
    Turn,
    derive_pair_ops,
    derive_pairs,
    load_carecall,
    load_kornli,
    load_pairs,
    parse_episodes,
    transitions,
    unexplained,
    write_pairs,
)
from haneul.dialog.evaluate import EvalReport, UpdateErrors, evaluate, explain_errors
from haneul.dialog.lm import ChatClient, LMUnavailable
from haneul.dialog.memory import Memory, MemoryStore, MemoryVersion, open_store
from haneul.dialog.operators import (
    OPS,
    AppendOnly,
    ClassifierOperator,
    LatestOnly,
    LexicalOperator,
    LMOperator,
    Op,
    Operator,
    PairOp,
    UpdateResult,
    get_operator,
    resolve,
)
from haneul.dialog.remote import HttpMemoryStore
from haneul.dialog.responder import Responder, Response, bm25_rank
from haneul.dialog.summarizer import (
    ExtractiveSummarizer,
    FineTunedSummarizer,
    LMSummarizer,
    Summarizer,
    SummaryResult,
    finetune_prompt,
    get_summarizer,
    summary_examples,
)
from haneul.dialog.text import MATCH_THRESHOLD, MAX_SENTENCE_CHARS, DialogWarning, similarity

_LAZY = {
    "PairClassifier": "haneul.dialog.model",
    "PairClassifierConfig": "haneul.dialog.model",
    "load_classifier": "haneul.dialog.model",
    "save_classifier": "haneul.dialog.model",
    "TrainConfig": "haneul.dialog.train",
    "train_operator": "haneul.dialog.train",
    "calibrate": "haneul.dialog.train",
    "DecisionRule": "haneul.dialog.model",
    "SummarizerTrainConfig": "haneul.dialog.finetune",
    "train_summarizer": "haneul.dialog.finetune",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'haneul.dialog' has no attribute {name!r}")


__all__ = [
    "MATCH_THRESHOLD",
    "MAX_SENTENCE_CHARS",
    "OPS",
    "AppendOnly",
    "ChatClient",
    "ClassifierOperator",
    "DecisionRule",
    "DialogSession",
    "DialogWarning",
    "EvalReport",
    "HttpMemoryStore",
    "ExtractiveSummarizer",
    "FineTunedSummarizer",
    "LMOperator",
    "LMSummarizer",
    "LMUnavailable",
    "LatestOnly",
    "LexicalOperator",
    "Memory",
    "MemoryStore",
    "MemoryVersion",
    "Op",
    "Operator",
    "PairClassifier",
    "PairClassifierConfig",
    "PairOp",
    "Responder",
    "Response",
    "Summarizer",
    "SummarizerTrainConfig",
    "SummaryResult",
    "TrainConfig",
    "Transition",
    "Turn",
    "UpdateErrors",
    "UpdateResult",
    "bm25_rank",
    "calibrate",
    "derive_pair_ops",
    "derive_pairs",
    "evaluate",
    "explain_errors",
    "finetune_prompt",
    "get_operator",
    "get_summarizer",
    "load_carecall",
    "load_classifier",
    "load_kornli",
    "load_pairs",
    "open_store",
    "parse_episodes",
    "resolve",
    "save_classifier",
    "similarity",
    "summary_examples",
    "train_operator",
    "train_summarizer",
    "transitions",
    "unexplained",
    "write_pairs",
]
