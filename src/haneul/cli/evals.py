"""``haneul eval``: score language models on Korean tasks with zero- and few-shot prompts.

Only typer, rich and the standard library are imported here; the harness (and torch) load inside
the commands so ``haneul --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from haneul.cli import output
from haneul.cli.options import DeviceOpt, EndpointModelOpt, JsonOpt, SeedOpt, Typer, auto_device, out_option

app = Typer(help="Evaluate language models on Korean tasks (zero-/few-shot, resumable).", no_args_is_help=True)


def _ints(text: str, what: str) -> list[int]:
    from haneul.errors import InvalidInput

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput(f"{what} {text!r} must be comma-separated integers, e.g. 0,1,4,8") from None


def _default_out(model: str, task: str) -> Path:
    import hashlib
    import re

    from haneul.settings import get_settings

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/")).name or "model")[:40]
    digest = hashlib.sha256(f"{model}\x1f{task}".encode()).hexdigest()[:8]
    return get_settings().home / "evals" / f"{slug}-{digest}"


@app.command("run")
def run(
    model: str = typer.Option(..., "--model", "-m", help="A Hugging Face model folder (haneul checkpoints are "
                              "such folders), a model name known to `haneul lm`, 'smollm2' for the embedded "
                              "SmolLM2-135M-Instruct, or the http(s)://host/v1 URL of an OpenAI-compatible endpoint."),
    task: str = typer.Option(..., "--task", "-t", help="Tasks as NAME=PATH[,NAME=PATH...] (see `haneul eval tasks`), "
                             "or a YAML task spec file that names its own data."),
    shots: str = typer.Option("0", "--shots", help="Comma-separated numbers of demonstrations, e.g. 0,1,4,8."),
    seeds: int = typer.Option(1, "--seeds", help="Few-shot samples per shot count (different demonstrations); "
                              "zero-shot runs once."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first N items of each task."),
    fewshot: list[str] = typer.Option([], "--fewshot", help="NAME=PATH: draw demonstrations for task NAME from this "
                                      "file (e.g. the train split) instead of the evaluated file. Repeatable."),
    template: list[str] = typer.Option([], "--template", help="NAME=TEMPLATE: override a task's prompt template "
                                       "(Python format string over the task's fields, \\n for newlines). Repeatable."),
    normalization: str = typer.Option("none", "--norm", help="Length normalisation of option log-likelihoods: "
                                      "none, token (per token), char (per character) or byte (per UTF-8 byte)."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Contextual calibration: divide option "
                                   "probabilities by those given a content-free ('N/A') input."),
    fixed_demos: bool = typer.Option(False, "--fixed-demos", help="Use one demonstration set per task and seed "
                                     "for all items (drawn per item otherwise); the shared few-shot block is then "
                                     "encoded once per batch, which is much faster."),
    out: Path | None = out_option("Results folder (items.jsonl journal, results.json, results.md). Rerunning "
                                  "with the same folder resumes. Default: HANEUL_HOME/evals/<model>-<hash>.", None),
    endpoint_model: EndpointModelOpt = "default",
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Bearer token for the "
                                       "endpoint (or OPENAI_API_KEY)."),
    device: DeviceOpt = "auto",
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for standard errors."),
    as_json: JsonOpt = False,
    publish: bool | None = typer.Option(None, "--publish/--no-publish", help="Send the results to the haneul "
                                        "server's /evals page. Default: publish when a server is configured "
                                        "(HANEUL_SERVER, always set inside platform sessions). A server that "
                                        "cannot be reached gives a warning; the local results stay."),
) -> None:
    """Score MODEL on tasks with 0..k-shot prompts and write a JSON + Markdown report.

    The device applies to local models only."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from haneul.errors import InvalidInput
    from haneul.evals import EvalConfig, load_backend, parse_task_arg, run_eval, validate_runs

    runs = parse_task_arg(task)
    by_name = {r.task.name: r for r in runs}
    for item in fewshot:
        name, _, path = item.partition("=")
        if name not in by_name or not path:
            raise InvalidInput(f"--fewshot {item!r} must be NAME=PATH for one of the tasks ({', '.join(by_name)})")
        by_name[name].fewshot = Path(path).expanduser()
    for item in template:
        name, _, text = item.partition("=")
        if name not in by_name or not text:
            raise InvalidInput(f"--template {item!r} must be NAME=TEMPLATE for one of the tasks ({', '.join(by_name)})")
        by_name[name].template = text.replace("\\n", "\n")
    config = EvalConfig(shots=_ints(shots, "--shots"), seeds=seeds, limit=limit, normalization=normalization,
                        calibrate=calibrate, bootstrap=bootstrap, fixed_demos=fixed_demos)
    out_dir = out or _default_out(model, task)
    # every data file is read and checked before the model loads: a bad row costs seconds, not a load
    validate_runs(runs, config)
    backend = load_backend(model, endpoint_model=endpoint_model, api_key=api_key, device=auto_device(device))
    with output.progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                         transient=True, disable=as_json) as bar:
        handle = bar.add_task("scoring", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(handle, completed=done, total=total, description=name)

        results = run_eval(backend, runs, config, out_dir, progress=progress)
    _auto_publish(results, out_dir, publish)
    output.emit(results, as_json=as_json, show=lambda: _print_results(results))
    if not as_json:
        output.note(f"report: {out_dir / 'results.md'}")


def _auto_publish(results: dict, out_dir: Path, wanted: bool | None) -> None:
    """Publish after results.json is on disk, so the run survives a server that is down."""
    from haneul.settings import get_settings

    settings = get_settings()
    if wanted is False or (wanted is None and not settings.server):
        return
    from haneul.errors import HaneulError
    from haneul.evals.publish import publish

    try:
        info = publish(results, server=settings.server_url)
    except HaneulError as exc:
        output.note(f"warning: results not published ({exc.message}); they are kept in {out_dir / 'results.json'}"
                    f" — retry with `haneul eval publish {out_dir}`")
        return
    output.note(f"published: run {info['id']} on {settings.server_url}/evals")


def _print_results(results: dict) -> None:
    """One table per task: a row per shot count, mean ± standard error (seed standard deviation) per metric."""
    for name, t in results["tasks"].items():
        metrics = list(next(iter(t["shots"].values()))["mean"].keys())
        columns = ["shots", *(f"{m} ± se (seed sd)" for m in metrics)]
        rows = [(k, *(f"{cell['mean'][m]:.2f} ± {cell['se'][m]:.2f} ({cell['seed_std'][m]:.2f})" for m in metrics))
                for k, cell in t["shots"].items()]
        output.print_table(rows, columns=columns, right=columns, title=f"{name} (n={t['n']})")


@app.command("tasks")
def tasks(as_json: JsonOpt = False) -> None:
    """List the built-in tasks, their kind, metric and expected file format."""
    from haneul.evals import list_tasks

    rows = [{"name": t.name, "kind": t.kind, "metric": t.metric, "format": t.description} for t in list_tasks()]
    output.emit(rows, as_json=as_json, title="haneul eval tasks")


@app.command("show")
def show(
    folder: Path = typer.Argument(..., help="A results folder written by `haneul eval run`."),
    as_json: JsonOpt = False,
) -> None:
    """Print the results of a finished run (its results.json with --json)."""
    from haneul.errors import NotFound

    path = folder / "results.json"
    if not path.is_file():
        raise NotFound(f"{path} does not exist; pass the --out folder of a finished `haneul eval run`")
    results = json.loads(path.read_text(encoding="utf-8"))
    output.emit(results, as_json=as_json, show=lambda: _print_results(results))


@app.command("publish")
def publish_cmd(
    results: Path = typer.Argument(..., help="A results.json written by `haneul eval run`, or its --out folder."),
    server: str | None = typer.Option(None, "--server", help="Server URL. Default: HANEUL_SERVER, else "
                                      "http://HANEUL_HOST:HANEUL_PORT."),
    session: str | None = typer.Option(None, "--session", help="Platform session id to link the run to "
                                       "(default: HANEUL_SESSION when set)."),
    as_json: JsonOpt = False,
) -> None:
    """Upload a finished run to the server's results page (/evals). Publishing a run twice keeps one copy."""
    from haneul.evals.publish import publish, read_results
    from haneul.settings import get_settings

    url = (server or get_settings().server_url).rstrip("/")
    info = publish(read_results(results), server=url, session=session)
    state = "published" if info.get("created") else "already published"
    output.emit(info, as_json=as_json, show=lambda: output.say(
        f"{state}: run {info['id']} ({info['model']}: {', '.join(info['tasks'])}) on {url}/evals"))


def _named_paths(items: list[str], option: str, example: str) -> dict[str, list[str]]:
    from haneul.errors import InvalidInput

    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidInput(f"{option} {item!r} must be NAME=VALUE, e.g. {option} {example}")
        if name.strip() in out:
            raise InvalidInput(f"{option} names {name.strip()!r} twice; give each a distinct name")
        out[name.strip()] = [v.strip() for v in value.split("+" if option == "--mix" else ",") if v.strip()]
    return out


@app.command("corpus-study")
def corpus_study(
    corpus: list[str] = typer.Option(..., "--corpus", "-c", help="NAME=PATH[,PATH...]: a pre-training corpus "
                                     "(text or JSONL files, optionally .gz). Repeat for each source."),
    task: str = typer.Option(..., "--task", "--tasks", "-t", help="Task suite as for `haneul eval run`: "
                             "NAME=PATH[,NAME=PATH...] or a YAML spec."),
    sizes: str = typer.Option("1M,4M,16M", "--sizes", help="Training tokens per model, comma-separated "
                              "(k, M, G suffixes); each model makes one pass over the first SIZE tokens."),
    mix: list[str] = typer.Option([], "--mix", help="NAME=A+B[+C]: also train on these corpora's documents "
                                  "interleaved one by one. Repeatable."),
    preset: str = typer.Option("ko-nano", "--preset", "-p", help="Model preset trained on every corpus."),
    shots: str = typer.Option("0,4", "--shots", help="Comma-separated numbers of demonstrations."),
    seeds: int = typer.Option(1, "--seeds", help="Demonstration draws per shot count."),
    limit: int | None = typer.Option(200, "--limit", help="Items scored per task (0 for all)."),
    fewshot: list[str] = typer.Option([], "--fewshot", help="NAME=PATH: demonstrations for task NAME from "
                                      "this file. Repeatable."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Shared tokenizer size (default: the "
                                          "preset's recipe)."),
    tokenizer_docs: int = typer.Option(50_000, "--tokenizer-docs", help="Documents (equal share per corpus) "
                                       "the shared tokenizer learns from."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Sequences per step (default: recipe)."),
    seq_len: int | None = typer.Option(None, "--seq-len", help="Tokens per training sequence (default: the preset's whole context window, which few-shot prompts fill)."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (default: recipe)."),
    seed: SeedOpt = 0,
    workers: int = typer.Option(1, "--workers", "-j", help="Processes that tokenize the corpora."),
    device: DeviceOpt = "auto",
    sessions: bool = typer.Option(False, "--sessions", help="Run each cell as a platform session on the "
                                  "configured server (HANEUL_SERVER) and wait for all of them."),
    out: Path = out_option("Study folder; rerunning with the same folder resumes."),
    as_json: JsonOpt = False,
) -> None:
    """Train the same small model on each corpus, mixture and size, score each on the task suite, and
    write the table and plots: accuracy per source and size, mixtures vs their parts, and validation
    perplexity vs in-context accuracy (Pearson / Spearman).

    Example: haneul eval corpus-study -c reviews=reviews.jsonl.gz -c news=news.txt --mix both=reviews+news
    --sizes 250k,1M -t nsmc=ratings_test.txt --shots 0,4 -o study
    """
    from haneul.errors import InvalidInput
    from haneul.evals.corpus_study import StudyConfig, parse_sizes, run_study
    from haneul.settings import get_settings

    if sessions and not get_settings().server:
        raise InvalidInput("--sessions needs a platform server; set HANEUL_SERVER (or run `haneul server`) "
                           "or leave --sessions out to train here")
    fewshot_paths = {k: v[0] for k, v in _named_paths(fewshot, "--fewshot", "nsmc=ratings_train.txt").items()}
    cfg = StudyConfig(
        corpora=_named_paths(corpus, "--corpus", "reviews=reviews.jsonl.gz"), tasks=task,
        sizes=parse_sizes(sizes), mixtures=_named_paths(mix, "--mix", "both=reviews+news"), preset=preset,
        shots=_ints(shots, "--shots"), seeds=seeds, limit=limit or None, fewshot=fewshot_paths,
        vocab_size=vocab_size, tokenizer_docs=tokenizer_docs, batch_size=batch_size, seq_len=seq_len, lr=lr,
        seed=seed, workers=workers, device=device,
    )
    with output.progress(transient=True) as bar:
        handle = bar.add_task("preparing", total=None)

        def log(message: str) -> None:
            bar.console.print(message, highlight=False)

        def on_step(cell_id: str, step: int, steps: int, metrics: dict[str, float]) -> None:
            bar.update(handle, completed=step, total=steps, description=f"{cell_id} loss {metrics['loss']:.3f}")

        summary = run_study(cfg, out, sessions=sessions, log=log, on_step=on_step)
    from haneul.evals.corpus_study import markdown_study

    output.emit(summary, as_json=as_json, show=lambda: output.say(markdown_study(summary)))
    if not as_json:
        output.note(f"report: {out / 'results.md'} (plots beside it)")


@app.command("corpus-study-cell")
def corpus_study_cell(
    study: Path = typer.Argument(..., help="A study folder prepared by `haneul eval corpus-study`."),
    cell: str = typer.Argument(..., help="The cell to run, e.g. reviews@1M (see cells/ or results.md)."),
) -> None:
    """Train and score one cell of a corpus study (what each platform session of `--sessions` runs)."""
    from haneul.evals.corpus_study import run_cell

    record = run_cell(study, cell, log=output.note)
    output.print_json({k: record[k] for k in ("cell", "steps", "mean_val_perplexity", "tasks")})
