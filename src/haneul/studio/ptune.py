"""P-tuning from the Studio (HyperCLOVA §5: prompt-based learning fits into the prompt-engineering
pipeline). A preset's prompt becomes the template of :func:`haneul.lm.ptuning.ptune`, which learns a soft
prompt for the preset's model on a labelled table while every weight stays frozen; the learned prompt is
then a model of its own in the picker, ``ptune:NAME``, usable in the playground, compare and batch tests
like any other.

``POST /api/v1/studio/ptune`` checks everything first (the preset is a completion-mode prompt on a local
model, the table has both columns, every label is one of the two answer words or ``0``/``1``), splits
the table (the last ``test_rows`` rows are held out), writes the job folder (``train.tsv``, ``test.tsv``
in NSMC's format, ``config.json``) and starts ``python -m haneul.lm.ptuning config.json`` as a platform
session, whose page shows the loss as it learns. The job is followed from the session: once it is done
its accuracies (zero-shot, k-shot in context, and tuned, on the same held-out rows) are read back from
the saved soft prompt, and the prompt appears in the picker of the job's team only.

The template is the preset's prompt for one input with its examples left out, exactly what the playground
sends to the tuned model; the answer words are scored right after it (with a space before them when
the prompt does not end in one).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from haneul.errors import Conflict, Forbidden, InvalidInput, NotFound
from haneul.io import atomic_write_text
from haneul.platform.plugins import CurrentPrincipal, Principal, ServerContext, errors
from haneul.studio.batch import ENDED, SessionJobs
from haneul.studio.compare import TableIn
from haneul.studio.fewshot import load_table
from haneul.studio.models import Catalog, LocalBackend
from haneul.studio.service import Studio, VersionFields

__all__ = ["PTUNE_PREFIX", "PTuneJobs", "SoftPromptModel", "ptune_router", "soft_prompt_model", "template_of"]

#: how a learned soft prompt is named in the model picker
PTUNE_PREFIX = "ptune:"
METHODS = ("prompt-tuning", "p-tuning")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SLOT = "\x00input\x00"  # stands for the input while the preset's prompt is turned into a template
PROMPT_DIR = "prompt"


class PTuneIn(TableIn):
    preset: str = Field(min_length=1, max_length=100)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="its version (default: the newest)")
    name: str = Field(min_length=1, max_length=64, description="the soft prompt's name; picked as ptune:NAME")
    input_column: str = Field(min_length=1, max_length=200)
    label_column: str = Field(min_length=1, max_length=200)
    labels: list[str] = Field(min_length=2, max_length=2,
                              description="the answer words of label 0 and label 1, e.g. [\"부정\", \"긍정\"]")
    method: str = Field("prompt-tuning", description=", ".join(METHODS))
    steps: int = Field(200, ge=1, le=20_000)
    virtual_tokens: int = Field(16, ge=1, le=256)
    lr: float = Field(3e-2, gt=0, le=10)
    batch_size: int = Field(8, ge=1, le=256)
    shots: int = Field(4, ge=0, le=32, description="examples in the in-context baseline it is compared with")
    test_rows: int = Field(200, ge=1, le=100_000, description="the table's last rows, held out to test on")
    limit: int | None = Field(None, ge=2, le=200_000, description="the first rows only")
    seed: int = Field(0, ge=0, le=2**31 - 1)


def template_of(content: VersionFields) -> str:
    """The preset's prompt for one input without its examples, as a ``str.format`` template over ``{text}``."""
    if content.mode != "completion":
        raise InvalidInput("p-tuning learns a prompt for completion; switch the preset to completion mode")
    bare = VersionFields.from_dict({"examples": []}, base=content).spec()
    text = bare.completion_text(_SLOT)
    if _SLOT not in text:
        raise InvalidInput("the preset's input template has no {input}; add it so each row's text reaches the model")
    return text.replace("{", "{{").replace("}", "}}").replace(_SLOT, "{text}")


def label_of(value: str, labels: list[str], row: int) -> int:
    value = value.strip()
    for i, word in enumerate(labels):
        if value in (str(i), word):
            return i
    raise InvalidInput(f"row {row} has label {value[:40]!r}; labels must be 0, 1, {labels[0]!r} or {labels[1]!r}")


def _tsv(rows: list[tuple[str, int]]) -> str:
    def clean(text: str) -> str:
        return " ".join(text.split())  # a tab or a line break inside a review would break NSMC's format

    return "id\tdocument\tlabel\n" + "".join(f"{i}\t{clean(t)}\t{y}\n" for i, (t, y) in enumerate(rows))


