"""``haneul dialog``: long-term dialogue memory — show / update / audit / revert a person's memory,
summarise sessions, derive training pairs, train the memory operator and evaluate memory updates."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from haneul.cli import output
from haneul.cli.options import (
    DeviceOpt,
    EndpointModelOpt,
    JsonOpt,
    SeedOpt,
    ThreadsOpt,
    Typer,
    auto_device,
    out_option,
)

app = Typer(
    help="Long-term dialogue memory (Keep Me Updated): PASS / APPEND / REPLACE / DELETE memory updates.",
    no_args_is_help=True,
)
memory_app = Typer(help="Show, update, audit and revert one person's memory.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")

DB_HELP = ("SQLAlchemy URL of the memory database (default: the haneul server's platform database when "
           "HANEUL_SERVER is set, else sqlite under HANEUL_HOME/dialog/memory.db).")
OPERATOR_HELP = ("Memory operator: auto (the --model classifier: yours, else the one shipped in the package; lexical if "
                 "none loads), classifier, lm, lexical, append-only, latest-only.")
MODEL_HELP = ("Trained classifier: a name under HANEUL_HOME/dialog/operators or a model folder; 'default' falls back to "
              "the classifier shipped in the package.")
ENDPOINT_HELP = "OpenAI-compatible base URL for LM backends, e.g. http://127.0.0.1:8000/v1."


def _quiet_warnings() -> None:
    """Input warnings are part of each command's output; do not print them twice."""
    import warnings

    from haneul.dialog.text import DialogWarning

    warnings.simplefilter("ignore", DialogWarning)


