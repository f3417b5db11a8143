"""Batch tests for the Studio (HyperCLOVA §5: a prompt is judged on many inputs before it is served): one
preset version run over a column of a table and scored against another column, as a platform session.

The server writes a job folder (``job.json``: the version's content, the model to call, the rows, the
metric) and starts ``python -m haneul.studio.batch JOB_FOLDER`` as a session. The session generates in
batches with the studio's own back-ends (a local model's batched sampler, or concurrent requests to a
remote OpenAI-compatible server), reports ``rows`` and the running ``score`` with :func:`haneul.report`,
writes one JSON line per row to ``outputs.jsonl`` (also kept as the session's artifact) and the final
``summary.json``. The server reads the summary back when the session ends and records the score on the
preset version (table ``studio_batch_tests``).

Metrics, all on a 0-100 scale like ``haneul eval run``'s reports:

- ``accuracy``: the normalised first word of the answer's first line equals the expected label, after
  the label map (NSMC's ``0``/``1`` -> ``부정``/``긍정``),
- ``exact_match`` and ``char_f1``: KorQuAD's normalisation, averaged over rows,
- ``bleu`` and ``chrf``: corpus scores over every row so far.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haneul.errors import HaneulError, InvalidInput, NotFound
from haneul.studio.prompt import Assembled, Params, assemble

__all__ = ["METRICS", "SessionJobs", "BatchJob", "RowResult", "Scorer", "first_word", "generate_batch", "run_job", "main"]

METRICS = ("accuracy", "exact_match", "char_f1", "bleu", "chrf")
JOB_FILE = "job.json"
OUTPUTS_FILE = "outputs.jsonl"
SUMMARY_FILE = "summary.json"
MAX_ROWS = 100_000
#: the statuses of a session that has ended
ENDED = ("done", "failed", "stopped", "lost")
_STRIP = "\"'“”‘’.,!?:;()[]<>《》「」*-_`~ \t"


def first_word(text: str) -> str:
    """The normalised first word of the first non-empty line: what a label answer is judged by."""
    for line in text.splitlines():
        words = line.split()
        if words:
            return words[0].strip(_STRIP).lower()
    return ""


@dataclass(frozen=True)
class RowResult:
    index: int
    input: str
    expected: str  # after the label map
    output: str
    correct: bool | None  # accuracy and exact match
    score: float | None  # the row's own score where the metric has one (char F1 as 0-100)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scorer:
    """Scores rows one by one and gives the running score over the rows so far."""

    def __init__(self, metric: str, label_map: Mapping[str, str] | None = None) -> None:
        if metric not in METRICS:
            raise InvalidInput(f"metric {metric!r} is unknown; use one of {', '.join(METRICS)}")
        self.metric = metric
        self.label_map = dict(label_map or {})
        self.rows: list[RowResult] = []

    def add(self, input: str, expected: str, output: str) -> RowResult:
        from haneul.evals.metrics import char_f1, exact_match

        expected = self.label_map.get(expected, expected)
        correct: bool | None = None
        score: float | None = None
        if self.metric == "accuracy":
            correct = first_word(output) == first_word(expected)
            score = 100.0 * correct
        elif self.metric == "exact_match":
            correct = bool(exact_match(output, expected))
            score = 100.0 * correct
        elif self.metric == "char_f1":
            score = 100.0 * char_f1(output, expected)
        row = RowResult(len(self.rows), input, expected, output, correct, score)
        self.rows.append(row)
        return row

    def score(self) -> float:
        from haneul.evals.metrics import corpus_bleu, corpus_chrf

        if not self.rows:
            return 0.0
        if self.metric == "bleu":
            return corpus_bleu([r.output for r in self.rows], [[r.expected] for r in self.rows])
        if self.metric == "chrf":
            return corpus_chrf([r.output for r in self.rows], [r.expected for r in self.rows])
        return sum(r.score or 0.0 for r in self.rows) / len(self.rows)


@dataclass(frozen=True)
class BatchJob:
    """What a batch-test session runs: written by the server as ``job.json``."""

    test_id: int
    content: dict[str, Any]  # VersionFields.to_dict() of the preset version
    backend: dict[str, Any]  # {"kind": "local", "root": ...} or {"kind": "remote", "url", "remote_model", "window"}
    metric: str
    rows: list[tuple[str, str]]  # (input, expected) before the label map
    label_map: dict[str, str] = field(default_factory=dict)
    batch_size: int = 8

    def check(self) -> BatchJob:
        Scorer(self.metric)
        if not 1 <= self.batch_size <= 256:
            raise InvalidInput(f"batch_size={self.batch_size} must be between 1 and 256")
        if not self.rows:
            raise InvalidInput("the table has no rows to test")
        if len(self.rows) > MAX_ROWS:
            raise InvalidInput(f"{len(self.rows)} rows is over the limit of {MAX_ROWS}; pass a limit")
        return self

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOB_FILE
        _write_atomic(path, json.dumps(asdict(self), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, folder: Path) -> BatchJob:
        data = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
        data["rows"] = [(str(a), str(b)) for a, b in data["rows"]]
        return cls(**data).check()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# generation: the studio's back-ends, a batch at a time


def job_backend(job: BatchJob) -> Any:
    """The back-end the server chose for the version's model, rebuilt inside the session."""
    from haneul.studio.models import LocalBackend, RemoteBackend

    spec = job.backend
    model = str(job.content["model"])
    if spec["kind"] == "remote":
        return RemoteBackend(model, spec["url"], spec["remote_model"], spec.get("window"))
    if spec.get("soft_prompt"):
        from haneul.studio.ptune import soft_prompt_model

        return LocalBackend(model, soft_prompt_model(Path(spec["soft_prompt"])))
    from haneul.lm.serve import ModelPool

    pool = ModelPool(root=Path(spec["root"]))
    return LocalBackend(model, pool.local(pool.source(model)))