class PTuneJobs(SessionJobs):
    """The ``studio_ptune_jobs`` table and the jobs' folders (``<folder>/<id>``, the prompt in ``prompt/``)."""

    noun = "p-tuning job"
    route = "/api/v1/studio/ptune"

    @property
    def table(self) -> Any:  # type: ignore[override]
        from haneul.studio.db import ptune_jobs

        return ptune_jobs

    def start(self, *, body: PTuneIn, content: VersionFields, base: str, rows: list[tuple[str, int]],
              team_id: int | None, preset_version_id: int, dataset: str, created_by: str) -> dict[str, Any]:
        from sqlalchemy import insert, select

        from haneul.studio.db import ptune_jobs

        if self.platform is None:
            raise InvalidInput("this server runs no sessions, so it cannot run p-tuning")
        if not _NAME.match(body.name):
            raise InvalidInput(f"name {body.name!r} is invalid; use letters, digits, '.', '_' or '-'")
        if body.method not in METHODS:
            raise InvalidInput(f"method {body.method!r} is unknown; use {' or '.join(METHODS)}")
        if len(rows) <= body.test_rows:
            raise InvalidInput(f"the table has {len(rows)} rows, not more than test_rows={body.test_rows}; "
                               "lower test_rows so that some rows are left to learn from")
        template = template_of(content)
        verbalizers = {i: word if template.endswith((" ", "\n")) else " " + word for i, word in enumerate(body.labels)}
        train, test = rows[:-body.test_rows], rows[-body.test_rows:]
        with self.engine.begin() as conn:
            clash = conn.execute(select(ptune_jobs.c.id).where(
                ptune_jobs.c.team_id.is_(None) if team_id is None else ptune_jobs.c.team_id == team_id,
                ptune_jobs.c.name == body.name, ptune_jobs.c.status != "failed")).first()
            if clash is not None:
                raise Conflict(f"the team already has a soft prompt named {body.name!r}; pick another name")
            jid = int(conn.execute(insert(ptune_jobs).values(
                team_id=team_id, preset_version_id=preset_version_id, name=body.name, method=body.method,
                base_model=content.model, dataset=dataset[:600], n_train=len(train), n_test=len(test),
                status="queued", created_by=created_by, created_at=time.time())).inserted_primary_key[0])  # type: ignore[index]
        folder = self.folder / str(jid)
        config = {"model": base, "train": str(folder / "train.tsv"), "test": str(folder / "test.tsv"),
                  "out": str(folder / PROMPT_DIR), "method": body.method, "num_virtual_tokens": body.virtual_tokens,
                  "steps": body.steps, "batch_size": body.batch_size, "lr": body.lr, "shots": body.shots,
                  "max_train": None, "max_test": None, "template": template, "verbalizers": verbalizers,
                  "seed": body.seed}

        def prepare() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / "train.tsv", _tsv(train))
            atomic_write_text(folder / "test.tsv", _tsv(test))
            atomic_write_text(folder / "config.json", json.dumps(config, ensure_ascii=False, indent=2))

        return self._launch(
            jid, prepare, command=[sys.executable, "-m", "haneul.lm.ptuning", str(folder / "config.json")],
            name=f"studio-ptune-{body.name}", owner=created_by, team_id=team_id, cpus=1.0, project="studio-ptune",
            tags={"studio_ptune_job": str(jid)},
            params={"method": body.method, "steps": body.steps, "virtual_tokens": body.virtual_tokens,
                    "lr": body.lr, "model": content.model})

    def get(self, jid: int) -> dict[str, Any]:
        """A job, brought up to date with its session; ``model`` is its picker name once it is done."""
        row = self._row(jid)
        if row["status"] in ("queued", "running") and row["session_id"] is not None:
            row = self._refresh(row)
        row["model"] = PTUNE_PREFIX + row["name"] if row["status"] == "done" else None
        return row

    def _refresh(self, row: dict[str, Any]) -> dict[str, Any]:
        from haneul.lm.ptuning import RECORD_FILE

        state = self._session_state(row)
        if state is None:
            return self._row(row["id"])
        status = state["status"]
        if status not in ENDED:
            return {**row, "status": "running" if status == "running" else "queued"}
        record = self.folder / str(row["id"]) / PROMPT_DIR / RECORD_FILE
        if status == "done" and record.is_file():
            saved = json.loads(record.read_text(encoding="utf-8"))
            self._finish(row["id"], status="done", accuracy=saved.get("accuracy"))
        else:
            reason = state.get("reason") or f"the session ended {status} without a soft prompt"
            self._finish(row["id"], status="failed", error=f"session {row['session_id']}: {reason}"[:500])
        return self._row(row["id"])

    def list_jobs(self, *, teams: Collection[int] | None, limit: int = 50) -> list[dict[str, Any]]:
        return [self.get(i) for i in self._ids(teams=teams, limit=limit)]

    def done(self, teams: Collection[int] | None) -> list[dict[str, Any]]:
        """The finished soft prompts ``teams`` may use (newest first). The picker asks on every run: one
        query, and a look at the session only for the jobs still in flight."""
        from sqlalchemy import select

        query = select(self.table).where(self.table.c.status.in_(("queued", "running", "done"))) \
            .order_by(self.table.c.id.desc()).limit(500)
        if teams is not None:
            query = query.where(self.table.c.team_id.in_(list(teams)))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        rows = [r if r["status"] == "done" else self.get(r["id"]) for r in rows]
        return [r for r in rows if r["status"] == "done"]

    def prompt_folder(self, jid: int) -> Path:
        return self.folder / str(jid) / PROMPT_DIR


