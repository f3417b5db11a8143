"""``haneul lm``: Korean language models — tokenizers, data, pre-training, generation, serving, recipes.

Only typer, rich and the standard library are imported here; each command imports torch and
``haneul.lm`` when it runs, so ``haneul --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from haneul.cli import output
from haneul.cli.options import DeviceOpt, JsonOpt, OptionalSeedOpt, SeedOpt, Typer, out_option

app = Typer(
    help="Korean language models: morpheme-aware tokenizers, GPT pre-training, generation and OpenAI-compatible serving.",
    no_args_is_help=True,
)
tokenizer_app = Typer(help="Train and inspect tokenizers (morpheme-bpe, bpe, unigram).", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")

Corpus = Annotated[
    list[Path],
    typer.Option("--corpus", "-c", help="Corpus file: text (one document per line) or JSONL with a 'text' field, optionally .gz. Repeat for several."),
]


@tokenizer_app.command("train")
def tokenizer_train(
    corpus: Corpus,
    out: Annotated[Path, out_option("Folder to write tokenizer.json, tokenizer_config.json and haneul.json to.")],
    vocab_size: Annotated[int, typer.Option("--vocab-size", "-v", help="Vocabulary size, special tokens included (at least 259).")] = 8192,
    kind: Annotated[str, typer.Option("--kind", "-k", help="morpheme-bpe (mecab-ko morphemes + byte-level BPE), bpe (plain byte-level BPE) or unigram.")] = "morpheme-bpe",
    min_frequency: Annotated[int, typer.Option(help="BPE: a pair must occur this often to be merged.")] = 2,
    max_docs: Annotated[int | None, typer.Option(help="Train on the first N documents only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a tokenizer on a corpus and save it (loadable by transformers.PreTrainedTokenizerFast)."""
    from haneul.lm.tokenizer import train_tokenizer

    with output.stderr().status(f"training {kind} tokenizer ({vocab_size} tokens)"):
        tok = train_tokenizer(out, files=[str(c) for c in corpus], kind=kind, vocab_size=vocab_size,
                              min_frequency=min_frequency, max_docs=max_docs)
    t = tok.meta["trained_on"]
    output.emit(tok.meta, as_json=as_json, show=lambda: output.say(
        f"saved {kind} tokenizer with {tok.vocab_size} tokens to {out} ({t['documents']:,} documents, "
        f"{t['characters']:,} characters, {tok.meta['train_seconds']} s)"))


@tokenizer_app.command("encode")
def tokenizer_encode(
    tokenizer: Annotated[Path, typer.Argument(help="Tokenizer folder.")],
    text: Annotated[str, typer.Argument(help="Text to encode.")],
    as_json: JsonOpt = False,
) -> None:
    """Show how a tokenizer splits TEXT (pieces, token ids and tokens per character)."""
    from haneul.lm.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    ids = tok.encode(text)
    # tokens that hold part of a character's UTF-8 bytes are shown together with their neighbours
    pieces: list[str] = []
    pending: list[int] = []
    for i in ids:
        pending.append(i)
        piece = tok.decode(pending)
        if "\ufffd" not in piece:
            pieces.append(piece)
            pending = []
    if pending:
        pieces.append(tok.decode(pending))
    result = {"ids": ids, "tokens": pieces, "characters": len(text), "tokens_per_char": len(ids) / max(len(text), 1)}
    output.emit(result, as_json=as_json,
                show=lambda: output.say(f"{' | '.join(pieces)}\n{len(ids)} tokens for {len(text)} characters"))


