"""What a training script becomes when the platform runs it in a special mode (``HANEUL_MODE``).

A script calls ``haneul.bind(save=..., load=..., infer=...)`` near its top. In a training session
``bind`` only registers the functions. When the platform starts the same code as a replica of a
deployment it sets ``HANEUL_MODE=serve``: ``bind`` then loads the checkpoint the server hands over
(``HANEUL_SERVE_CHECKPOINT_FILE``, already verified; or else downloads the one named by
``HANEUL_SERVE_SESSION`` / ``HANEUL_SERVE_CHECKPOINT``), calling the bound ``load`` on it as
``haneul.load`` does, and serves ``infer`` on ``127.0.0.1:HANEUL_SERVE_PORT`` until SIGTERM, then exits 0;
the training code after ``bind`` never runs. ``HANEUL_MODE=submit`` (``haneul submit``) loads the
checkpoint the same way, predicts a competition's hidden test inputs into a file and exits. Each mode
is one function of :data:`MODES`.

The replica's wire format::

    POST /predict  {"inputs": [x1, x2, ...]}  ->  {"predictions": [y1, y2, ...]}
    GET  /health                              ->  {"status": "ready"}

``infer`` receives the list of inputs and returns a list of the same length. With
``HANEUL_SERVE_BATCH`` > 1, requests arriving within ``HANEUL_SERVE_BATCH_WAIT_MS`` are gathered into
one ``infer`` call of up to that many inputs (micro-batching). The server is the standard library's
threading HTTP server with keep-alive: nothing else is imported, and a request costs well under a
millisecond of its own time.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

from haneul.errors import HaneulError, register

#: the exit code of a replica whose script bound no ``infer``: the server names the cause from it
EXIT_NO_INFER = 86
#: the exit code of a replica that could not start (bad settings, the checkpoint would not load)
EXIT_START_FAILED = 87
#: the exit code of a submission whose infer raised or returned the wrong number of predictions
EXIT_PREDICTION_FAILED = 88

Bound = Mapping[str, Callable[..., Any] | None]


@register
class PredictionFailed(HaneulError):
    """``infer`` raised, returned the wrong number of predictions, or returned something not JSON."""

    code = "prediction_failed"
    http_status = 502


def run_mode(mode: str, bound: Bound) -> NoReturn:
    """Run ``mode`` (the value of ``HANEUL_MODE``) with the functions ``bind`` registered; never returns."""
    run = MODES.get(mode)
    if run is None:
        _fail(EXIT_START_FAILED, f"HANEUL_MODE={mode!r} is unknown; choose one of: {', '.join(sorted(MODES))} "
              "(or unset it to train)")
    run(bound)


def _fail(code: int, line: str) -> NoReturn:
    print(f"haneul: {line}", file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------------------------------------
# serve mode


def serve(bound: Bound) -> NoReturn:
    infer = bound.get("infer")
    if infer is None:
        _fail(EXIT_NO_INFER, "serve mode needs haneul.bind(infer=...): this script bound no infer function; "
              "bind load and infer before training")
    env = os.environ
    try:
        session = env["HANEUL_SERVE_SESSION"]
        checkpoint = env["HANEUL_SERVE_CHECKPOINT"]
        port = int(env["HANEUL_SERVE_PORT"])
        batch = int(env.get("HANEUL_SERVE_BATCH") or 1)
        wait_s = float(env.get("HANEUL_SERVE_BATCH_WAIT_MS") or 0) / 1000
    except (KeyError, ValueError) as exc:
        _fail(EXIT_START_FAILED, f"serve mode needs HANEUL_SERVE_SESSION, HANEUL_SERVE_CHECKPOINT and "
              f"HANEUL_SERVE_PORT ({exc.__class__.__name__}: {exc}); start replicas with `haneul deploy`")
    from haneul.platform import sdk

    started = time.monotonic()
    try:
        local = env.get("HANEUL_SERVE_CHECKPOINT_FILE")
        if local:  # the server handed over the verified file: a replica needs no credentials
            sdk._unpack(env.get("HANEUL_SERVE_CHECKPOINT_KIND") or "file", Path(local))
        else:
            sdk.load(checkpoint, session=session)
    except HaneulError as exc:
        _fail(EXIT_START_FAILED, f"could not load checkpoint {checkpoint!r} of session {session}: {exc.message}")
    predictor = Predictor(infer, batch=batch, wait_s=wait_s)
    server = _Server(("127.0.0.1", port), _Handler)
    server.predictor = predictor
    print(f"haneul: serving checkpoint {checkpoint!r} of session {session} on 127.0.0.1:{port} "
          f"(loaded in {time.monotonic() - started:.1f} s, batch {batch})", file=sys.stderr, flush=True)

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever, which runs in this very thread: ask from another one
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        predictor.close()
    print("haneul: replica stopped", file=sys.stderr, flush=True)
    sys.exit(0)


# --------------------------------------------------------------------------------------------------
# submit mode


def submit(bound: Bound) -> NoReturn:
    """Predict a competition's hidden test inputs for ``haneul submit``: load the checkpoint the server
    handed over, read ``HANEUL_SUBMIT_INPUTS`` (JSON Lines: one input per line), call ``infer`` on
    batches of ``HANEUL_SUBMIT_BATCH`` inputs and write one prediction per line (JSON) to
    ``HANEUL_SUBMIT_PREDICTIONS``, all or nothing; exit 0. The process never sees the labels: the
    server scores the predictions afterwards, in another process."""
    infer = bound.get("infer")
    if infer is None:
        _fail(EXIT_NO_INFER, "submit mode needs haneul.bind(infer=...): this script bound no infer function; "
              "bind load and infer before training")
    env = os.environ
    try:
        local = Path(env["HANEUL_SERVE_CHECKPOINT_FILE"])
        kind = env.get("HANEUL_SERVE_CHECKPOINT_KIND") or "file"
        inputs_path = Path(env["HANEUL_SUBMIT_INPUTS"])
        out_path = Path(env["HANEUL_SUBMIT_PREDICTIONS"])
        batch = max(1, int(env.get("HANEUL_SUBMIT_BATCH") or 64))
    except (KeyError, ValueError) as exc:
        _fail(EXIT_START_FAILED, f"submit mode needs HANEUL_SERVE_CHECKPOINT_FILE, HANEUL_SUBMIT_INPUTS and "
              f"HANEUL_SUBMIT_PREDICTIONS ({exc.__class__.__name__}: {exc}); submit with `haneul submit`")
    import orjson

    from haneul.io import atomic_open
    from haneul.platform import sdk

    started = time.monotonic()
    try:
        sdk._unpack(kind, local)
    except Exception as exc:  # the session's own load function may raise anything
        _fail(EXIT_START_FAILED, f"could not load the checkpoint: {exc.__class__.__name__}: {exc}"[:1000])
    try:
        with open(inputs_path, "rb") as fh:
            inputs = [orjson.loads(line) for line in fh if line.strip()]
    except (OSError, orjson.JSONDecodeError) as exc:
        _fail(EXIT_START_FAILED, f"could not read the test inputs: {exc}")
    predictor = Predictor(infer)
    try:
        with atomic_open(out_path, "wb") as out:
            for at in range(0, len(inputs), batch):
                for prediction in predictor.predict(inputs[at:at + batch]):
                    out.write(orjson.dumps(prediction, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    except PredictionFailed as exc:
        _fail(EXIT_PREDICTION_FAILED, exc.message)
    except TypeError as exc:
        _fail(EXIT_PREDICTION_FAILED, f"infer returned predictions that are not JSON ({exc}); return lists, "
              "numbers, strings and dicts")
    print(f"haneul: predicted {len(inputs)} inputs in {time.monotonic() - started:.1f} s (batch {batch})",
          file=sys.stderr, flush=True)
    sys.exit(0)


MODES: dict[str, Callable[[Bound], NoReturn]] = {"serve": serve, "submit": submit}


class Predictor:
    """Calls ``infer`` one request at a time, or gathers concurrent requests into batches of up to
    ``batch`` inputs waiting at most ``wait_s`` for the batch to fill. ``infer`` is never called from
    two threads at once: most models are not safe to call concurrently."""

    def __init__(self, infer: Callable[..., Any], *, batch: int = 1, wait_s: float = 0.0) -> None:
        self.infer = infer
        self.batch = max(1, batch)
        self.wait_s = max(0.0, wait_s)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: list[tuple[list[Any], Future[list[Any]]]] = []
        self._closed = False
        self._worker: threading.Thread | None = None
        if self.batch > 1:
            self._worker = threading.Thread(target=self._gather, name="haneul-batcher", daemon=True)
            self._worker.start()

    def predict(self, inputs: list[Any]) -> list[Any]:
        if self._worker is None or not inputs:
            with self._lock:
                return self._call(inputs)
        future: Future[list[Any]] = Future()
        with self._cond:
            self._queue.append((inputs, future))
            self._cond.notify()
        return future.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _call(self, inputs: list[Any]) -> list[Any]:
        try:
            out = self.infer(inputs)
        except Exception as exc:
            raise PredictionFailed(f"infer raised {exc.__class__.__name__}: {exc}"[:1000]) from None
        try:
            out = list(out)
        except TypeError:
            raise PredictionFailed(f"infer returned {type(out).__name__}, not a list of predictions") from None
        if len(out) != len(inputs):
            raise PredictionFailed(f"infer returned {len(out)} predictions for {len(inputs)} inputs; "
                                   "it must return one prediction per input")
        return out

    def _gather(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                deadline = time.monotonic() + self.wait_s
                while sum(len(i) for i, _ in self._queue) < self.batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                taken: list[tuple[list[Any], Future[list[Any]]]] = []
                size = 0
                while self._queue and (not taken or size + len(self._queue[0][0]) <= self.batch):
                    item = self._queue.pop(0)
                    taken.append(item)
                    size += len(item[0])
            self._run(taken)

    def _run(self, taken: list[tuple[list[Any], Future[list[Any]]]]) -> None:
        inputs = [x for part, _ in taken for x in part]
        try:
            out = self._call(inputs)
        except PredictionFailed as exc:
            for _, future in taken:
                future.set_exception(exc)
            return
        at = 0
        for part, future in taken:
            future.set_result(out[at:at + len(part)])
            at += len(part)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    predictor: Predictor


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the platform's connection pool reuses connections
    disable_nagle_algorithm = True  # headers and body leave at once instead of waiting for an ACK
    server: _Server

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ready"})
        else:
            self._answer(404, {"error": {"code": "not_found", "message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        import orjson

        if self.path != "/predict":
            self._answer(404, {"error": {"code": "not_found", "message": f"no route {self.path}"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = orjson.loads(self.rfile.read(length))
            inputs = body["inputs"]
            if not isinstance(inputs, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": {"code": "invalid_input",
                                         "message": 'the body must be {"inputs": [x1, x2, ...]}'}})
            return
        try:
            predictions = self.server.predictor.predict(inputs)
            self._answer(200, {"predictions": predictions})
        except PredictionFailed as exc:
            self._answer(502, {"error": exc.to_dict()})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        import orjson

        try:
            data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as exc:
            status = 502
            data = orjson.dumps({"error": PredictionFailed(
                f"infer returned predictions that are not JSON ({exc}); return lists, numbers, strings "
                "and dicts").to_dict()})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would fill the replica's log; the platform keeps the metrics
