"""``haneul speech``: Korean call-speech recognition (ClovaCall corpus tools, synthesis, training, eval)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Korean call-speech recognition: ClovaCall manifests, synthetic call speech, DS2/LAS training, "
    "CER evaluation and streaming transcription.",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        console.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)


@app.command()
def synth(
    hours: float = typer.Option(..., "--hours", help="Hours of speech to render (e.g. 0.1 = six minutes)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed gives byte-identical files."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder: gets wavs/ and manifest.json."),
    split: str = typer.Option(
        "train",
        "--split",
        help="'train', or 'heldout' for voice variants and sentences never used by 'train'.",
    ),
    noise: float = typer.Option(
        0.2, "--noise", help="Share of utterances mixed with background noise (10-30 dB SNR)."
    ),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0 = one per CPU core)."),
    channel: bool = typer.Option(
        True, "--channel/--no-channel", help="Apply the 8 kHz mu-law telephone channel."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render synthetic Korean restaurant-reservation calls in the ClovaCall format."""
    from haneul.speech.synth import synthesize

    with _progress() as bar:
        task = bar.add_task(f"synth {split}", total=hours * 3600)
        res = synthesize(
            output, hours, seed, split=split, noise=noise, workers=workers or None, channel=channel,
            progress=lambda done, total: bar.update(task, completed=done),
        )  # fmt: skip
    summary = {
        "manifest": str(res.manifest), "utterances": res.utterances, "hours": res.seconds / 3600,
        "wall_s": res.wall_s, "audio_hours_per_minute": res.seconds / 3600 / (res.wall_s / 60),
    }  # fmt: skip
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(
            f"wrote {res.utterances} utterances ({res.seconds / 3600:.3f} h) to {res.manifest} in {res.wall_s:.1f} s "
            f"({summary['audio_hours_per_minute']:.2f} h of audio per minute)"
        )