def generate_batch(backend: Any, prompts: Sequence[Assembled], params: Params) -> list[str]:
    """The answers to ``prompts``: one batched call of a local model's sampler, or one request per prompt
    to a remote server, all in flight together."""
    from haneul.studio.models import LocalBackend, RemoteBackend

    if isinstance(backend, LocalBackend):
        from haneul.lm.generate import SamplingParams

        gen = backend.gen
        # the same sampling controls LocalBackend.stream gives the playground
        sampling = SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p,
            repetition_penalty=params.repetition_penalty, stop=list(params.stop), seed=params.seed,
        ).check()
        texts = [p.text if p.mode == "completion" and p.text is not None else gen.render_chat(p.messages)
                 for p in prompts]
        return [c.text for c in gen.generate(texts, sampling)]
    if isinstance(backend, RemoteBackend):
        from concurrent.futures import ThreadPoolExecutor

        def one(prompt: Assembled) -> str:
            # a back-end object per request: it keeps the usage of its last stream
            return "".join(RemoteBackend(backend.name, backend.url, backend.remote_model, backend.window)
                           .stream(prompt, params))

        with ThreadPoolExecutor(max_workers=len(prompts) or 1) as pool:
            return list(pool.map(one, prompts))
    return ["".join(backend.stream(p, params)) for p in prompts]


def _answer(text: str, restart: str) -> str:
    """The answer alone: a completion model that goes on past it writes the restart text next."""
    if restart and restart in text:
        text = text[:text.index(restart)]
    return text.strip()


