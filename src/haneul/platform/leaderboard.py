"""Competitions: a session's checkpoint scored on a dataset version's hidden test part, and the
leaderboards made of those scores (NSML's ``nsml submit`` and its leaderboards).

A dataset version with an eval script (``haneul dataset push ... --eval eval.py --metric acc``) is a
competition. Its hidden test part holds two files by convention: ``test_data`` (the inputs, JSON
Lines: one input per line) and ``test_label`` (whatever the eval script reads). A submission runs in
two processes, in the background of the server (:class:`Leaderboards` keeps a queue and a few worker
threads), while the API has already answered with the submission's id:

1. **predict**: the session's own command in its code folder with ``HANEUL_MODE=submit``
   (:func:`haneul.platform.serving.submit`): ``haneul.bind`` loads the checkpoint file the server hands
   over, calls the bound ``infer`` on the inputs in batches and writes one prediction per line. The
   server copies only ``test_data`` into the submission's folder, so the process is never told where
   the labels are; it runs with the submission's folder as its ``HANEUL_HOME`` and no token.
2. **score**: ``python eval.py --prediction PRED --label LABEL`` in a process of its own, under a time
   limit and an address-space limit; the last line of its output is the score (``{"acc": 0.87}`` or a
   bare number).

A team may submit ``submit_daily_limit`` times per dataset in any 24 hours; a submission that failed
by its own fault (``infer`` raised, the eval script rejected the predictions) counts, one the server
failed (status ``error``) does not. The leaderboard of a version is the best ``done`` submission of
each team (by the version's direction, ties to the earlier one); a team sees the details of its own
submissions only.
"""

from __future__ import annotations

import json
import math
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from haneul.errors import HaneulError, InvalidInput, NotFound, TooManyRequests
from haneul.platform.datasets import SESSION_TAG, Scoring, dataset_store, parse_ref
from haneul.platform.db.datasets import Dataset, DatasetVersion
from haneul.platform.db.leaderboard import Submission
from haneul.platform.db.models import Team
from haneul.platform.plugins import Principal
from haneul.platform.scheduler import parse_memory
from haneul.platform.service import SESSION_CREDENTIALS, Platform
from haneul.platform.serving import EXIT_NO_INFER, EXIT_PREDICTION_FAILED, EXIT_START_FAILED

__all__ = ["TEST_DATA", "TEST_LABEL", "Leaderboards", "parse_score"]

#: the hidden test part's inputs (JSON Lines) and labels (the eval script's format)
TEST_DATA = "test_data"
TEST_LABEL = "test_label"
#: inputs per infer call in submit mode
SUBMIT_BATCH = 64
#: evaluations run at once
WORKERS = 2
DAY_S = 86_400.0
#: the most submissions one list answers
LIST_MAX = 1000
ENDED = ("done", "failed", "error")


class _Failed(Exception):
    """The submission failed by its own fault: it counts against the team's daily limit."""


class _Stopped(Exception):
    """The server is stopping: the submission ends as an ``error`` that does not count."""


def no_infer_message(session_id: int) -> str:
    return (f"session {session_id}'s code never called haneul.bind(infer=...); bind load and infer "
            "before training")


def parse_score(line: str, metric: str) -> float | str:
    """The score on an eval script's last line (``{"acc": 0.8}`` or ``0.8``), or why there is none."""
    try:
        value = json.loads(line)  # not orjson: an eval script's json.dumps may print NaN or Infinity
    except ValueError:
        value = None
    if isinstance(value, dict):
        if metric not in value:
            return f"printed {line[:100]} without the metric {metric!r}"
        value = value[metric]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "printed no score"
    if not math.isfinite(value):
        return f"printed the score {value}, which is not a finite number"
    return float(value)