@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest."),
    wav_dir: Path | None = typer.Option(
        None,
        "--wav-dir",
        help="Folder of the WAV files (default: wavs/ beside the manifest, else its folder).",
    ),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Expected sample rate in Hz."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a manifest: missing/corrupt/truncated audio, empty text, sample-rate and channel mismatches.

    Exits 1 when any problem is found."""
    from haneul.speech.corpus import read_manifest
    from haneul.speech.corpus import validate as run

    rep = run(read_manifest(manifest, wav_dir), sample_rate)
    if as_json:
        out.print_json(json.dumps(rep.to_dict(), ensure_ascii=False))
    elif rep.passed:
        out.print(f"{manifest}: all {rep.total} utterances ok, {rep.seconds / 3600:.2f} h of audio")
    else:
        table = Table(title=f"{manifest}: {rep.ok}/{rep.total} ok, {rep.seconds / 3600:.2f} h readable audio")
        for col in ("wav", "problem", "detail"):
            table.add_column(col)
        for w, kind, detail in rep.problems[:200]:
            table.add_row(w, kind, detail)
        out.print(table)
        if len(rep.problems) > 200:
            out.print(f"... and {len(rep.problems) - 200} more problems (use --json for all)")
    if not rep.passed:
        raise typer.Exit(1)


@app.command()
def clean(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest to convert."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder: gets wavs/ and manifest.json."),
    wav_dir: Path | None = typer.Option(None, "--wav-dir", help="Folder of the input WAV files."),
    sample_rate: int = typer.Option(
        16000, "--sample-rate", help="Output sample rate in Hz (audio is resampled)."
    ),
    trim_db: float = typer.Option(
        25.0, "--trim-db", help="Trim leading/trailing audio quieter than this many dB below the peak."
    ),
    trim: bool = typer.Option(
        True, "--trim/--no-trim", help="Trim silence (ClovaCall's 'clean' version) or only convert."
    ),
) -> None:
    """Write a 16-bit mono, resampled, silence-trimmed copy of a corpus (unreadable files are skipped and listed)."""
    from haneul.speech.corpus import convert_corpus, read_manifest

    path, skipped = convert_corpus(
        read_manifest(manifest, wav_dir), output, sample_rate=sample_rate, trim_db=trim_db if trim else None
    )
    for w, why in skipped:
        console.print(f"[yellow]warning:[/yellow] skipped {w}: {why}", highlight=False)
    out.print(f"wrote {path}")


@app.command()
def split(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest to split."),
    dev: float = typer.Option(0.1, "--dev", help="Share of utterances for dev (whole speakers)."),
    test: float = typer.Option(0.1, "--test", help="Share of utterances for test (whole speakers)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the speaker shuffle."),
) -> None:
    """Split by speaker into NAME.train.json, NAME.dev.json and NAME.test.json beside NAME.json (no speaker in two
    splits; the new manifests share the original WAV folder)."""
    from haneul.speech.corpus import read_manifest, split_by_speaker, write_manifest

    m = read_manifest(manifest)
    parts = split_by_speaker(m.items, dev, test, seed)
    for name, items in parts.items():
        if items:
            path = write_manifest(manifest.parent / f"{manifest.stem}.{name}.json", items)
            spk = len({u.speaker_id for u in items})
            out.print(f"{name}: {len(items)} utterances, {spk} speakers -> {path}")


@app.command("train")
def train_cmd(
    model: str = typer.Option(
        "ds2", "--model", help="ds2 (DeepSpeech2-style CTC) or las (listen, attend and spell)."
    ),
    train_manifest: Path = typer.Option(..., "--train", help="Training manifest (ClovaCall JSON)."),
    dev_manifest: Path = typer.Option(..., "--dev", help="Dev manifest used for CER and model selection."),
    output: Path = typer.Option(
        Path("speech-run"), "-o", "--output", help="Run folder for last.pt / best.pt; resumes from last.pt."
    ),
    preset: str = typer.Option(
        "small", "--preset", help="Model size: tiny, small, base or clovacall (las: tiny, small, clovacall)."
    ),
    features: str = typer.Option(
        "spectrogram", "--features", help="spectrogram (161-dim) or logmel (80-dim)."
    ),
    epochs: int = typer.Option(30, "--epochs", help="Passes over the training set."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Stop after this many updates (overrides --epochs)."
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop (after a dev evaluation) when this much time was spent."
    ),
    batch_size: int = typer.Option(
        16, "--batch-size", help="Utterances per batch (batches are length-bucketed)."
    ),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, warm-up then cosine decay)."),
    eval_every: int = typer.Option(
        200, "--eval-every", help="Evaluate dev CER and checkpoint every N steps."
    ),
    specaugment: bool = typer.Option(
        True, "--specaugment/--no-specaugment", help="Frequency/time masking during training."
    ),
    amp: bool = typer.Option(
        True, "--amp/--no-amp", help="bfloat16 mixed precision where a GPU is available."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: torch's choice)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation, batching and augmentation."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from OUTPUT/last.pt when it exists."
    ),
) -> None:
    """Train a recogniser; loss, learning rate and dev CER/WER go to `haneul.report` (a platform session when run
    with `haneul run -- haneul speech train ...`)."""
    from haneul.speech.train import TrainConfig, train

    cfg = TrainConfig(
        model=model, preset=preset, features=features, epochs=epochs, max_steps=max_steps, max_minutes=max_minutes,
        batch_size=batch_size, lr=lr, eval_every=eval_every, specaugment=specaugment, amp=amp, threads=threads,
        seed=seed, out_dir=str(output), resume=resume,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(cfg, train_manifest, dev_manifest, log=lambda m: console.print(m, highlight=False))
    _show_warnings(caught)
    out.print(f"best dev CER {res.best_cer:.2%} after {res.steps} steps; checkpoint {res.best_checkpoint}")


def _recognizer(
    checkpoint: Path, beam: int, lm_text: Path | None, lm_order: int, alpha: float, beta: float, threads: int
):
    import torch

    from haneul.speech.recognizer import Recognizer, build_lm, read_lm_text

    if threads:
        torch.set_num_threads(threads)
    rec = Recognizer.from_checkpoint(checkpoint, beam=beam, alpha=alpha, beta=beta)
    if lm_text is not None:
        rec.lm = build_lm(read_lm_text(lm_text), rec.vocab, lm_order)
        rec.beam = max(rec.beam, 8)
    return rec


_CKPT = typer.Option(..., "--checkpoint", "-c", help="A best.pt / last.pt written by `haneul speech train`.")
_BEAM = typer.Option(1, "--beam", help="Beam width: CTC prefix beam search for ds2, beam search for las (1 = greedy).")
_LM = typer.Option(
    None,
    "--lm-text",
    help="Text file (one sentence a line) or manifest to train a character n-gram LM for beam search.",
)
_ORDER = typer.Option(4, "--lm-order", help="Order of the character n-gram LM.")
_ALPHA = typer.Option(0.5, "--alpha", help="LM weight in beam search.")
_BETA = typer.Option(1.0, "--beta", help="Per-character insertion bonus in beam search with an LM.")
_THREADS = typer.Option(1, "--threads", help="CPU threads (1 = the one-core real-time factor).")


@app.command("eval")
def eval_cmd(
    manifest: Path = typer.Argument(..., help="Test manifest (ClovaCall JSON)."),
    checkpoint: Path = _CKPT,
    beam: int = _BEAM,
    lm_text: Path | None = _LM,
    lm_order: int = _ORDER,
    alpha: float = _ALPHA,
    beta: float = _BETA,
    threads: int = _THREADS,
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N utterances."),
    show: int = typer.Option(5, "--show", help="Print this many reference/hypothesis pairs."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics and per-utterance rows as JSON."),
) -> None:
    """CER without spaces (ClovaCall's definition), WER (jiwer) and real-time factor on a manifest."""
    from haneul.speech.corpus import read_manifest

    rec = _recognizer(checkpoint, beam, lm_text, lm_order, alpha, beta, threads)
    res, rows = rec.evaluate(read_manifest(manifest), limit)
    for r in rows:
        if r.get("skipped"):
            console.print(f"[yellow]warning:[/yellow] skipped {r['wav']}: {r['skipped']}", highlight=False)
    if as_json:
        out.print_json(json.dumps({**res.to_dict(), "rows": rows}, ensure_ascii=False))
        return
    table = Table(title=f"{manifest} ({res.utterances} utterances, {res.audio_s / 60:.1f} min)")
    for col in ("CER (no spaces)", "WER", "RTF", "threads"):
        table.add_column(col, justify="right")
    table.add_row(f"{res.cer:.2%}", f"{res.wer:.2%}", f"{res.rtf:.4f}", str(threads))
    out.print(table)
    for r in [r for r in rows if r.get("hyp") is not None][:show]:
        out.print(f"  ref: {r['ref']}\n  hyp: {r['hyp']}", highlight=False)


@app.command()
def transcribe(
    wav: Path = typer.Argument(..., help="Audio file (any rate; stereo is averaged)."),
    checkpoint: Path = _CKPT,
    beam: int = _BEAM,
    lm_text: Path | None = _LM,
    lm_order: int = _ORDER,
    alpha: float = _ALPHA,
    beta: float = _BETA,
    threads: int = _THREADS,
    stream: bool = typer.Option(
        False, "--stream", help="Feed the file in chunks and print partial hypotheses as a live call would."
    ),
    chunk_ms: int = typer.Option(640, "--chunk-ms", help="Streaming chunk length in milliseconds."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (with the partial hypotheses when streaming)."
    ),
) -> None:
    """Transcribe one audio file, offline or as a stream of chunks (partial then final hypotheses)."""
    from haneul.speech.corpus import load_audio

    rec = _recognizer(checkpoint, beam, lm_text, lm_order, alpha, beta, threads)
    audio = load_audio(wav, rec.features.sample_rate)
    if not stream:
        text = rec.transcribe(audio)
        if as_json:
            out.print_json(json.dumps({"text": text}, ensure_ascii=False))
        else:
            out.print(text, highlight=False)
        return
    sess = rec.stream(chunk_ms=chunk_ms)
    step = rec.features.sample_rate * chunk_ms // 1000
    partials = []
    for i in range(0, len(audio), step):
        hyp = sess.accept(audio[i : i + step])
        partials.append({"audio_s": hyp.audio_s, "text": hyp.text})
        if not as_json:
            print(f"[{hyp.audio_s:6.2f}s] {hyp.text}", file=sys.stderr)
    final = sess.finish()
    if as_json:
        out.print_json(json.dumps({"text": final.text, "partials": partials}, ensure_ascii=False))
    else:
        out.print(final.text, highlight=False)