def run_job(folder: Path) -> dict[str, Any]:
    """Run the job in ``folder``; returns (and writes) the summary."""
    import haneul
    from haneul.studio.service import VersionFields

    job = BatchJob.load(folder)
    content = VersionFields.from_dict(job.content)
    spec = content.spec()
    restart = content.params.inject_restart if content.mode == "completion" else ""
    backend = job_backend(job)
    scorer = Scorer(job.metric, job.label_map)
    started = time.perf_counter()
    tmp = folder / (OUTPUTS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for start in range(0, len(job.rows), job.batch_size):
            chunk = job.rows[start:start + job.batch_size]
            todo = [(i, assemble(spec, text)) for i, (text, _) in enumerate(chunk) if text.strip()]
            answers = dict(zip([i for i, _ in todo], generate_batch(backend, [p for _, p in todo], content.params),
                               strict=True))
            for i, (text, expected) in enumerate(chunk):
                row = scorer.add(text, expected, _answer(answers.get(i, ""), restart))
                out.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
            out.flush()
            haneul.report(step=len(scorer.rows), rows=len(scorer.rows), score=scorer.score())
    os.replace(tmp, folder / OUTPUTS_FILE)
    summary = {"test_id": job.test_id, "metric": job.metric, "n_rows": len(scorer.rows), "score": scorer.score(),
               "seconds": round(time.perf_counter() - started, 3)}
    _write_atomic(folder / SUMMARY_FILE, json.dumps(summary))
    try:
        haneul.log_artifact(folder / OUTPUTS_FILE)
    except HaneulError as exc:  # the score stands: the outputs stay in the job folder the server reads
        print(f"outputs not kept as an artifact: {exc.message}", file=sys.stderr)
    haneul.flush()
    return summary


def read_outputs(folder: Path, *, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Rows of a finished (or running) test's ``outputs.jsonl``, in table order."""
    path = folder / OUTPUTS_FILE
    if not path.is_file():
        path = folder / (OUTPUTS_FILE + ".tmp")
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n < offset or not line.endswith("\n"):
                continue
            if len(out) >= limit:
                break
            out.append(json.loads(line))
    return out


def read_summary(folder: Path) -> dict[str, Any] | None:
    path = folder / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except ValueError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m haneul.studio.batch JOB_FOLDER  (a folder with the job.json the server wrote)")
        return 0 if args and args[0] in ("-h", "--help") else 2
    folder = Path(args[0])
    if not (folder / JOB_FILE).is_file():
        raise NotFound(f"{folder / JOB_FILE} does not exist; start batch tests from the studio")
    summary = run_job(folder)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------------
# the server's side: start a test as a session, and record its score when the session ends


class SessionJobs:
    """A table of jobs that each run as a platform session (``id``, ``status``, ``session_id``, ``error``,
    ``finished_at``, ``team_id`` columns), with their folders under ``<folder>/<id>``."""

    table: Any  # the job table
    noun = "job"  # what a message calls one
    route = ""  # where they are listed, for a not-found message

    def __init__(self, engine: Any, folder: Path, platform: Any) -> None:
        self.engine = engine
        self.folder = folder
        self.platform = platform

    def _finish(self, jid: int, **values: Any) -> None:
        from sqlalchemy import update

        with self.engine.begin() as conn:
            conn.execute(update(self.table).where(self.table.c.id == jid).values(finished_at=time.time(), **values))

    def _row(self, jid: int) -> dict[str, Any]:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.table).where(self.table.c.id == jid)).first()
        if row is None:
            raise NotFound(f"{self.noun} {jid} not found; list them with GET {self.route}")
        return dict(row._mapping)

    def get(self, jid: int) -> dict[str, Any]:
        raise NotImplementedError

    def _launch(self, jid: int, prepare: Callable[[], object], **session: Any) -> dict[str, Any]:
        """Write the job's folder (``prepare``) and start its session; a failure fails the job and is raised."""
        from sqlalchemy import update

        try:
            prepare()
            started = self.platform.create_session(brief=True, **session)
        except Exception as exc:
            self._finish(jid, status="failed", error=str(exc).splitlines()[0][:500] if str(exc) else repr(exc))
            raise
        with self.engine.begin() as conn:
            conn.execute(update(self.table).where(self.table.c.id == jid)
                         .values(session_id=int(started["id"]), status="running"))
        return self.get(jid)

    def _session_state(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The state of the job's session (its ``status`` and ``reason``); None when the session is gone,
        which fails the job."""
        sid = int(row["session_id"])
        try:
            return dict(self.platform.session_state(sid))
        except NotFound:
            self._finish(row["id"], status="failed", error=f"session {sid} is gone")
            return None

    def _ids(self, *, teams: Any, limit: int, where: Any = None) -> list[int]:
        from sqlalchemy import select

        query = select(self.table.c.id).order_by(self.table.c.id.desc()).limit(limit)
        if teams is not None:
            query = query.where(self.table.c.team_id.in_(list(teams)))
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as conn:
            return [r.id for r in conn.execute(query)]


class BatchTests(SessionJobs):
    """The ``studio_batch_tests`` table and the tests' job folders (``<folder>/<id>``)."""

    noun = "batch test"
    route = "/api/v1/studio/batch-tests"

    @property
    def table(self) -> Any:  # type: ignore[override]
        from haneul.studio.db import batch_tests

        return batch_tests

    def start(self, *, job: BatchJob, team_id: int | None, preset_version_id: int, dataset: str,
              input_column: str, expected_column: str, created_by: str) -> dict[str, Any]:
        """Record the test, write its job folder and start its session."""
        from sqlalchemy import insert

        from haneul.studio.db import batch_tests

        if self.platform is None:
            raise InvalidInput("this server runs no sessions, so it cannot run batch tests")
        job.check()
        with self.engine.begin() as conn:
            tid = int(conn.execute(insert(batch_tests).values(
                team_id=team_id, preset_version_id=preset_version_id, dataset=dataset[:600],
                input_column=input_column, expected_column=expected_column, label_map=job.label_map or None,
                n_rows=len(job.rows), metric=job.metric, rows_done=0, status="queued", created_by=created_by,
                created_at=time.time())).inserted_primary_key[0])  # type: ignore[index]
        folder = self.folder / str(tid)
        return self._launch(
            tid, lambda: BatchJob(**{**asdict(job), "test_id": tid}).save(folder),
            command=[sys.executable, "-m", "haneul.studio.batch", str(folder)], name=f"studio-batch-{tid}",
            owner=created_by, team_id=team_id, cpus=1.0, project="studio-batch", tags={"studio_batch_test": str(tid)})

    def get(self, tid: int) -> dict[str, Any]:
        """A test, brought up to date with its session: progress while it runs, the score once it ended."""
        row = self._row(tid)
        if row["status"] in ("queued", "running") and row["session_id"] is not None:
            row = self._refresh(row)
        return row

    def _refresh(self, row: dict[str, Any]) -> dict[str, Any]:
        sid = int(row["session_id"])
        state = self._session_state(row)
        if state is None:
            return self._row(row["id"])
        status = state["status"]
        if status in ENDED:
            summary = read_summary(self.folder / str(row["id"]))
            if status == "done" and summary is not None:
                self._finish(row["id"], status="done", score=float(summary["score"]),
                             rows_done=int(summary["n_rows"]))
            else:
                reason = state.get("reason") or f"the session ended {status} without a result"
                self._finish(row["id"], status="failed", error=f"session {sid}: {reason}"[:500])
            return self._row(row["id"])
        latest = self.platform.latest_metrics([sid]).get(sid, {})
        out = dict(row)
        out["status"] = "running" if status == "running" else "queued"
        if latest.get("rows") is not None:
            out["rows_done"] = int(latest["rows"] or 0)
            out["score"] = latest.get("score")
        return out

    def list_tests(self, *, teams: Any, version_ids: Sequence[int] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where = None if version_ids is None else self.table.c.preset_version_id.in_(list(version_ids))
        return [self.get(i) for i in self._ids(teams=teams, limit=limit, where=where)]

    def outputs(self, tid: int, *, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return read_outputs(self.folder / str(tid), offset=offset, limit=limit)
