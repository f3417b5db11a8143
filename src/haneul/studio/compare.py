"""The Studio's compare view (HyperCLOVA §5: prompts and models are judged side by side), and the router
that mounts the studio's prompt-building tools: the few-shot builder, batch tests and the comparison.

``POST /api/v1/studio/compare`` runs one input through 2 to 4 columns (each a preset version, or a model
with ad-hoc fields) at the same time and answers one Server-Sent Events stream: ``token``
(``{"column", "text"}``), then per column ``done`` or ``error`` (with ``column``), then ``end``. Every
column is logged as a playground run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from haneul.errors import Forbidden, HaneulError, InvalidInput, NotFound
from haneul.platform.plugins import CurrentPrincipal, Principal, ServerContext, errors
from haneul.studio.batch import METRICS, BatchJob, BatchTests
from haneul.studio.fewshot import STRATEGIES, load_table, pick
from haneul.studio.filters import Screen, TeamFilters
from haneul.studio.models import Catalog, LocalBackend, RemoteBackend
from haneul.studio.prompt import Assembled
from haneul.studio.server import Prepared, VersionIn, _sse, execute, prepare
from haneul.studio.service import VERSION_FIELDS, Studio, VersionFields

__all__ = ["tools_router", "MAX_COLUMNS"]

MAX_COLUMNS = 4


class ColumnIn(VersionIn):
    preset: str | None = Field(None, min_length=1, max_length=100, description="start from this preset's version")
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="its version (default: the newest)")


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(max_length=200_000)
    columns: list[ColumnIn] = Field(min_length=2, max_length=MAX_COLUMNS)


class TableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(None, max_length=300, description="a platform dataset, NAME[:VERSION]")
    file: str | None = Field(None, max_length=1000, description="its table file (CSV, TSV or JSON lines)")
    upload: str | None = Field(None, max_length=50 * 2**20, description="the text of an uploaded table")
    upload_name: str = Field("upload.csv", max_length=200, description="its file name (the format follows it)")
    format: str | None = Field(None, description="csv, tsv or jsonl (default: the file's extension)")


class FewShotIn(ColumnIn, TableIn):
    input_column: str = Field(min_length=1, max_length=200)
    output_column: str = Field(min_length=1, max_length=200)
    k: int = Field(4, ge=1, le=64)
    strategy: str = Field("first", description=", ".join(STRATEGIES))
    seed: int = Field(0, ge=0, le=2**31 - 1)
    input: str = Field("", max_length=200_000, description="the current input (ranks the examples for 'similar')")


class BatchIn(TableIn):
    preset: str = Field(min_length=1, max_length=100)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="its version (default: the newest)")
    input_column: str = Field(min_length=1, max_length=200)
    expected_column: str = Field(min_length=1, max_length=200)
    metric: str = Field("accuracy", description=", ".join(METRICS))
    label_map: dict[str, str] | None = Field(None, description='e.g. {"0": "부정", "1": "긍정"}')
    limit: int | None = Field(None, ge=1, le=100_000, description="the first rows only")
    batch_size: int = Field(8, ge=1, le=256)


def tools_router(studio: Studio, catalog: Catalog, ctx: ServerContext) -> APIRouter:
    router = APIRouter(tags=["studio"])
    tests = BatchTests(ctx.engine, ctx.home / ctx.name / "batch", ctx.platform)

    def readable(ref: str, principal: Principal) -> int:
        pid = studio.find(ref, teams=principal.readable_teams(), prefer_team=principal.team_id)
        principal.check_read(studio.team_of(pid), f"preset {ref!r}")
        return pid

    def content_of(body: ColumnIn, principal: Principal) -> tuple[VersionFields, int | None, int | None]:
        """The column's content, the version it matches (if it matches one) and its team."""
        fields = body.fields()
        if body.preset is None:
            return VersionFields.from_dict(fields), None, principal.team_id
        pid = readable(body.preset, principal)
        vid, base = studio.content(pid, body.version)
        content = VersionFields.from_dict(fields, base=base)
        same = all(getattr(content, k) == getattr(base, k) for k in VERSION_FIELDS if k != "params")
        return content, vid if same else None, studio.team_of(pid)

    # -- the few-shot builder
    @router.post("/api/v1/studio/fewshot", responses=errors(400, 404))
    def fewshot(body: FewShotIn, principal: CurrentPrincipal) -> dict[str, Any]:
        """Pick ``k`` examples from a table (first, random or most similar to ``input``) and assemble the
        prompt they make with the preset's (or the body's) other fields, with its token count."""
        table, ref = load_table(ctx.platform, principal, dataset=body.dataset, file=body.file, upload=body.upload,
                                upload_name=body.upload_name, fmt=body.format)
        picked = pick(table.examples(body.input_column, body.output_column), k=body.k, strategy=body.strategy,
                      seed=body.seed, query=body.input)
        base, _, team_id = content_of(body, principal)
        content = VersionFields.from_dict(
            {"examples": [{"input": p.example.input, "output": p.example.output} for p in picked]}, base=base)
        spec = content.spec()
        prompt = Assembled("completion", text=spec.completion_text(body.input)) if spec.mode == "completion" \
            else Assembled("chat", messages=spec.chat_messages(body.input))
        backend = catalog.backend(content.model, principal.readable_teams(), prefer_team=team_id)
        return {"source": ref, "rows": len(table.rows), "columns": list(table.columns),
                "examples": [p.to_dict() for p in picked], "mode": prompt.mode, "prompt": prompt.stored(),
                "model": content.model, "tokens": backend.count(prompt), "context_window": backend.context_window()}

    # -- batch tests
    @router.post("/api/v1/studio/batch-tests", status_code=201, responses=errors(400, 403, 404))
    def start_batch(body: BatchIn, principal: CurrentPrincipal) -> dict[str, Any]:
        """Run a preset version over a table column as a platform session; poll the test for its score."""
        if principal.session_id is not None:
            raise Forbidden("a session's token may not start batch tests; use your own login")
        if body.metric not in METRICS:
            raise InvalidInput(f"metric {body.metric!r} is unknown; use one of {', '.join(METRICS)}")
        pid = readable(body.preset, principal)
        vid, content = studio.content(pid, body.version)
        table, ref = load_table(ctx.platform, principal, dataset=body.dataset, file=body.file, upload=body.upload,
                                upload_name=body.upload_name, fmt=body.format)
        table.check(body.input_column, body.expected_column)
        rows = [(r.get(body.input_column, ""), r.get(body.expected_column, "")) for r in table.rows]
        rows = rows[:body.limit] if body.limit is not None else rows
        team_id = studio.team_of(pid)
        backend = catalog.backend(content.model, principal.readable_teams(), prefer_team=team_id)
        if isinstance(backend, LocalBackend):
            where: dict[str, Any] = {"kind": "local", "root": str(catalog.root)}
            soft = getattr(backend._local, "folder", None)  # a learned soft prompt: its folder, not a pool name
            if soft is not None:
                where["soft_prompt"] = str(soft)
        elif isinstance(backend, RemoteBackend):
            where = {"kind": "remote", "url": backend.url, "remote_model": backend.remote_model,
                     "window": backend.window}
        else:
            raise InvalidInput(f"model {content.model!r} cannot run in a batch test")
        job = BatchJob(0, content.to_dict(), where, body.metric, rows, dict(body.label_map or {}), body.batch_size)
        return tests.start(job=job, team_id=team_id, preset_version_id=vid, dataset=ref,
                           input_column=body.input_column, expected_column=body.expected_column,
                           created_by=principal.name)

    def readable_test(tid: int, principal: Principal) -> dict[str, Any]:
        if not 1 <= tid < 2**31:  # ids are 32-bit on every database; a larger one never names a test
            raise NotFound(f"batch test {tid} not found")
        test = tests.get(tid)
        principal.check_read(test["team_id"], f"batch test {tid}")
        return test

    @router.get("/api/v1/studio/batch-tests", responses=errors(404))
    def list_batch(principal: CurrentPrincipal, preset: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest batch tests (of one preset's versions with ``preset``)."""
        ids = None
        if preset is not None:
            ids = [v["id"] for v in studio.versions(readable(preset, principal))]
        return tests.list_tests(teams=principal.readable_teams(), version_ids=ids, limit=max(1, min(limit, 500)))

    @router.get("/api/v1/studio/batch-tests/{tid}", responses=errors(404))
    def get_batch(tid: int, principal: CurrentPrincipal) -> dict[str, Any]:
        """A batch test: its progress while it runs (``rows_done``, the running ``score``), then its score."""
        return readable_test(tid, principal)

    @router.get("/api/v1/studio/batch-tests/{tid}/rows", responses=errors(404))
    def batch_rows(tid: int, principal: CurrentPrincipal, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Per-row results: input, expected (after the label map), output, correct, score."""
        readable_test(tid, principal)
        return tests.outputs(tid, offset=max(0, offset), limit=max(1, min(limit, 10_000)))

    # -- compare
    @router.post("/api/v1/studio/compare", responses=errors(400, 403, 404), response_class=StreamingResponse)
    def compare(body: CompareIn, principal: CurrentPrincipal) -> StreamingResponse:
        """One input through 2-4 presets or models at once; one event stream tagged with ``column``."""
        if principal.session_id is not None:
            raise Forbidden("a session's token may not run prompts; use your own login")
        columns = []
        for col in body.columns:  # every column is checked before any is run
            content, vid, team_id = content_of(col, principal)
            screen = TeamFilters(studio.engine).screen(team_id)  # the team's filters hold here too
            if screen is not None:
                screen.input(body.input)
            columns.append((prepare(catalog, principal, content=content, text=body.input, team_id=team_id,
                                    version_id=vid), screen))
        return StreamingResponse(_multiplex(studio, columns, principal.name), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- pages
    @router.get("/studio/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(request: Request, principal: CurrentPrincipal) -> Any:
        state = {"models": [c.to_dict() for c in catalog.choices(principal.readable_teams())],
                 "presets": [{"id": p["id"], "name": p["name"], "versions": p["versions"]}
                             for p in studio.list_presets(teams=principal.readable_teams())],
                 "max_columns": MAX_COLUMNS}
        return ctx.render(request, "compare.html", {"state": state})

    @router.get("/studio/batch", response_class=HTMLResponse, include_in_schema=False)
    def batch_list_page(request: Request, principal: CurrentPrincipal) -> Any:
        presets = studio.list_presets(teams=principal.readable_teams())
        return ctx.render(request, "batch_list.html", {
            "tests": tests.list_tests(teams=principal.readable_teams(), limit=100),
            "presets": [{"id": p["id"], "name": p["name"]} for p in presets], "metrics": METRICS})

    @router.get("/studio/batch/{tid}", response_class=HTMLResponse, include_in_schema=False)
    def batch_page(tid: int, request: Request, principal: CurrentPrincipal) -> Any:
        test = readable_test(tid, principal)
        return ctx.render(request, "batch.html", {"test": test, "rows": tests.outputs(tid, limit=2000)})

    return router


_END = object()


def _multiplex(studio: Studio, columns: list[tuple[Prepared, Screen | None]], created_by: str) -> Iterator[str]:
    """Run every column in a thread of its own and pass their events on as they come, tagged with the
    column; a caller that stops reading stops every column (each is logged as stopped)."""
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def work(column: int, prep: Prepared, screen: Screen | None) -> None:
        stream = cast(Generator[tuple[str, Any], None, None],
                      execute(studio, prep, source="playground", created_by=created_by, screen=screen))
        try:
            for kind, data in stream:
                if stop.is_set():
                    break
                events.put((column, kind, data))
        except Exception as exc:  # execute logs and reports model failures itself; this is a bug's last word
            err = exc if isinstance(exc, HaneulError) else HaneulError(f"{exc.__class__.__name__}: {exc}")
            events.put((column, "error", {"code": err.code, "message": err.message}))
        finally:
            stream.close()
            events.put((column, _END, None))

    threads = [threading.Thread(target=work, args=(i, *c), daemon=True, name=f"studio-compare-{i}")
               for i, c in enumerate(columns)]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            column, kind, data = events.get()
            if kind is _END:
                running -= 1
                continue
            payload = {"column": column, "text": data} if kind == "token" else {"column": column, **data}
            yield _sse(kind, payload)
        yield _sse("end", {"columns": len(columns)})
    finally:
        stop.set()