def _last_line(path: Path, prefix: str = "") -> str | None:
    """The last non-empty line of a log (read from its last 64 KiB), optionally the last with ``prefix``."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - (64 << 10)))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.strip() and line.startswith(prefix):
            return line.strip()[len(prefix):][:1000]
    return None


def _tail(path: Path, lines: int = 30) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - (32 << 10)))
            return fh.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []


def _when(ts: float) -> str:
    left = max(0, int(ts - time.time()))
    hours, minutes = divmod(left // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{max(1, minutes)} min"
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(ts))} (in {span})"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _limit_memory(limit: int) -> Callable[[], None] | None:
    if limit <= 0:
        return None

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


@dataclass
class _Outcome:
    status: str = "done"
    score: float | None = None
    error: str | None = None
    counts: bool = True
    inputs: int | None = None
    infer_s: float | None = None
    eval_s: float | None = None


class Leaderboards:
    """Takes submissions, evaluates them in worker threads, and answers leaderboards and histories.
    Keyword-only methods taking the :class:`~haneul.platform.plugins.Principal` asking."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.settings = platform.settings
        self.engine = platform.engine
        self.store = dataset_store(platform)
        self.folder = Path(self.settings.home) / "submissions"
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # the daily-limit check and the insert after it take turns
        self._closed = threading.Event()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Queue again what was queued when the server stopped, end what was running, start the workers."""
        if self._threads:
            return
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(update(Submission).where(Submission.status == "running").values(
                status="error", counts=False, ended_at=now,
                error="the server stopped during the evaluation; submit again (it did not count)"))
            waiting = conn.execute(select(Submission.id).where(Submission.status == "queued")
                                   .order_by(Submission.id)).scalars().all()
        for sid in waiting:
            self._queue.put(sid)
        for i in range(WORKERS):
            thread = threading.Thread(target=self._work, name=f"haneul-submissions-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop the workers; evaluations under way are killed and end as errors that do not count."""
        self._closed.set()
        for _ in self._threads:
            self._queue.put(None)
        for proc in list(self._procs.values()):
            _kill(proc)
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads = []

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """True once nothing is queued or running (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                busy = conn.execute(select(func.count()).select_from(Submission)
                                    .where(Submission.status.in_(("queued", "running")))).scalar_one()
            if not busy:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ submitting
    def submit(self, *, principal: Principal, session_id: int, checkpoint: str | None = None,
               dataset: str | None = None) -> dict[str, Any]:
        """Queue an evaluation of a session's checkpoint (default: its latest) on ``dataset``
        (``NAME[:VERSION]``; default: the dataset the session ran with); answers at once, ``queued``."""
        session = self.platform.get_session(session_id)
        team = session.get("team_id")
        principal.check_write(team, f"session {session_id}")
        if team is None:
            raise InvalidInput(f"session {session_id} belongs to no team, so it cannot be on a leaderboard; "
                               "run it again as a team member")
        ref = dataset or session.get("tags", {}).get(SESSION_TAG)
        if not ref:
            raise InvalidInput(f"session {session_id} ran with no dataset; name the competition with "
                               "--dataset NAME[:VERSION]")
        scoring = self.store.scoring(principal=principal, ref=ref)
        self._check_scoring(scoring)
        checkpoint = self._checkpoint(session_id, checkpoint)
        now = time.time()
        with self._lock, self.engine.begin() as conn:
            self._check_limit(conn, scoring, team, now)
            sid = conn.execute(insert(Submission).values(
                team_id=team, user=principal.name, session_id=session_id, checkpoint=checkpoint,
                dataset_id=scoring.dataset_id, dataset=scoring.name, version=scoring.version,
                metric=scoring.metric, direction=scoring.direction or "max", status="queued", counts=True,
                created_at=now)).inserted_primary_key[0]  # type: ignore[index]
        self._queue.put(sid)
        return self.get(sid, principal=principal)

    @staticmethod
    def _check_scoring(scoring: Scoring) -> None:
        ref = f"{scoring.name}:{scoring.version}"
        if scoring.script is None or scoring.metric is None:
            raise InvalidInput(f"dataset {ref} has no eval script, so it takes no submissions; its team can push "
                               f"one: haneul dataset push {scoring.name} PATH --test TEST --eval eval.py --metric KEY")
        lacking = [f for f in (TEST_DATA, TEST_LABEL) if f not in scoring.test_paths]
        if lacking:
            raise InvalidInput(f"dataset {ref}'s hidden test part has no {' or '.join(lacking)} file; a competition's "
                               f"--test folder holds {TEST_DATA} (inputs, one JSON per line) and {TEST_LABEL}")

    def _checkpoint(self, sid: int, name: str | None) -> str:
        names = [c["name"] for c in self.platform.list_checkpoints(sid)]
        if name is None or name == "latest":
            if not names:
                raise NotFound(f"session {sid} has no checkpoint to submit; call haneul.save(name) in its code "
                               "first")
            return names[-1]
        if name not in names:
            raise NotFound(f"session {sid} has no checkpoint {name!r}; see `haneul checkpoints {sid}`")
        return name

    def _check_limit(self, conn: Any, scoring: Scoring, team: int, now: float) -> None:
        limit = self.settings.submit_daily_limit
        team_name = conn.execute(select(Team.name).where(Team.id == team)).scalar() or str(team)
        if limit <= 0:
            raise TooManyRequests("submissions are turned off on this server (HANEUL_SUBMIT_DAILY_LIMIT=0)")
        times = conn.execute(select(Submission.created_at).where(
            Submission.dataset_id == scoring.dataset_id, Submission.team_id == team, Submission.counts.is_(True),
            Submission.created_at > now - DAY_S).order_by(Submission.created_at)).scalars().all()
        if len(times) >= limit:
            refill = times[len(times) - limit] + DAY_S
            raise TooManyRequests(f"team {team_name} has used its {limit} submissions to {scoring.name} in the last "
                                  f"24 hours; the next one frees up at {_when(refill)}")

    # ------------------------------------------------------------------ evaluating
    def _work(self) -> None:
        while True:
            sid = self._queue.get()
            if sid is None or self._closed.is_set():
                return
            try:
                self.run(sid)
            except Exception as exc:  # one broken submission must not stop the worker
                print(f"haneul: submission {sid}: evaluator error: {exc!r}", file=sys.stderr, flush=True)

    def run(self, sid: int) -> None:
        """Evaluate one queued submission and record its outcome."""
        with self.engine.begin() as conn:
            claimed = conn.execute(update(Submission).where(Submission.id == sid, Submission.status == "queued")
                                   .values(status="running", started_at=time.time())).rowcount
            row = conn.execute(select(Submission).where(Submission.id == sid)).first()
        if not claimed or row is None:
            return
        outcome = _Outcome()
        try:
            self._evaluate(row, outcome)
        except _Failed as exc:
            outcome.status, outcome.error = "failed", str(exc)
        except _Stopped:
            outcome.status, outcome.counts = "error", False
            outcome.error = "the server stopped during the evaluation; submit again (it did not count)"
        except Exception as exc:
            detail = exc.message if isinstance(exc, HaneulError) else f"{exc.__class__.__name__}: {exc}"
            outcome.status, outcome.counts = "error", False
            outcome.error = f"the server could not evaluate the submission ({detail}); it did not count"[:1000]
        with self.engine.begin() as conn:
            conn.execute(update(Submission).where(Submission.id == sid).values(
                status=outcome.status, score=outcome.score, error=outcome.error, counts=outcome.counts,
                inputs=outcome.inputs, infer_s=outcome.infer_s, eval_s=outcome.eval_s, ended_at=time.time()))

    def _evaluate(self, row: Any, outcome: _Outcome) -> None:
        folder = self.folder / str(row.id)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        hidden = self.store.test_part_dir(name=row.dataset, version=row.version)
        started = time.monotonic()
        predictions, count = self._predict(row, folder, hidden / TEST_DATA)
        outcome.inputs = count
        outcome.infer_s = time.monotonic() - started
        started = time.monotonic()
        outcome.score = self._score(row, folder, predictions, hidden / TEST_LABEL)
        outcome.eval_s = time.monotonic() - started

    def _predict(self, row: Any, folder: Path, test_data: Path) -> tuple[Path, int]:
        """Run the session's code in submit mode on a copy of the inputs; the predictions file."""
        if row.session_id is None:
            raise _Failed("the submitted session was deleted")
        try:
            command, cwd, env = self.platform.mode_launch(row.session_id, row.checkpoint, "submit")
        except NotFound as exc:
            raise _Failed(exc.message) from None
        inputs = folder / "inputs" / TEST_DATA
        inputs.parent.mkdir()
        shutil.copyfile(test_data, inputs)  # the inputs only: the labels stay in the server's folder
        with open(inputs, "rb") as fh:
            count = sum(1 for line in fh if line.strip())
        predictions = folder / "predictions.jsonl"
        env.update(
            # no token and no way to find one: a scratch home and config folder, a server URL nothing answers
            HANEUL_HOME=str(folder / "home"), XDG_CONFIG_HOME=str(folder / "home" / "config"),
            HANEUL_SERVER="http://127.0.0.1:9", HANEUL_SUBMIT_INPUTS=str(inputs),
            HANEUL_SUBMIT_PREDICTIONS=str(predictions), HANEUL_SUBMIT_BATCH=str(SUBMIT_BATCH),
        )
        log = folder / "infer.log"
        limit = self.settings.submit_infer_timeout_s
        code = self._run_process(row.id, command, cwd=cwd, env=env, stdout=log, stderr=None, timeout=limit)
        shutil.rmtree(inputs.parent, ignore_errors=True)
        if code is None:
            raise _Failed(f"infer ran past {limit:g} s (HANEUL_SUBMIT_INFER_TIMEOUT_S) and was stopped")
        if code == EXIT_NO_INFER or (code == 0 and not predictions.exists()):
            raise _Failed(no_infer_message(row.session_id))
        if code in (EXIT_START_FAILED, EXIT_PREDICTION_FAILED):
            raise _Failed(_last_line(log, "haneul: ") or f"submit mode exited with code {code}")
        if code != 0:
            how = f"exited with code {code}" if code > 0 else f"was killed by signal {-code}"
            raise _Failed(f"the session's code {how} in submit mode; its log ends: {_last_line(log) or '(empty)'}")
        with open(predictions, "rb") as fh:
            got = sum(1 for line in fh if line.strip())
        if got != count:
            raise _Failed(f"infer returned {got} predictions for {count} inputs")
        return predictions, count

    def _score(self, row: Any, folder: Path, predictions: Path, labels: Path) -> float:
        """Run the eval script on the predictions and the labels; the score on its last line."""
        script = self.store.copy_eval_script(name=row.dataset, version=row.version, dest=folder / "eval")
        env = {k: v for k, v in os.environ.items() if k not in SESSION_CREDENTIALS}
        env["PYTHONUNBUFFERED"] = "1"
        out, err = folder / "eval.out", folder / "eval.err"
        limit = self.settings.submit_eval_timeout_s
        code = self._run_process(row.id, [sys.executable, str(script), "--prediction", str(predictions),
                                          "--label", str(labels)], cwd=str(script.parent), env=env, stdout=out,
                                 stderr=err, timeout=limit,
                                 preexec=_limit_memory(parse_memory(self.settings.submit_eval_memory)))
        if code is None:
            raise _Failed(f"{script.name} ran past {limit:g} s")
        if code != 0:
            how = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
            raise _Failed(f"{script.name} failed ({how}): {_last_line(err) or 'it wrote nothing to stderr'}")
        last = _last_line(out)
        score = parse_score(last, row.metric) if last is not None else "printed no score"
        if isinstance(score, str):
            raise _Failed(f"{script.name} {score}: its last line must be JSON like {{\"{row.metric}\": 0.8}} "
                          "or a number")
        return score

    def _run_process(self, sid: int, command: Sequence[str], *, cwd: str | None, env: dict[str, str], stdout: Path,
                     stderr: Path | None, timeout: float, preexec: Callable[[], None] | None = None) -> int | None:
        """Run a process in its own group; its exit code, or None when it ran past ``timeout``."""
        if self._closed.is_set():
            raise _Stopped
        with open(stdout, "ab") as out, open(stderr or os.devnull, "ab") as err:
            proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err if stderr is not None else subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=preexec)
        self._procs[sid] = proc
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            code = None
        finally:
            self._procs.pop(sid, None)
        if self._closed.is_set():
            raise _Stopped
        return code

    # ------------------------------------------------------------------ reading
    def _team_names(self, conn: Any) -> dict[int, str]:
        return dict(conn.execute(select(Team.id, Team.name)).tuples().all())

    def _dataset_team(self, conn: Any, dataset_id: int) -> int | None:
        return conn.execute(select(Dataset.team_id).where(Dataset.id == dataset_id)).scalar()

    def get(self, sid: int, *, principal: Principal) -> dict[str, Any]:
        """A submission with its details and the tail of its predicting log: for its team only (404 else).
        The eval script's own output shows only to the dataset's team (it may print labels)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Submission).where(Submission.id == sid)).first()
            if row is None or not principal.can_read(row.team_id):
                raise NotFound(f"submission {sid} not found; list yours with `haneul submissions`")
            teams = self._team_names(conn)
            organiser = principal.can_read(self._dataset_team(conn, row.dataset_id))
        out = self._full(row, teams)
        folder = self.folder / str(sid)
        out["infer_log"] = _tail(folder / "infer.log")
        if organiser:
            out["eval_log"] = _tail(folder / "eval.out") + _tail(folder / "eval.err")
        return out

    @staticmethod
    def _full(row: Any, teams: dict[int, str]) -> dict[str, Any]:
        return {"id": row.id, "team": teams.get(row.team_id, str(row.team_id)), "team_id": row.team_id,
                "user": row.user, "session_id": row.session_id, "checkpoint": row.checkpoint,
                "dataset": row.dataset, "version": row.version, "metric": row.metric, "direction": row.direction,
                "status": row.status, "score": row.score, "error": row.error, "counts": bool(row.counts),
                "inputs": row.inputs, "infer_s": row.infer_s, "eval_s": row.eval_s, "created_at": row.created_at,
                "started_at": row.started_at, "ended_at": row.ended_at, "mine": True}

    def list_mine(self, *, principal: Principal, dataset: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The submissions of the principal's teams (every team's for an admin), newest first."""
        query = select(Submission).order_by(Submission.id.desc()).limit(max(1, min(limit, LIST_MAX)))
        teams = principal.readable_teams()
        if teams is not None:
            query = query.where(Submission.team_id.in_(teams))
        if dataset is not None:
            name, version = parse_ref(dataset)
            query = query.where(Submission.dataset == name)
            if version is not None:
                query = query.where(Submission.version == version)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            names = self._team_names(conn)
        return [self._full(r, names) for r in rows]

    def _board_scoring(self, principal: Principal, ref: str) -> Scoring:
        """The version ``ref`` names, or the latest version of the dataset that has an eval script."""
        name, version = parse_ref(ref)
        scoring = self.store.scoring(principal=principal, ref=ref)  # 404 for a dataset it may not read
        if version is None and scoring.script is None:
            with self.engine.connect() as conn:
                scored = conn.execute(select(func.max(DatasetVersion.version)).where(
                    DatasetVersion.dataset_id == scoring.dataset_id,
                    DatasetVersion.eval_script.is_not(None))).scalar()
            if scored is not None:
                scoring = self.store.scoring(principal=principal, ref=f"{name}:{scored}")
        if scoring.script is None:
            raise InvalidInput(f"dataset {scoring.name}:{scoring.version} has no eval script, so it has no "
                               "leaderboard; its team can push one with --eval eval.py --metric KEY")
        return scoring

    def _rows(self, scoring: Scoring) -> tuple[Sequence[Any], dict[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Submission).where(
                Submission.dataset_id == scoring.dataset_id, Submission.version == scoring.version)
                .order_by(Submission.created_at, Submission.id)).all()
            return rows, self._team_names(conn)

    def leaderboard(self, *, principal: Principal, ref: str) -> dict[str, Any]:
        """The best ``done`` submission of each team on a version (``NAME[:VERSION]``), ranked."""
        scoring = self._board_scoring(principal, ref)
        rows, names = self._rows(scoring)
        sign = -1.0 if scoring.direction == "min" else 1.0
        best: dict[int, Any] = {}
        tried: dict[int, list[Any]] = {}
        for r in rows:
            tried.setdefault(r.team_id, []).append(r)
            if r.status == "done" and r.score is not None:
                held = best.get(r.team_id)
                if held is None or sign * r.score > sign * held.score:  # ties keep the earlier one
                    best[r.team_id] = r
        ranked = sorted(best.values(), key=lambda r: (-sign * r.score, r.created_at, r.id))
        entries = []
        for rank, r in enumerate(ranked, 1):
            entry: dict[str, Any] = {
                "rank": rank, "team": names.get(r.team_id, str(r.team_id)), "score": r.score,
                "submissions": len(tried[r.team_id]), "best_at": r.created_at,
                "last_at": max(x.created_at for x in tried[r.team_id]), "mine": principal.can_read(r.team_id)}
            if entry["mine"]:
                entry.update(submission_id=r.id, session_id=r.session_id, user=r.user, checkpoint=r.checkpoint)
            entries.append(entry)
        return {"dataset": scoring.name, "version": scoring.version, "metric": scoring.metric,
                "direction": scoring.direction, "daily_limit": self.settings.submit_daily_limit,
                "entries": entries}

    def history(self, *, principal: Principal, ref: str) -> dict[str, Any]:
        """Every submission to a version, oldest first: the principal's teams' in full, other teams' only
        as the public board shows them (team, score, time) and only once scored."""
        scoring = self._board_scoring(principal, ref)
        rows, names = self._rows(scoring)
        items = []
        for r in rows:
            if principal.can_read(r.team_id):
                items.append(self._full(r, names))
            elif r.status == "done":
                items.append({"team": names.get(r.team_id, str(r.team_id)), "score": r.score, "status": "done",
                              "created_at": r.created_at, "ended_at": r.ended_at, "mine": False})
        return {"dataset": scoring.name, "version": scoring.version, "metric": scoring.metric,
                "direction": scoring.direction, "items": items}

    def boards(self, *, principal: Principal) -> list[dict[str, Any]]:
        """Every competition the principal may read: datasets with an eval script, with their counts."""
        out = []
        for d in self.store.list_datasets(principal=principal):
            try:
                board = self.leaderboard(principal=principal, ref=d["name"])
            except (InvalidInput, NotFound):
                continue
            out.append({"dataset": d["name"], "version": board["version"], "metric": board["metric"],
                        "direction": board["direction"], "teams": len(board["entries"]), "public": d["public"],
                        "leader": board["entries"][0]["team"] if board["entries"] else None,
                        "best": board["entries"][0]["score"] if board["entries"] else None})
        return out
