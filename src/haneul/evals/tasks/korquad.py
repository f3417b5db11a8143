"""KorQuAD 1.0 / SQuAD-format extractive QA (JSON ``data[].paragraphs[].context/qas[]``).

Answered by generation and scored with exact match and character-level F1 as the official KorQuAD
1.0 evaluation script computes them (see :mod:`haneul.evals.metrics`).
"""

from __future__ import annotations

from pathlib import Path

from haneul.evals.tasks import register
from haneul.evals.tasks._base import Example, Task, bad_line, need, read_json

NAME = "korquad"


def load(path: Path) -> list[Example]:
    doc = read_json(NAME, path)
    articles = need(NAME, path, None, doc, "data") if isinstance(doc, dict) else None
    if not isinstance(articles, list):
        raise bad_line(NAME, path, None, "missing field 'data' (a list of articles)")
    out = []
    for i, article in enumerate(articles):
        paragraphs = need(NAME, path, f"data[{i}]", article, "paragraphs")
        for j, para in enumerate(paragraphs):
            loc = f"data[{i}].paragraphs[{j}]"
            context = need(NAME, path, loc, para, "context")
            for k, qa in enumerate(need(NAME, path, loc, para, "qas")):
                qloc = f"{loc}.qas[{k}]"
                question = need(NAME, path, qloc, qa, "question")
                answers = need(NAME, path, qloc, qa, "answers")
                texts = tuple(str(need(NAME, path, f"{qloc}.answers[{n}]", a, "text")) for n, a in enumerate(answers))
                if not texts:
                    raise bad_line(NAME, path, qloc, "field 'answers' is empty")
                qid = str(qa.get("id", f"{i}-{j}-{k}"))
                out.append(Example(id=qid, fields={"context": context, "question": question}, answers=texts))
    return out


TASK = register(
    Task(
        name=NAME,
        kind="generate",
        loader=load,
        template="{context}\n질문: {question}\n답변:",
        metric="korquad",
        max_new_tokens=32,
        description="KorQuAD 1.0 / SQuAD extractive QA (EM + char F1, official KorQuAD rules)",
    )
)
