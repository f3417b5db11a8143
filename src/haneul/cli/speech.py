"""``haneul speech``: Korean call-speech recognition (ClovaCall corpus tools, synthesis, training, eval)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, SeedOpt, ThreadsOpt, Typer, out_option
from haneul.errors import InvalidInput

app = Typer(
    help="Korean call-speech recognition: ClovaCall manifests, synthetic call speech, DS2/LAS training, "
    "CER evaluation and streaming transcription.",
    no_args_is_help=True,
)


def _progress():
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return output.progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip


def _warn(message: object) -> None:
    output.note(f"warning: {message}", style="yellow")


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        _warn(w.message)


@app.command()
def synth(
    hours: float | None = typer.Option(
        None,
        "--hours",
        help="Hours of speech to render (e.g. 0.1 = six minutes); needed without --text, with --text it stops "
        "the rendering at that duration.",
    ),
    seed: SeedOpt = 0,
    out: Path = out_option("Output folder: gets wavs/ and manifest.json."),
    text: Path | None = typer.Option(
        None,
        "--text",
        help="Render your own sentences instead: a UTF-8 file, one sentence a line (blank and # lines skipped).",
    ),
    repeat: int = typer.Option(
        1, "--repeat", help="With --text: render each sentence this many times, each with a different voice."
    ),
    split: str = typer.Option(
        "train",
        "--split",
        help="'train', or 'heldout' for voice variants (and generated sentences) never used by 'train'.",
    ),
    noise: float = typer.Option(
        0.2, "--noise", help="Share of utterances mixed with background noise (10-30 dB SNR)."
    ),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0 = one per CPU core)."),
    channel: bool = typer.Option(
        True, "--channel/--no-channel", help="Apply the 8 kHz mu-law telephone channel."
    ),
    as_json: JsonOpt = False,
) -> None:
    """Render synthetic Korean call speech in the ClovaCall format: generated restaurant-reservation calls, or
    your own sentences with --text (the same seed gives byte-identical files)."""
    from haneul.speech.synth import read_sentences, synthesize

    texts = read_sentences(text) if text is not None else None
    with _progress() as bar:
        task = bar.add_task(f"synth {split}", total=hours * 3600 if hours else None)
        res = synthesize(
            out, hours, seed, texts=texts, repeat=repeat, split=split, noise=noise, workers=workers or None,
            channel=channel, progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    summary = {
        "manifest": str(res.manifest), "utterances": res.utterances, "hours": res.seconds / 3600,
        "wall_s": res.wall_s, "audio_hours_per_minute": res.seconds / 3600 / (res.wall_s / 60),
    }  # fmt: skip
    output.emit(summary, as_json=as_json, show=lambda: output.say(
        f"wrote {res.utterances} utterances ({res.seconds / 3600:.3f} h) to {res.manifest} in {res.wall_s:.1f} s "
        f"({summary['audio_hours_per_minute']:.2f} h of audio per minute)"
    ))


@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest."),
    wav_dir: Path | None = typer.Option(
        None,
        "--wav-dir",
        help="Folder of the WAV files (default: wavs/ beside the manifest, else its folder).",
    ),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="Expected sample rate in Hz."),
    as_json: JsonOpt = False,
) -> None:
    """Check a manifest: missing/corrupt/truncated audio, empty text, sample-rate and channel mismatches.

    Exits 1 when any problem is found."""
    from haneul.speech.corpus import read_manifest
    from haneul.speech.corpus import validate as run

    rep = run(read_manifest(manifest, wav_dir), sample_rate)

    def show() -> None:
        if rep.passed:
            output.say(f"{manifest}: all {rep.total} utterances ok, {rep.seconds / 3600:.2f} h of audio")
            return
        output.print_table(rep.problems[:200], columns=["wav", "problem", "detail"],
                           title=f"{manifest}: {rep.ok}/{rep.total} ok, {rep.seconds / 3600:.2f} h readable audio")
        if len(rep.problems) > 200:
            output.say(f"... and {len(rep.problems) - 200} more problems (use --json for all)")

    output.emit(rep, as_json=as_json, show=show)
    if not rep.passed:
        raise typer.Exit(1)


@app.command()
def clean(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest to convert."),
    out: Path = out_option("Output folder: gets wavs/ and manifest.json."),
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
        read_manifest(manifest, wav_dir), out, sample_rate=sample_rate, trim_db=trim_db if trim else None
    )
    for w, why in skipped:
        _warn(f"skipped {w}: {why}")
    output.say(f"wrote {path}")


@app.command()
def split(
    manifest: Path = typer.Argument(..., help="ClovaCall JSON manifest to split."),
    dev: float = typer.Option(0.1, "--dev", help="Share of utterances for dev (whole speakers)."),
    test: float = typer.Option(0.1, "--test", help="Share of utterances for test (whole speakers)."),
    seed: SeedOpt = 0,
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
            output.say(f"{name}: {len(items)} utterances, {spk} speakers -> {path}")


@app.command("train")
def train_cmd(
    model: str = typer.Option(
        "ds2", "--model", help="ds2 (DeepSpeech2-style CTC) or las (listen, attend and spell)."
    ),
    train_manifest: Path = typer.Option(..., "--train", help="Training manifest (ClovaCall JSON)."),
    dev_manifest: Path = typer.Option(..., "--dev", help="Dev manifest used for CER and model selection."),
    out: Annotated[Path, out_option("Run folder for last.pt / best.pt; resumes from last.pt.")] = Path("speech-run"),
    preset: str = typer.Option(
        "small", "--preset", help="Model size: tiny, small, base or clovacall (las: tiny, small, clovacall)."
    ),
    features: str = typer.Option(
        "spectrogram", "--features", help="spectrogram (161-dim) or logmel (80-dim)."
    ),
    units: str = typer.Option(
        "hangul", "--units", help="Output units: hangul (all 11,172 syllables: nothing Korean is out of vocabulary) "
        "or corpus (the training transcripts' characters, ClovaCall's recipe)."
    ),
    ctc_weight: float | None = typer.Option(
        None, "--ctc-weight", help="las: weight of the hybrid CTC loss on the listener (default 0.3; 0 = plain LAS)."
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
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from OUT/last.pt when it exists."
    ),
) -> None:
    """Train a recogniser; loss, learning rate and dev CER/WER go to `haneul.report` (a platform session when run
    with `haneul run -- haneul speech train ...`)."""
    from haneul.speech.train import TrainConfig, train

    if ctc_weight is not None and model != "las":
        raise InvalidInput("--ctc-weight is for --model las (ds2 is all CTC already)")
    cfg = TrainConfig(
        model=model, preset=preset, features=features, units=units, epochs=epochs, max_steps=max_steps,
        max_minutes=max_minutes, batch_size=batch_size, lr=lr, eval_every=eval_every, specaugment=specaugment, amp=amp,
        threads=threads, seed=seed, out_dir=str(out), resume=resume,
        overrides={} if ctc_weight is None else {"ctc_weight": ctc_weight},
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(cfg, train_manifest, dev_manifest, log=output.note)
    _show_warnings(caught)
    output.say(f"best dev CER {res.best_cer:.2%} after {res.steps} steps; checkpoint {res.best_checkpoint}")


def _recognizer(
    checkpoint: Path, beam: int, lm_text: Path | None, lm_order: int, alpha: float, beta: float, threads: int | None
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


@app.command("eval")
def eval_cmd(
    manifest: Path = typer.Argument(..., help="Test manifest (ClovaCall JSON)."),
    checkpoint: Path = _CKPT,
    beam: int = _BEAM,
    lm_text: Path | None = _LM,
    lm_order: int = _ORDER,
    alpha: float = _ALPHA,
    beta: float = _BETA,
    threads: ThreadsOpt = 1,
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N utterances."),
    skip_unreadable: bool = typer.Option(
        False,
        "--skip-unreadable",
        help="Leave missing or corrupt audio files out of the scores; by default each counts as its whole "
        "reference deleted.",
    ),
    show: int = typer.Option(5, "--show", help="Print this many reference/hypothesis pairs."),
    as_json: JsonOpt = False,
) -> None:
    """CER without spaces (ClovaCall's definition), WER (jiwer) and real-time factor on a manifest.

    The real-time factor is measured on --threads CPU threads (1 by default: the one-core figure).
    Missing or corrupt audio counts as errors unless --skip-unreadable; the table and the JSON say how many
    there were and which choice was made. With --json the per-utterance rows come too."""
    from haneul.speech.corpus import read_manifest

    rec = _recognizer(checkpoint, beam, lm_text, lm_order, alpha, beta, threads)
    res, rows = rec.evaluate(read_manifest(manifest), limit, skip_unreadable=skip_unreadable)
    for r in rows:
        if r.get("unreadable"):
            _warn(f"unreadable {r['wav']} ({res.unreadable_policy}): {r['unreadable']}")

    def show_table() -> None:
        columns = ["CER (no spaces)", "WER", "RTF", "threads", "unreadable files"]
        output.print_table([(f"{res.cer:.2%}", f"{res.wer:.2%}", f"{res.rtf:.4f}", threads or "torch's choice",
                             f"{res.unreadable} ({res.unreadable_policy})")],
                           columns=columns, right=columns[:4],
                           title=f"{manifest} ({res.utterances} utterances, {res.audio_s / 60:.1f} min)")
        for r in [r for r in rows if r.get("hyp") is not None][:show]:
            output.say(f"  ref: {r['ref']}\n  hyp: {r['hyp']}")

    output.emit({**res.to_dict(), "rows": rows}, as_json=as_json, show=show_table)


@app.command()
def transcribe(
    wav: Path = typer.Argument(..., help="Audio file (any rate; stereo is averaged)."),
    checkpoint: Path = _CKPT,
    beam: int = _BEAM,
    lm_text: Path | None = _LM,
    lm_order: int = _ORDER,
    alpha: float = _ALPHA,
    beta: float = _BETA,
    threads: ThreadsOpt = 1,
    stream: bool = typer.Option(
        False, "--stream", help="Feed the file in chunks and print partial hypotheses as a live call would."
    ),
    chunk_ms: int = typer.Option(640, "--chunk-ms", help="Streaming chunk length in milliseconds."),
    as_json: JsonOpt = False,
) -> None:
    """Transcribe one audio file, offline or as a stream of chunks (partial then final hypotheses; with
    --json the partial hypotheses come too)."""
    from haneul.speech.corpus import load_audio

    rec = _recognizer(checkpoint, beam, lm_text, lm_order, alpha, beta, threads)
    audio = load_audio(wav, rec.features.sample_rate)
    if not stream:
        text = rec.transcribe(audio)
        output.emit({"text": text}, as_json=as_json, show=lambda: output.say(text))
        return
    sess = rec.stream(chunk_ms=chunk_ms)
    step = rec.features.sample_rate * chunk_ms // 1000
    partials = []
    for i in range(0, len(audio), step):
        hyp = sess.accept(audio[i : i + step])
        partials.append({"audio_s": hyp.audio_s, "text": hyp.text})
        if not as_json:
            output.note(f"[{hyp.audio_s:6.2f}s] {hyp.text}")
    final = sess.finish()
    output.emit({"text": final.text, "partials": partials}, as_json=as_json, show=lambda: output.say(final.text))


@app.command("text")
def text_cmd(
    sources: list[Path] = typer.Argument(
        None, help="Korean text to draw from: .jsonl (a 'text' field), .tsv with sentence columns, or plain text "
        "(one passage a line); each may be .gz. None: reservation sentences only."),
    out: Path = out_option("Text file to write, one spoken sentence a line (for synth --text)."),
    count: int = typer.Option(20000, "--count", "-n", help="Sentences to draw."),
    seed: SeedOpt = 0,
    split: str = typer.Option("train", "--split", help="'train' or 'heldout': which side of the sentence hash to draw."),
    templates: float = typer.Option(0.1, "--templates", help="Share of reservation-generator sentences mixed in."),
    min_syllables: int = typer.Option(4, "--min-syllables", help="Shortest sentence kept, in syllables."),
    max_syllables: int = typer.Option(40, "--max-syllables", help="Longest sentence kept, in syllables (a phone turn)."),
    exclude: list[Path] = typer.Option(
        [], "--exclude", help="A text file of sentences never to draw (a test set), one a line; may repeat."),
    as_json: JsonOpt = False,
) -> None:
    """Draw open-vocabulary sentences from real Korean text, read out for speech (numbers, dates, Latin
    letters and symbols in Korean; unreadable sentences left out), and report their character inventory
    and coverage of the 2,350 KS X 1001 syllables."""
    from haneul.io import atomic_write_text
    from haneul.speech.opentext import draw_sentences, inventory
    from haneul.speech.synth import read_sentences

    banned = [s.text for path in exclude for s in read_sentences(path)]
    output.note(f"reading {len(sources or [])} source(s)")
    sentences = draw_sentences(sources or [], count, seed=seed, split=split, templates=templates,
                               min_syllables=min_syllables, max_syllables=max_syllables, exclude=banned)
    atomic_write_text(out, "".join(s + "\n" for s in sentences))
    inv = inventory(sentences)
    summary = {"out": str(out), **inv.to_dict()}

    def show() -> None:
        output.say(f"wrote {inv.sentences} sentences ({inv.characters} characters) to {out}")
        output.say(f"{inv.distinct} distinct characters; KS X 1001 syllables covered: {inv.ksx1001_covered} of "
                   f"{inv.ksx1001_total} ({inv.ksx1001_coverage:.1%}); outside KS X 1001: {len(inv.outside_ksx1001)}")
        if inv.sentences < count:
            _warn(f"the sources held only {inv.sentences} usable sentences of the {count} asked for")

    output.emit(summary, as_json=as_json, show=show)