class SoftPromptModel:
    """A learned soft prompt as a local model (the interface :class:`~haneul.studio.models.LocalBackend`
    drives): its base model's generator with the prompt's vectors before every prompt, loaded on first
    use; ``lock`` lets one request at a time use it. Get it from :func:`soft_prompt_model`, which keeps
    one per folder, so every run of a prompt shares its generator and its lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.lock = threading.Lock()
        self._gen: Any = None
        self._loading = threading.Lock()

    @property
    def gen(self) -> Any:
        with self._loading:
            if self._gen is None:
                from haneul.lm.generate import Generator
                from haneul.lm.ptuning import load_soft_prompt

                base, vectors, _ = load_soft_prompt(self.folder)
                self._gen = Generator.from_pretrained(base, name=self.folder.parent.name).with_soft_prompt(vectors)
            return self._gen


_soft_prompts: dict[str, SoftPromptModel] = {}
_soft_prompts_lock = threading.Lock()


def soft_prompt_model(folder: Path) -> SoftPromptModel:
    """The one :class:`SoftPromptModel` of ``folder`` in this process."""
    key = str(Path(folder).resolve())
    with _soft_prompts_lock:
        if key not in _soft_prompts:
            _soft_prompts[key] = SoftPromptModel(Path(key))
        return _soft_prompts[key]


def base_location(backend: LocalBackend) -> str:
    """What ``haneul.lm.ptuning`` loads for the backend's model: its folder, or the embedded model's name."""
    source = getattr(backend._local, "source", None)
    if source is None or source.kind not in ("folder", "smollm2"):
        raise InvalidInput(f"model {backend.name!r} cannot be p-tuned; pick a model folder or the embedded model")
    return str(source.location) if source.kind == "folder" else source.name


def ptune_router(studio: Studio, catalog: Catalog, ctx: ServerContext, jobs: PTuneJobs) -> APIRouter:
    router = APIRouter(tags=["studio"])

    def readable_job(jid: int, principal: Principal) -> dict[str, Any]:
        if not 1 <= jid < 2**31:  # ids are 32-bit on every database; a larger one never names a job
            raise NotFound(f"p-tuning job {jid} not found")
        job = jobs.get(jid)
        principal.check_read(job["team_id"], f"p-tuning job {jid}")
        return job

    @router.post("/api/v1/studio/ptune", status_code=201, responses=errors(400, 403, 404, 409))
    def start(body: PTuneIn, principal: CurrentPrincipal) -> dict[str, Any]:
        """Learn a soft prompt for a preset's model from a labelled table, as a platform session."""
        if principal.session_id is not None:
            raise Forbidden("a session's token may not start p-tuning; use your own login")
        pid = studio.find(body.preset, teams=principal.readable_teams(), prefer_team=principal.team_id)
        principal.check_read(studio.team_of(pid), f"preset {body.preset!r}")
        vid, content = studio.content(pid, body.version)
        template_of(content)  # a chat preset is refused before the table is read
        team_id = studio.team_of(pid)
        backend = catalog.backend(content.model, principal.readable_teams(), prefer_team=team_id)
        if not isinstance(backend, LocalBackend) or isinstance(backend._local, SoftPromptModel):
            raise InvalidInput(f"model {content.model!r} has no local weights to p-tune; pick a local model")
        table, ref = load_table(ctx.platform, principal, dataset=body.dataset, file=body.file, upload=body.upload,
                                upload_name=body.upload_name, fmt=body.format)
        table.check(body.input_column, body.label_column)
        picked = table.rows[:body.limit] if body.limit is not None else table.rows
        rows = [(r.get(body.input_column, ""), label_of(r.get(body.label_column, ""), body.labels, i + 1))
                for i, r in enumerate(picked)]
        return jobs.start(body=body, content=content, base=base_location(backend), rows=rows, team_id=team_id,
                          preset_version_id=vid, dataset=ref, created_by=principal.name)

    @router.get("/api/v1/studio/ptune", responses=errors(404))
    def list_ptune(principal: CurrentPrincipal, limit: int = 50) -> list[dict[str, Any]]:
        """The newest p-tuning jobs with their status, accuracies and model name once done."""
        return jobs.list_jobs(teams=principal.readable_teams(), limit=max(1, min(limit, 500)))

    @router.get("/api/v1/studio/ptune/{jid}", responses=errors(404))
    def get_ptune(jid: int, principal: CurrentPrincipal) -> dict[str, Any]:
        return readable_job(jid, principal)

    @router.get("/studio/ptune", response_class=HTMLResponse, include_in_schema=False)
    def ptune_page(request: Request, principal: CurrentPrincipal) -> Any:
        teams = principal.readable_teams()
        return ctx.render(request, "ptune.html", {
            "presets": studio.list_presets(teams=teams), "jobs": jobs.list_jobs(teams=teams), "methods": METHODS})

    return router