@memory_app.command("show")
def memory_show(
    person: str = typer.Argument(..., help="Person id (e.g. a phone-call recipient id)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: JsonOpt = False,
) -> None:
    """Print the current memory of PERSON (an empty memory is version 0)."""
    from haneul.dialog.memory import Memory

    mem = Memory.load(person, url=db)

    def show() -> None:
        if not mem.sentences:
            output.say(f"no memory yet for {person!r} (version {mem.version})")
            return
        output.print_table(list(enumerate(mem.sentences)), columns=["#", "sentence"], right=["#"],
                           title=f"memory of {person} · version {mem.version}")

    result = {"person": mem.person, "version": mem.version, "sentences": mem.sentences}
    output.emit(result, as_json=as_json, show=show)


def _show_lines(lines: list[str]) -> None:
    """Fallbacks, notes and input warnings: part of the result, shown after it in yellow."""
    for line in lines:
        output.say(line, style="yellow")


def _result_table(res) -> None:
    changed = [(p.memory, p.summary, p.op.value) for p in res.ops if p.op.value != "APPEND"]
    if res.ops:
        output.print_table(changed, columns=["memory", "summary", "op"],
                           title=f"version {res.version} · operator {res.operator}")
    output.say("new memory", style="bold")
    for s in res.new_memory:
        output.say(f"  • {s}")
    _show_lines(([f"fallback: {res.fallback}"] if res.fallback else []) + res.notes + res.warnings)


@memory_app.command("update")
def memory_update(
    person: str = typer.Argument(..., help="Person id."),
    sentences: list[str] = typer.Argument(None, help="Summary sentences of the new session (or use --file)."),
    file: Path | None = typer.Option(None, "--file", help="Read summary sentences from this file, one per line."),
    operator: str = typer.Option("auto", "--operator", help=OPERATOR_HELP),
    model: str = typer.Option("default", "--model", help=MODEL_HELP),
    endpoint: str | None = typer.Option(None, "--endpoint", help=ENDPOINT_HELP),
    lm_model: EndpointModelOpt = None,
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the LM before falling back to the classifier."),
    session: str | None = typer.Option(None, "--session", help="Session id recorded with the new version."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: JsonOpt = False,
) -> None:
    """Update PERSON's memory with one session's summary sentences and store the new version."""
    _quiet_warnings()
    from haneul.dialog.memory import Memory
    from haneul.errors import InvalidInput, NotFound

    summary = list(sentences or [])
    if file is not None:
        if not file.exists():
            raise NotFound(f"no such file {file}; pass a text file with one summary sentence per line")
        summary += file.read_text(encoding="utf-8").splitlines()
    if not any(s.strip() for s in summary):
        raise InvalidInput("no summary sentences given; pass them as arguments or with --file FILE")
    # the operator is passed by name: with a server configured, the server runs it
    res = Memory.load(person, url=db).update(summary, operator=operator, session=session, model=model,
                                             endpoint=endpoint, lm_model=lm_model, timeout=timeout)
    output.emit(res, as_json=as_json, show=lambda: _result_table(res))


@memory_app.command("history")
def memory_history(
    person: str = typer.Argument(..., help="Person id."),
    ops: bool = typer.Option(False, "--ops", help="Also list every non-APPEND pair operation."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: JsonOpt = False,
) -> None:
    """List every stored version of PERSON's memory with the operator and operations behind it."""
    import datetime as dt

    from haneul.dialog.memory import Memory

    versions = Memory.load(person, url=db).history()

    def show() -> None:
        if not versions:
            output.say(f"no memory yet for {person!r}")
            return
        rows: list[tuple[str, str, str, str, str]] = []
        for v in versions:
            how = v.operator + (f" (from v{v.reverted_from})" if v.reverted_from is not None else "")
            if v.fallback:
                how += " (LM fallback)"
            when = dt.datetime.fromtimestamp(v.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            rows.append((str(v.version), when, how, "\n".join(v.summary), "\n".join(v.sentences)))
            if ops:
                rows += [("", "", p.op.value, p.summary, p.memory) for p in v.ops if p.op.value != "APPEND"]
        output.print_table(rows, columns=["version", "time (UTC)", "operator", "summary", "memory"],
                           title=f"memory history of {person}")

    output.emit([v.to_dict() for v in versions], as_json=as_json, show=show)


@memory_app.command("revert")
def memory_revert(
    person: str = typer.Argument(..., help="Person id."),
    version: int = typer.Argument(..., help="Version to restore (0: the empty memory)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: JsonOpt = False,
) -> None:
    """Restore VERSION's sentences as a new version (history is kept, nothing is deleted)."""
    from haneul.dialog.memory import Memory

    v = Memory.load(person, url=db).revert(version)
    output.emit(v, as_json=as_json, show=lambda: output.say(
        f"{person}: version {v.version} restores version {version} ({len(v.sentences)} sentences)"))


@app.command("summarize")
def summarize(
    data: Path = typer.Argument(..., help="A JSON list of {role, text} turns, or a CareCall-memory file with --session."),
    session: str | None = typer.Option(None, "--session", help="guid of the session to summarise in a CareCall-memory file."),
    backend: str = typer.Option("extractive", "--backend",
                                help="extractive (no LM), lm (OpenAI-compatible endpoint) or finetuned (a folder from train-summarizer, --model)."),
    model: Path | None = typer.Option(None, "--model", help="Fine-tuned summariser folder for --backend finetuned."),
    endpoint: str | None = typer.Option(None, "--endpoint", help=ENDPOINT_HELP),
    lm_model: EndpointModelOpt = None,
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the LM before falling back to extractive."),
    as_json: JsonOpt = False,
) -> None:
    """Summarise one dialogue session into sentences of new information about the user."""
    _quiet_warnings()
    from haneul.dialog.data import load_carecall
    from haneul.dialog.summarizer import get_summarizer
    from haneul.errors import InvalidInput, NotFound

    if not data.exists():
        raise NotFound(f"no such file {data}; pass a dialogue JSON file")
    memory: list[str] = []
    if session is not None:
        found = [s for ep in load_carecall(data) for s in ep if s.guid == session]
        if not found:
            raise NotFound(f"no session {session!r} in {data.name}; pass a guid like interactive-1-S2")
        dialogue, memory = found[0].dialogue, found[0].memory
    else:
        try:
            dialogue = json.loads(data.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{data} is not valid JSON (line {exc.lineno}); fix the file") from None
        if isinstance(dialogue, list) and dialogue and isinstance(dialogue[0], list):
            raise InvalidInput(f"{data.name} is a CareCall-memory file; pick a session with --session GUID")
    res = get_summarizer(backend, endpoint=endpoint, lm_model=lm_model, timeout=timeout, model=model).summarize(dialogue, memory)

    def show() -> None:
        for s in res.sentences:
            output.say(f"• {s}")
        _show_lines(([f"fallback: {res.fallback}"] if res.fallback else []) + res.warnings)

    output.emit(res, as_json=as_json, show=show)


@app.command("derive-pairs")
def derive_pairs_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="CareCall-memory-format JSON file (list of episodes of sessions)."),
    out: Path = out_option("Write labelled pairs here as JSONL {memory, summary, op, guid}."),
    threshold: float = typer.Option(0.5, "--threshold", help="Character-bigram Jaccard at which two sentences match."),
    as_json: JsonOpt = False,
) -> None:
    """Derive PASS / APPEND / REPLACE / DELETE pair labels by aligning memory k, summary k and memory k+1."""
    _quiet_warnings()
    from collections import Counter

    from haneul.dialog.data import derive_pairs, load_carecall, write_pairs

    rows = derive_pairs(load_carecall(data), threshold)
    n = write_pairs(out, rows)
    counts = dict(sorted(Counter(r["op"] for r in rows).items()))
    output.emit({"out": out, "pairs": n, "ops": counts}, as_json=as_json, show=lambda: output.say(
        f"wrote {n} pairs to {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})"))


@app.command("synth-pairs")
def synth_pairs_cmd(
    n: int = typer.Option(2000, "-n", "--count", help="How many labelled pairs to generate."),
    seed: SeedOpt = 0,
    out: Path = out_option("Write the pairs here as JSONL {memory, summary, op}."),
    as_json: JsonOpt = False,
) -> None:
    """Generate template-made PASS / APPEND / REPLACE / DELETE pairs for training the memory operator (not for evaluation)."""
    from collections import Counter

    from haneul.dialog.data import write_pairs
    from haneul.dialog.synth import generate_pairs

    pairs = generate_pairs(n, seed=seed)
    written = write_pairs(out, ({"memory": m, "summary": s, "op": op.value} for m, s, op in pairs))
    counts = dict(sorted(Counter(op.value for _, _, op in pairs).items()))
    output.emit({"out": out, "pairs": written, "ops": counts}, as_json=as_json, show=lambda: output.say(
        f"wrote {written} pairs to {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})"))


@app.command("train-operator")
def train_operator_cmd(
    nli: list[Path] = typer.Option([], "--nli", help="KorNLI TSV file(s) (sentence1, sentence2, gold_label) for phase 1; repeatable."),
    pairs: list[Path] = typer.Option([], "--pairs", help="Labelled pairs JSONL file(s) {memory, summary, op}; repeatable."),
    data: list[Path] = typer.Option([], "--data", "-d", help="CareCall-memory-format file(s) to derive labelled pairs from; repeatable."),
    synthetic: int = typer.Option(0, "--synthetic", help="Add this many generated pairs (haneul dialog synth-pairs) to the labelled ones."),
    unfreeze: bool = typer.Option(False, "--unfreeze", help="Phase 2 trains the sentence encoder too (worth it with thousands of pairs)."),
    calibrate_on: list[Path] = typer.Option([], "--calibrate", help="CareCall-memory-format file(s) of development updates (not trained on) to choose the keep-when-unsure decision thresholds on; repeatable."),
    name: str = typer.Option("default", "--name", help="Save as HANEUL_HOME/dialog/operators/NAME (default: used by --operator auto)."),
    out: Path | None = out_option("Save to this folder instead of the named one.", None),
    preset: str = typer.Option("small", "--preset", help="Model size: tiny, small or base."),
    nli_epochs: int = typer.Option(2, "--nli-epochs", help="Epochs over the NLI pairs (phase 1)."),
    op_epochs: int = typer.Option(30, "--op-epochs", help="Epochs over the operation pairs (phase 2)."),
    nli_limit: int | None = typer.Option(None, "--nli-limit", help="Use at most this many NLI pairs."),
    batch_size: int = typer.Option(64, "--batch-size", help="Pairs per optimisation step."),
    lr: float = typer.Option(2e-3, "--lr", help="AdamW learning rate."),
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the memory-operation pair classifier (KorNLI first when given, then operation pairs; then calibrate)."""
    _quiet_warnings()
    from rich.progress import BarColumn, TaskID, TextColumn

    from haneul.dialog.data import derive_pairs, load_carecall, load_kornli, load_pairs
    from haneul.dialog.model import save_classifier
    from haneul.dialog.operators import Op
    from haneul.dialog.train import TrainConfig, train_operator

    nli_rows = [r for p in nli for r in load_kornli(p)]
    op_rows = [r for p in pairs for r in load_pairs(p)]
    for d in data:
        op_rows += [(r["memory"], r["summary"], Op(r["op"])) for r in derive_pairs(load_carecall(d))]
    if synthetic > 0:
        from haneul.dialog.synth import generate_pairs

        op_rows += generate_pairs(synthetic, seed=seed)
    cfg = TrainConfig(preset=preset, nli_epochs=nli_epochs, op_epochs=op_epochs, batch_size=batch_size, lr=lr,
                      seed=seed, threads=threads, nli_limit=nli_limit, freeze_encoder=not unfreeze)
    with output.progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                         disable=as_json) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, epoch: int, total: int, m: dict[str, float]) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, info="")
            bar.update(tasks[phase], completed=epoch, info=f"loss {m['loss']:.3f} acc {m['acc']:.3f}")

        model, info = train_operator(nli_rows, op_rows, cfg, progress=progress)
    if calibrate_on:
        from dataclasses import asdict

        from haneul.dialog.data import transitions
        from haneul.dialog.train import calibrate

        rule, cal = calibrate(model, [tr for f in calibrate_on for tr in transitions(load_carecall(f))])
        info.update(decision=asdict(rule), calibration={**cal, "files": [str(f) for f in calibrate_on]})
    path = save_classifier(model, out if out is not None else name, meta={**info, "preset": preset})
    info["path"] = str(path)
    output.emit(info, as_json=as_json, show=lambda: output.say(f"saved the memory operator to {path}"))


@app.command("train-summarizer")
def train_summarizer_cmd(
    data: list[Path] = typer.Option(..., "--data", "-d", help="CareCall-memory-format JSON file(s) of (dialogue, summary) sessions; repeatable."),
    base: str = typer.Option(..., "--base", help="Causal LM to fine-tune: a Hugging Face (Llama-compatible) model folder, 'smollm2' or a name known to `haneul lm`."),
    out: Path = out_option("Write the fine-tuned summariser folder here (use it with --backend finetuned --model DIR)."),
    steps: int = typer.Option(200, "--steps", help="Optimisation steps."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (default: 2e-5 full, 2e-4 with --lora)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Packed rows per step."),
    seq_len: int = typer.Option(1024, "--seq-len", help="Tokens per packed row; longer sessions are cut (and skipped when the summary falls off)."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (merged back into the saved model) instead of all weights."),
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a causal LM into a session summariser on (dialogue, summary) pairs of CareCall-memory files."""
    _quiet_warnings()
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    from haneul.dialog.data import load_carecall
    from haneul.dialog.finetune import SummarizerTrainConfig, train_summarizer

    episodes = [ep for d in data for ep in load_carecall(d)]
    cfg = SummarizerTrainConfig(steps=steps, lr=lr, batch_size=batch_size, seq_len=seq_len, lora=lora,
                                device=auto_device(device), seed=seed)
    with output.progress(TextColumn("fine-tuning"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[info]}"), disable=as_json) as bar:
        task = bar.add_task("train", total=steps, info="")

        def on_step(step: int, loss: float) -> None:
            bar.update(task, completed=step + 1, info=f"loss {loss:.3f}")

        info = train_summarizer(episodes, base, out, cfg, on_step=on_step)
    output.emit(info, as_json=as_json, show=lambda: output.say(
        f"saved the summariser to {out} ({info['sessions']} sessions, {info['steps']} steps, "
        f"loss {info['first_loss']:.3f} → {info['final_loss']:.3f})"))


@app.command("eval")
def eval_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="CareCall-memory-format JSON file to evaluate memory updates on."),
    operator: list[str] = typer.Option(["auto"], "--operator", help=OPERATOR_HELP + " Repeatable."),
    model: str = typer.Option("default", "--model", help=MODEL_HELP),
    endpoint: str | None = typer.Option(None, "--endpoint", help=ENDPOINT_HELP),
    lm_model: EndpointModelOpt = None,
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the LM before falling back."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also score append-only and latest-only."),
    summarizer: str = typer.Option("reference", "--summarizer",
                                   help="reference: the file's summaries; extractive, lm or finetuned: summarise each session's dialogue first (scores the whole pipeline, no op accuracy)."),
    summarizer_model: Path | None = typer.Option(None, "--summarizer-model", help="Fine-tuned summariser folder for --summarizer finetuned."),
    threshold: float = typer.Option(0.5, "--threshold", help="Character-bigram Jaccard at which a predicted sentence matches a reference one."),
    as_json: JsonOpt = False,
) -> None:
    """Memory-update precision / recall / F1 and operation accuracy per session index, with baselines."""
    _quiet_warnings()
    from haneul.dialog.data import load_carecall
    from haneul.dialog.evaluate import evaluate
    from haneul.dialog.operators import get_operator

    episodes = load_carecall(data)
    names = list(dict.fromkeys(operator + (["append-only", "latest-only"] if baselines else [])))
    ops = {}
    for n in names:
        op = get_operator(n, model=model, endpoint=endpoint, lm_model=lm_model, timeout=timeout)
        ops[n if n != "auto" else f"auto:{op.name}"] = op
    summ = None
    if summarizer != "reference":
        from haneul.dialog.summarizer import get_summarizer

        summ = get_summarizer(summarizer, endpoint=endpoint, lm_model=lm_model, timeout=timeout, model=summarizer_model)
    with output.progress(disable=as_json, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)
        report = evaluate(episodes, ops, threshold=threshold, summarizer=summ,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
    numbers = ["k", "updates", "P", "R", "F1", "op acc", "pairs", "fallbacks"]
    rows = [(r["session"], r["operator"], r["transitions"], f"{r['precision']:.3f}", f"{r['recall']:.3f}",
             f"{r['f1']:.3f}", "—" if r["op_acc"] is None else f"{r['op_acc']:.3f}", r["pairs"], r["fallbacks"])
            for r in report.rows]
    title = (f"memory update k → k+1 on {data.name}, {report.summarizer} summaries "
             f"(match: char-bigram Jaccard ≥ {threshold:g})")
    output.emit(report, as_json=as_json, show=lambda: output.print_table(
        rows, columns=["k", "operator", *numbers[1:]], right=numbers, no_wrap=["operator"], title=title))


@app.command("respond")
def respond_cmd(
    person: str = typer.Argument(..., help="Person id whose memory grounds the answer."),
    dialogue: Path = typer.Option(..., "--dialogue", help="JSON list of {role, text} turns so far."),
    endpoint: str | None = typer.Option(None, "--endpoint", help=ENDPOINT_HELP + " Without it a template answers."),
    lm_model: EndpointModelOpt = None,
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the LM before answering from a template."),
    top_k: int = typer.Option(3, "--top-k", help="Memory sentences to retrieve into the prompt."),
    tokens: str = typer.Option("bigram", "--tokens", help="Retrieval terms: bigram (characters) or morpheme (kiwipiepy)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: JsonOpt = False,
) -> None:
    """Produce the next system turn, bringing up relevant remembered facts."""
    from haneul.dialog.lm import ChatClient
    from haneul.dialog.memory import Memory
    from haneul.dialog.responder import Responder
    from haneul.errors import InvalidInput, NotFound

    if not dialogue.exists():
        raise NotFound(f"no such file {dialogue}; pass a JSON list of {{role, text}} turns")
    try:
        turns = json.loads(dialogue.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{dialogue} is not valid JSON (line {exc.lineno}); fix the file") from None
    client = ChatClient(endpoint, model=lm_model, timeout=timeout) if endpoint else None
    res = Responder(client, top_k=top_k, tokens=tokens).respond(Memory.load(person, url=db).sentences, turns)
    output.emit(res, as_json=as_json, show=lambda: output.say(res.text))