@app.command("prepare")
def prepare(
    tokenizer: Annotated[Path, typer.Option("--tokenizer", "-t", help="Tokenizer folder from `haneul lm tokenizer train`.")],
    corpus: Corpus,
    out: Annotated[Path, out_option("Folder for the token shards and meta.json.")],
    val_fraction: Annotated[float, typer.Option(help="Share of documents held out for validation.")] = 0.01,
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Tokenizer processes.")] = 1,
    max_docs: Annotated[int | None, typer.Option(help="Use the first N documents only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokenize a corpus into packed uint16/uint32 token shards with a train/validation split."""
    from haneul.lm.data import prepare_data

    with output.progress() as bar:
        task = bar.add_task("tokenizing (bytes)", total=None)

        def update(docs: int, nbytes: int) -> None:
            bar.update(task, completed=nbytes, description=f"tokenizing: {docs:,} documents")

        meta = prepare_data(tokenizer, [str(c) for c in corpus], out, val_fraction=val_fraction, seed=seed,
                            workers=workers, max_docs=max_docs, progress=update)
    columns = ["split", "documents", "tokens", "characters", "bytes", "chars/token"]
    rows = [(split, meta[split]["documents"], meta[split]["tokens"], meta[split]["characters"], meta[split]["bytes"],
             f"{meta[split]['characters'] / max(meta[split]['tokens'], 1):.3f}") for split in ("train", "val")]
    output.emit(meta, as_json=as_json,
                show=lambda: output.print_table(rows, columns=columns, right=columns, title=f"token shards in {out}"))


@app.command("pretrain")
def pretrain_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Token folder from `haneul lm prepare`.")],
    out: Annotated[Path, out_option("Run folder: checkpoint/ (resumable) and model/ (final, Hugging Face format).")],
    preset: Annotated[str, typer.Option("--preset", "-p", help="Model preset: ko-nano, ko-tiny, ko-small or ko-base.")] = "ko-tiny",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Sequences per micro-batch (per process).")] = 16,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    seq_len: Annotated[int | None, typer.Option(help="Training sequence length (default: the preset's context window).")] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    min_lr_ratio: Annotated[float, typer.Option(help="Final learning rate as a fraction of the peak.")] = 0.1,
    warmup: Annotated[int, typer.Option(help="Linear warm-up steps.")] = 100,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (matrices only).")] = 0.1,
    grad_clip: Annotated[float, typer.Option(help="Clip the gradient norm to this value.")] = 1.0,
    eval_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 200,
    eval_batches: Annotated[int, typer.Option(help="Validation batches per evaluation.")] = 20,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    seed: SeedOpt = 0,
    dtype: Annotated[str, typer.Option(help="auto (bf16/fp16 autocast on GPU, fp32 on CPU), fp32, bf16 or fp16.")] = "auto",
    device: DeviceOpt = "auto",
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="Compile the model with torch.compile.")] = False,
    max_seconds: Annotated[float | None, typer.Option(help="Stop and checkpoint after this many seconds.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Override a preset field, e.g. -m n_layer=6 -m d_model=384.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pre-train a GPT on prepared token shards; re-running with the same --out resumes exactly.

    Runs under torchrun for several processes (DDP), e.g. `torchrun --nproc-per-node 8 -m haneul lm pretrain ...`.
    """
    from haneul.lm.pretrain import TrainConfig, pretrain

    overrides = _parse_overrides(model or [])
    cfg = TrainConfig(
        data=str(data), out=str(out), preset=preset, model=overrides, steps=steps, batch_size=batch_size,
        grad_accum=grad_accum, seq_len=seq_len, lr=lr, min_lr_ratio=min_lr_ratio, warmup=warmup,
        weight_decay=weight_decay, grad_clip=grad_clip, eval_every=eval_every, eval_batches=eval_batches,
        save_every=save_every, seed=seed, dtype=dtype, device=device, compile=compile, max_seconds=max_seconds,
    )
    with output.progress() as bar:
        task = bar.add_task("pre-training", total=steps)

        def on_step(step: int, m: dict[str, float]) -> None:
            extra = f" val_bpc {m['val_bpc']:.3f}" if "val_bpc" in m else ""
            bar.update(task, completed=step, description=f"loss {m['loss']:.3f}{extra}")

        result = pretrain(cfg, on_step=on_step)
    summary = {k: v for k, v in result.items() if k != "loss"}
    summary["final_loss"] = result["loss"][-1] if result["loss"] else None
    state = "finished" if result["finished"] else "stopped (resume by running the same command)"
    output.emit(summary, as_json=as_json, show=lambda: output.say(
        f"{state} at step {result['step']}: loss {summary['final_loss']}, val bpc {result['val_bpc']}; "
        f"model: {result['model_dir'] or result['checkpoint']}"))


def _parse_overrides(items: list[str]) -> dict[str, object]:
    from haneul.errors import InvalidInput

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--model {item!r} is not KEY=VALUE; write e.g. --model n_layer=6")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@app.command("generate")
def generate_cmd(
    model: Annotated[str, typer.Argument(help="Model name (see `haneul lm models`) or a model folder.")],
    prompts: Annotated[list[str], typer.Argument(help="One or more prompts (several are decoded as one batch).")],
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per prompt.")] = 64,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 is greedy.")] = 0.8,
    top_k: Annotated[int, typer.Option(help="Keep the k most likely tokens (0: off).")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling: keep the smallest set with this much probability.")] = 0.95,
    repetition_penalty: Annotated[float, typer.Option(help="Penalise tokens already seen (1: off).")] = 1.1,
    stop: Annotated[list[str] | None, typer.Option(help="Stop when this text appears (repeatable).")] = None,
    seed: OptionalSeedOpt = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print tokens as they come (one prompt only).")] = True,
    chat: Annotated[bool, typer.Option(help="Wrap the prompt as a user message in the model's chat template.")] = False,
    alphas: Annotated[Path | None, typer.Option("--alphas", help="AlphaTuning task file (from `haneul quant alphatune`) whose scales a quantised base decodes with.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Complete prompts with a model (KV cache, sampling controls, streaming).

    MODEL may be a quantised base from `haneul quant quantize`: it decodes on its packed codes, with a
    task's scales when --alphas is given.
    """
    from haneul.lm.generate import SamplingParams
    from haneul.lm.registry import resolve
    from haneul.lm.serve import ModelPool

    source = resolve(model)
    if source.kind == "remote":
        from haneul.errors import InvalidInput

        raise InvalidInput(f"{model} is a remote model; query it with its own API at {source.location}")
    pool = ModelPool(alphas={source.name: str(_task_file(alphas))} if alphas is not None else None)
    gen = pool.local(source).gen
    if chat:
        prompts = [gen.render_chat([{"role": "user", "content": p}]) for p in prompts]
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                            repetition_penalty=repetition_penalty, stop=list(stop or []), seed=seed)
    if stream and len(prompts) == 1 and not as_json:
        for delta in gen.stream(prompts[0], params):
            sys.stdout.write(delta)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return
    results = gen.generate(prompts, params)
    rows = [{"prompt": p, "text": c.text, "finish_reason": c.finish_reason, "prompt_tokens": c.prompt_tokens,
             "completion_tokens": len(c.token_ids)} for p, c in zip(prompts, results, strict=True)]
    output.emit(rows, as_json=as_json, show=lambda: output.say("\n".join(r["prompt"] + r["text"] for r in rows)))


@app.command("serve")
def serve_cmd(
    models: Annotated[list[str], typer.Argument(help="Models to serve: names from `haneul lm models`, folders (quantised bases too), or NAME=FOLDER / NAME=URL.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    alphas: Annotated[list[str] | None, typer.Option("--alphas", help="NAME=FILE: serve quantised base NAME with this AlphaTuning task file's scales (repeatable). To serve one base with and without a task, give it twice under two names.")] = None,
) -> None:
    """Serve models over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)."""
    import uvicorn

    from haneul.lm.registry import resolve
    from haneul.lm.serve import create_app

    mapping: dict[str, str] = {}
    for item in models:
        name, sep, location = item.partition("=")
        if sep:
            mapping[name] = location
        else:
            source = resolve(item)
            mapping[source.name] = source.location
    tasks = _parse_alphas(alphas or [], mapping)
    output.note(f"serving {', '.join(mapping)} at http://{host}:{port}/v1")
    uvicorn.run(create_app(mapping, alphas=tasks), host=host, port=port, log_level="info")


def _task_file(path: Path) -> Path:
    from haneul.errors import NotFound

    path = path.expanduser()
    if not path.is_file():
        raise NotFound(f"task file {path} does not exist; create one with `haneul quant alphatune`")
    return path.resolve()


def _parse_alphas(items: list[str], served: dict[str, str]) -> dict[str, str]:
    """``NAME=FILE`` options -> {name: task file}; every NAME must be one of the served models."""
    from haneul.errors import InvalidInput

    out: dict[str, str] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise InvalidInput(f"--alphas {item!r} is not NAME=FILE; write e.g. --alphas nsmc=./nsmc.alphas.safetensors")
        if name not in served:
            raise InvalidInput(f"--alphas names {name!r}, which is not served; serve one of: {', '.join(served)}")
        out[name] = str(_task_file(Path(file)))
    return out


@app.command("models")
def models_cmd(as_json: JsonOpt = False) -> None:
    """List the models available to generate and serve."""
    from haneul.lm.registry import list_models

    rows = [s.to_dict() for s in list_models()]
    output.emit(rows, as_json=as_json, show=lambda: output.print_table(
        rows, columns=["name", "kind", "origin", "location"], title="language models"))


@app.command("register")
def register_cmd(
    name: Annotated[str, typer.Argument(help="Name to serve the model under.")],
    location: Annotated[str, typer.Argument(help="A Llama-compatible model folder, or an OpenAI-compatible base URL (http://host:port/v1[#remote-model]).")],
) -> None:
    """Make a model folder or a remote OpenAI-compatible server available by name."""
    from haneul.lm.registry import register_model

    source = register_model(name, location)
    output.say(f"registered {source.name} ({source.kind}) -> {source.location}")


@app.command("recipe")
def recipe_cmd(
    preset: Annotated[str, typer.Argument(help="ko-nano, ko-tiny, ko-small or ko-base.")],
    corpus: Corpus,
    name: Annotated[str | None, typer.Option(help="Register the model under this name (default: the preset).")] = None,
    kind: Annotated[str, typer.Option(help="Tokenizer kind: morpheme-bpe, bpe or unigram.")] = "morpheme-bpe",
    vocab_size: Annotated[int | None, typer.Option(help="Tokenizer vocabulary (default per preset).")] = None,
    steps: Annotated[int | None, typer.Option(help="Pre-training steps (default per preset).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per step (default per preset).")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Training sequence length (default per preset).")] = None,
    max_docs: Annotated[int | None, typer.Option(help="Use the first N documents only.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Tokenizer processes for data preparation.")] = 1,
    max_seconds: Annotated[float | None, typer.Option(help="Time budget for pre-training (stops and checkpoints).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Override a preset field, e.g. -m n_layer=2.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokenizer → data → pre-training → register, end to end; re-running resumes."""
    from haneul.lm.recipe import RECIPES, run_recipe

    total = steps or RECIPES.get(preset, {}).get("steps", 0)
    with output.progress() as bar:
        task = bar.add_task("preparing", total=total)

        def log(msg: str) -> None:
            bar.console.print(msg)

        def on_step(step: int, m: dict[str, float]) -> None:
            bar.update(task, completed=step, description=f"loss {m['loss']:.3f}")

        summary = run_recipe(preset, [str(c) for c in corpus], name=name, kind=kind, vocab_size=vocab_size, steps=steps,
                             batch_size=batch_size, seq_len=seq_len, max_docs=max_docs, workers=workers,
                             max_seconds=max_seconds, model_overrides=_parse_overrides(model or []), log=log,
                             on_step=on_step)
    def show() -> None:
        if not summary.get("registered"):
            output.say("stopped before the last step; run the same command again to resume")
            return
        output.say(f"{summary['name']}: val bits/char {summary['val_bpc']:.3f}; serve it with "
                   f"`haneul lm serve {summary['name']}`")
        if summary.get("sample"):
            output.say(summary["sample"])

    output.emit({k: v for k, v in summary.items() if k != "loss"}, as_json=as_json, show=show)


@app.command("ptune")
def ptune_cmd(
    model: Annotated[str, typer.Argument(help="Model name (see `haneul lm models`) or a model folder; its weights stay frozen.")],
    train: Annotated[Path, typer.Option("--train", help="NSMC-format TSV (id, document, label 0/1; header line; .gz ok) to learn from.")],
    test: Annotated[Path, typer.Option("--test", help="NSMC-format TSV to measure accuracy on.")],
    out: Annotated[Path | None, out_option("Folder to save the learned soft prompt (a PEFT adapter) in.")] = None,
    method: Annotated[str, typer.Option(help="prompt-tuning (soft prompt) or p-tuning (soft prompt through a prompt encoder).")] = "prompt-tuning",
    virtual_tokens: Annotated[int, typer.Option(help="Length of the soft prompt.")] = 16,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 200,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate of the soft prompt.")] = 3e-2,
    shots: Annotated[int, typer.Option(help="Demonstrations in the in-context baseline.")] = 4,
    max_train: Annotated[int, typer.Option(help="Use at most N training examples.")] = 2000,
    max_test: Annotated[int, typer.Option(help="Use at most N test examples.")] = 200,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Prompt-tune a frozen model for sentiment (verbalizers 긍정/부정) and compare with few-shot prompting."""
    from haneul.lm.ptuning import PTuneConfig, ptune

    cfg = PTuneConfig(model=model, train=str(train), test=str(test), out=str(out) if out else None, method=method,
                      num_virtual_tokens=virtual_tokens, steps=steps, batch_size=batch_size, lr=lr, shots=shots,
                      max_train=max_train, max_test=max_test, seed=seed)
    with output.stderr().status(f"{method}: {steps} steps"):
        result = ptune(cfg)
    output.emit(result, as_json=as_json, show=lambda: output.print_table(
        list(result["accuracy"].items()), columns=["method", "accuracy"], right=["accuracy"],
        formats={"accuracy": lambda acc: f"{acc:.3f}"},
        title=f"{model}: accuracy on {result['test_examples']} test examples"))


try:  # instruction tuning lives in its own module
    from haneul.cli.sft import register as _register_sft
except ImportError:
    pass
else:
    _register_sft(app)
