"""Dialogue-memory data: CareCall-memory-format files, labelled operation pairs and KorNLI.

A CareCall-memory file is a JSON list of episodes; each episode is a list of sessions
``{"guid": "interactive-<n>-S<k>", "dialogue": [{"role": "system"|"user", "text": ...}],
"memory": [...], "summary": [...]}`` where ``memory`` is what was remembered *before* session k and
``summary`` the new information learned *in* session k (Keep Me Updated, §4.1). Operation labels
are not in the files: :func:`derive_pairs` recovers them by aligning memory k, summary k and
memory k+1 (see its docstring). Pair files are JSONL with ``memory, summary, op`` per line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haneul.dialog.operators import Op, PairOp
from haneul.dialog.text import MATCH_THRESHOLD, clean_sentences, greedy_match, jaccard
from haneul.errors import InvalidInput, NotFound

ROLES = ("system", "user")


@dataclass
class Turn:
    role: str
    text: str


@dataclass
class DialogSession:
    guid: str
    dialogue: list[Turn]
    memory: list[str]
    summary: list[str]
    episode: int = 0
    index: int = 0  # 1-based session number within its episode
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"guid": self.guid, "dialogue": [{"role": t.role, "text": t.text} for t in self.dialogue],
                "memory": self.memory, "summary": self.summary}


Episode = list[DialogSession]


def _open_text(path: Path) -> str:
    if not path.exists():
        raise NotFound(f"no such file {path}; pass the path of a CareCall-memory-format JSON file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read()


def _sentences(value: Any, where: str) -> tuple[list[str], list[str]]:
    if not isinstance(value, list):
        raise InvalidInput(f"{where} must be a list of sentences, got {type(value).__name__}; fix the file")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidInput(f"{where}[{i}] must be a string, got {type(item).__name__}; fix the file")
        if not item.strip():
            raise InvalidInput(f"{where}[{i}] is an empty sentence; remove it from the file")
    return clean_sentences(value, where=where)


def parse_episodes(raw: Any, source: str = "data") -> list[Episode]:
    """Validate parsed JSON; every error names the episode, session and field."""
    if not isinstance(raw, list):
        raise InvalidInput(f"{source}: the top level must be a JSON list of episodes, got {type(raw).__name__}")
    episodes: list[Episode] = []
    for e, episode in enumerate(raw):
        if not isinstance(episode, list) or not episode:
            raise InvalidInput(f"{source}: episode {e} must be a non-empty list of sessions; fix the file")
        sessions: Episode = []
        for k, sess in enumerate(episode):
            where = f"{source}: episode {e} session {k}"
            if not isinstance(sess, dict):
                raise InvalidInput(f"{where} must be an object with guid, dialogue, memory, summary")
            guid = sess.get("guid", f"episode-{e}-S{k + 1}")
            if not isinstance(guid, str):
                raise InvalidInput(f"{where}: field 'guid' must be a string like 'interactive-1-S1'")
            where = f"{source}: episode {e} session {k} ({guid})"
            for key in ("dialogue", "memory", "summary"):
                if key not in sess:
                    raise InvalidInput(f"{where}: missing field {key!r}; every session needs dialogue, memory and summary")
            dialogue = sess["dialogue"]
            if not isinstance(dialogue, list):
                raise InvalidInput(f"{where}: field 'dialogue' must be a list of {{role, text}} turns")
            turns = []
            for t, turn in enumerate(dialogue):
                if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("text"), str):
                    raise InvalidInput(
                        f"{where}: field 'dialogue[{t}]' must be {{\"role\": \"system\"|\"user\", \"text\": str}}, got {turn!r:.60}"
                    )
                turns.append(Turn(turn["role"], turn["text"]))
            memory, w1 = _sentences(sess["memory"], f"{where}: field 'memory'")
            summary, w2 = _sentences(sess["summary"], f"{where}: field 'summary'")
            sessions.append(DialogSession(guid, turns, memory, summary, episode=e, index=k + 1, warnings=w1 + w2))
        episodes.append(sessions)
    return episodes


def load_carecall(path: str | Path) -> list[Episode]:
    """Read a CareCall-memory-format JSON (or .json.gz) file."""
    path = Path(path)
    try:
        raw = json.loads(_open_text(path))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix the file") from None
    return parse_episodes(raw, source=path.name)


def _best(row: Sequence[float]) -> int:
    """Index of the largest value; ties go to the earliest (determinism)."""
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def derive_pair_ops(
    memory: Sequence[str], summary: Sequence[str], next_memory: Sequence[str], threshold: float = MATCH_THRESHOLD
) -> list[PairOp]:
    """Label the (memory k, summary k) pairs that memory k+1 explains.

    A sentence *survives* when it is matched to a sentence of memory k+1 by a one-to-one greedy
    matching of memory k + summary k against memory k+1 (character-bigram Jaccard ≥ ``threshold``,
    best pairs first), so a summary that only restates a kept memory sentence does not survive.
    Two sentences are *related* when they share a content bigram (the final, honorific-ending
    bigram left out); how related is the Jaccard of their content bigrams plus a tenth of the
    full-bigram Jaccard (to break ties). Every pair starts as APPEND.
    Each dropped summary sentence is explained by its most related memory sentence — PASS when that
    sentence survives, DELETE when it does not. Each removed memory sentence is explained by its most
    related summary sentence among those that survive (REPLACE) or were themselves explained by a
    removed memory sentence (DELETE). A sentence with no related partner is *unexplained* — memory
    k+1 lost it (or the summary's restatement) for a reason the sentences do not show, such as
    "죽" → "밥" — and every pair that involves it is left out rather than given a guessed label, so no
    REPLACE or PASS is ever derived between unrelated sentences. :func:`unexplained` names them.
    When no sentence is unexplained, :func:`haneul.dialog.operators.resolve` applied to the labels
    reproduces memory k+1 up to sentences that appear from nowhere.
    """
    labels, _, _ = _derive(memory, summary, next_memory, threshold)
    return labels


def unexplained(
    memory: Sequence[str], summary: Sequence[str], next_memory: Sequence[str], threshold: float = MATCH_THRESHOLD
) -> tuple[list[int], list[int]]:
    """Indices of the memory and summary sentences :func:`derive_pair_ops` could not explain."""
    _, m_lost, s_lost = _derive(memory, summary, next_memory, threshold)
    return m_lost, s_lost


def _derive(
    memory: Sequence[str], summary: Sequence[str], next_memory: Sequence[str], threshold: float
) -> tuple[list[PairOp], list[int], list[int]]:
    if not memory or not summary:
        return [], [], []
    from haneul.dialog.operators import SentenceInfo

    mi = [SentenceInfo.of(x) for x in memory]
    si = [SentenceInfo.of(x) for x in summary]
    matched = {i for i, _, _ in greedy_match(list(memory) + list(summary), next_memory, threshold)}
    m_kept = [i in matched for i in range(len(memory))]
    s_kept = [len(memory) + j in matched for j in range(len(summary))]
    # 0 for pairs that share no content bigram: they are never each other's explanation
    sim = [[jaccard(a.topic, b.topic) + 0.1 * jaccard(a.grams, b.grams) if a.topic & b.topic else 0.0 for b in si]
           for a in mi]
    labels = {(i, j): Op.APPEND for i in range(len(memory)) for j in range(len(summary))}
    s_best = [_best([sim[r][j] for r in range(len(memory))]) for j in range(len(summary))]
    s_lost = [j for j in range(len(summary)) if not s_kept[j] and sim[s_best[j]][j] == 0]
    for j in range(len(summary)):
        if not s_kept[j] and j not in s_lost:
            i = s_best[j]
            labels[(i, j)] = Op.PASS if m_kept[i] else Op.DELETE
    m_lost = []
    for i in range(len(memory)):
        if m_kept[i]:
            continue
        cands = [j for j in range(len(summary))
                 if (s_kept[j] or (j not in s_lost and not m_kept[s_best[j]])) and sim[i][j] > 0]
        if not cands:
            m_lost.append(i)
            continue
        j = cands[_best([sim[i][c] for c in cands])]
        labels[(i, j)] = Op.REPLACE if s_kept[j] else Op.DELETE
    ops = [PairOp(i, j, memory[i], summary[j], labels[(i, j)])
           for i in range(len(memory)) for j in range(len(summary)) if i not in m_lost and j not in s_lost]
    return ops, m_lost, s_lost


@dataclass
class Transition:
    """One memory update to learn or evaluate: memory k + summary k → memory k+1."""

    episode: int
    index: int  # session number k
    guid: str
    memory: list[str]
    summary: list[str]
    next_memory: list[str]
    labels: list[PairOp]
    dialogue: list[Turn] = field(default_factory=list)


def transitions(episodes: Iterable[Episode], threshold: float = MATCH_THRESHOLD) -> list[Transition]:
    out = []
    for episode in episodes:
        for a, b in zip(episode, episode[1:], strict=False):
            out.append(Transition(a.episode, a.index, a.guid, a.memory, a.summary, b.memory,
                                  derive_pair_ops(a.memory, a.summary, b.memory, threshold), a.dialogue))
    return out


def derive_pairs(episodes: Iterable[Episode], threshold: float = MATCH_THRESHOLD) -> list[dict[str, Any]]:
    """Labelled pair rows ``{memory, summary, op, guid}`` for every transition of every episode."""
    rows = []
    for tr in transitions(episodes, threshold):
        rows += [{"memory": p.memory, "summary": p.summary, "op": p.op.value, "guid": tr.guid} for p in tr.labels]
    return rows


def write_pairs(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    from haneul.io import atomic_write_text

    lines = [json.dumps({k: r[k] for k in r}, ensure_ascii=False) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def load_pairs(path: str | Path) -> list[tuple[str, str, Op]]:
    """Read a labelled-pairs JSONL file (``{"memory", "summary", "op"}`` per line)."""
    path = Path(path)
    out = []
    for n, line in enumerate(_open_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInput(f"{path.name} line {n} is not JSON; each line must be {{\"memory\", \"summary\", \"op\"}}") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("memory", "summary", "op")):
            raise InvalidInput(f"{path.name} line {n} needs string fields memory, summary and op")
        (m, s), _ = clean_sentences([row["memory"], row["summary"]], where=f"{path.name} line {n}")
        out.append((m, s, Op.parse(row["op"])))
    if not out:
        raise InvalidInput(f"{path.name} has no labelled pairs; add lines of {{\"memory\", \"summary\", \"op\"}}")
    return out


def load_kornli(path: str | Path, limit: int | None = None) -> list[tuple[str, str, int]]:
    """Read a KorNLI TSV (``sentence1, sentence2, gold_label``; .tsv or .tsv.gz) as ``(s1, s2, label_id)``."""
    from haneul.dialog.model import NLI_LABELS

    path = Path(path)
    lines = _open_text(path).splitlines()
    if not lines or lines[0].split("\t")[:3] != ["sentence1", "sentence2", "gold_label"]:
        raise InvalidInput(f"{path.name} is not a KorNLI TSV; its header must be sentence1<TAB>sentence2<TAB>gold_label")
    out = []
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) < 3 or parts[2] not in NLI_LABELS:
            continue
        out.append((parts[0], parts[1], NLI_LABELS.index(parts[2])))
        if limit and len(out) >= limit:
            break
    return out
