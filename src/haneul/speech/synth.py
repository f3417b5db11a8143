"""Synthetic Korean call speech in the ClovaCall format (espeak-ng voice + sox telephone channel).

No real call audio can be downloaded here, so haneul renders its own: restaurant-reservation
sentences (:mod:`haneul.speech.korean`) spoken by espeak-ng's Korean voice under many voice variants,
speeds, pitches and loudnesses, padded with a little line silence, optionally mixed with background
noise, then passed through a narrow-band telephone channel (300-3400 Hz band-pass, 8 kHz, G.711
mu-law) and stored as 16 kHz 16-bit mono WAV as in ClovaCall (Ha et al., 2020, section 3).

Everything an utterance needs (text, voice, speed, noise seed) is drawn up front from one seeded
generator, so the output is identical for a seed whatever the number of worker processes.
The ``heldout`` split uses voice variants and sentences that the ``train`` split never produces:
a sentence belongs to one side by a stable hash of its text. A user's own sentences
(:func:`read_sentences`, ``synthesize(texts=...)``) are rendered as given with the split's voices;
the sentence hash does not filter them.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from haneul.errors import InvalidInput, NotFound
from haneul.speech.corpus import SAMPLE_RATE, Utterance, stable_hash, write_manifest, write_wav
from haneul.speech.korean import reservation_sentence
from haneul.text.korean import normalize as normalize_text

# espeak-ng voice variants (``-v ko+<variant>``); the held-out ones are never used for training.
TRAIN_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3",
    "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb", "david", "ed", "edward",
    "john", "linda", "max", "michel", "paul", "robert", "steph", "travis", "victor", "zac", "norbert",
]  # fmt: skip
HELDOUT_VARIANTS = ["m8", "f5", "klatt4", "Mario", "Michael", "quincy", "shelby", "sandro"]
HELDOUT_MODULUS = 8  # one sentence in eight (by text hash) is reserved for the held-out split
VARIANTS = {"train": TRAIN_VARIANTS, "heldout": HELDOUT_VARIANTS}
SPLITS = tuple(VARIANTS)


@dataclass(frozen=True)
class SynthJob:
    """Everything needed to render one utterance, so workers need no shared state."""

    index: int
    name: str
    text: str
    variant: str
    speed: int  # espeak words per minute
    pitch: int  # espeak 0..99
    amplitude: int  # espeak 0..200
    pad_s: tuple[float, float]
    snr_db: float | None  # None: no background noise
    noise_seed: int
    speaker_id: str
    origin: str = ""  # where a user's sentence came from ("calls.txt line 12"), named in errors


@dataclass(frozen=True)
class Sentence:
    """One of a user's sentences to render, normalised, with where it came from (named in errors)."""

    text: str
    origin: str


@dataclass
class SynthResult:
    out_dir: Path
    manifest: Path
    utterances: int
    seconds: float
    wall_s: float


def check_tools() -> None:
    """Fail with the install command when espeak-ng or sox is missing."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        raise NotFound(
            f"{' and '.join(missing)} not found on PATH; install with: apt-get install {' '.join(missing)}"
        )


def is_heldout_sentence(text: str) -> bool:
    return stable_hash(text) % HELDOUT_MODULUS == 0


def _variants(split: str, noise: float) -> list[str]:
    """The voice variants of ``split``, after checking ``split`` and ``noise``."""
    if split not in SPLITS:
        raise InvalidInput(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    if not 0.0 <= noise <= 1.0:
        raise InvalidInput(f"noise={noise} must be a fraction of utterances in [0, 1]")
    return VARIANTS[split]


def _job(
    r: random.Random, i: int, seed: int, split: str, noise: float, text: str, variant: str, origin: str = ""
) -> SynthJob:
    """Draw the rest of one utterance's voice (pitch, speed, loudness, padding, noise) from ``r``."""
    variants = VARIANTS[split]
    pitch = r.randint(20, 80)
    # a "speaker" is a voice variant at a pitch band; speed and loudness vary per call
    speaker = f"{split[0]}{variants.index(variant):02d}{pitch // 20}"
    return SynthJob(
        index=i,
        name=f"{split}_{seed}_{i:07d}.wav",
        text=text,
        variant=variant,
        speed=r.randint(125, 195),
        pitch=pitch,
        amplitude=r.randint(70, 150),
        pad_s=(round(r.uniform(0.05, 0.4), 3), round(r.uniform(0.05, 0.4), 3)),
        snr_db=round(r.uniform(10, 30), 1) if r.random() < noise else None,
        noise_seed=r.getrandbits(32),
        speaker_id=speaker,
        origin=origin,
    )


def plan_jobs(seed: int, split: str = "train", noise: float = 0.0) -> Iterator[SynthJob]:
    """Endless deterministic stream of :class:`SynthJob` for ``split``; ``noise`` is the share of
    utterances that get background noise."""
    variants = _variants(split, noise)
    want_heldout = split == "heldout"
    r = random.Random(f"{seed}:{split}")
    text_r = random.Random(f"{seed}:{split}:text")
    for i in itertools.count():
        text = reservation_sentence(text_r)
        while is_heldout_sentence(text) != want_heldout:
            text = reservation_sentence(text_r)
        yield _job(r, i, seed, split, noise, text, r.choice(variants))


def plan_text_jobs(
    sentences: Sequence[Sentence], seed: int, split: str = "train", noise: float = 0.0, repeat: int = 1
) -> list[SynthJob]:
    """Jobs that render each of ``sentences`` ``repeat`` times with ``split``'s voices.

    Each sentence gets ``repeat`` different voice variants; the jobs go round by round (every
    sentence once, then every sentence again with its next voice), so a duration limit that stops
    early still covers as many sentences as it can. No held-out filter applies: these are the
    sentences the user asked for.
    """
    variants = _variants(split, noise)
    if not 1 <= repeat <= len(variants):
        raise InvalidInput(
            f"--repeat {repeat} must be between 1 and {len(variants)}: each repeat of a sentence uses "
            f"another of the {split} split's {len(variants)} voice variants"
        )
    voice_r = random.Random(f"{seed}:{split}:voices")
    voices = [voice_r.sample(variants, repeat) for _ in sentences]
    r = random.Random(f"{seed}:{split}:own")
    rounds = ((k, n) for k in range(repeat) for n in range(len(sentences)))
    return [
        _job(r, i, seed, split, noise, sentences[n].text, voices[n][k], sentences[n].origin)
        for i, (k, n) in enumerate(rounds)
    ]


def read_sentences(path: str | os.PathLike[str]) -> list[Sentence]:
    """A user's sentences from a UTF-8 text file, one a line, normalised; blank lines and lines
    starting with ``#`` are skipped. Each keeps its line number for error messages."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"text file {path} does not exist; pass a UTF-8 file with one sentence a line")
    try:
        body = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path} is not UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    sentences = [
        Sentence(text, f"{path.name} line {n}")
        for n, line in enumerate(body.split("\n"), 1)
        if (text := normalize_text(line)) and not text.startswith("#")
    ]
    if not sentences:
        raise InvalidInput(
            f"{path} holds no sentence (blank and # lines are skipped); write one sentence a line"
        )
    return sentences


def _as_sentences(texts: Sequence[str | Sentence]) -> list[Sentence]:
    """``synthesize(texts=...)``'s input as normalised :class:`Sentence` objects."""
    if isinstance(texts, str):
        raise InvalidInput("texts must be a list of sentences, not one string; pass [sentence]")
    out = []
    for n, item in enumerate(texts, 1):
        text, origin = (item.text, item.origin) if isinstance(item, Sentence) else (item, f"sentence {n}")
        text = normalize_text(text)
        if not text:
            raise InvalidInput(f"{origin} is empty; remove it or write the sentence to render")
        out.append(Sentence(text, origin))
    if not out:
        raise InvalidInput("texts is empty; give at least one sentence to render")
    return out


def espeak(
    text: str, variant: str = "m3", speed: int = 160, pitch: int = 50, amplitude: int = 100
) -> tuple[np.ndarray, int]:
    """Render Korean text with espeak-ng; returns float32 audio and its sample rate (22050)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="haneul-tts-") as tmp:
        wav = Path(tmp) / "tts.wav"
        cmd = [
            "espeak-ng",
            "-v",
            f"ko+{variant}",
            "-s",
            str(speed),
            "-p",
            str(pitch),
            "-a",
            str(amplitude),
            "-w",
            str(wav),
            "--",  # the text is never read as an option, even when it starts with "-"
            text,
        ]
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
        if proc.returncode != 0 or not wav.exists():
            raise InvalidInput(
                f"espeak-ng failed on {text!r}: {proc.stderr.decode(errors='replace').strip()}"
            )
        audio, sr = sf.read(str(wav), dtype="float32")
    if not np.any(audio):
        raise InvalidInput(
            f"espeak-ng produced no sound for {text!r}; write it with Hangul or other readable words"
        )
    return audio, int(sr)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix white or brown (integrated, low-frequency) noise at ``snr_db`` relative to the speech."""
    white = rng.standard_normal(len(audio))
    if rng.random() < 0.5:
        noise = np.cumsum(white)
        noise -= np.convolve(noise, np.ones(201) / 201, mode="same")  # remove drift, keep the rumble
    else:
        noise = white
    p_sig = float(np.mean(audio**2)) or 1e-8
    p_noise = float(np.mean(noise**2)) or 1e-8
    return (audio + noise * np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


def phone_channel(audio: np.ndarray, sample_rate: int, out_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Telephone line: 300-3400 Hz band-pass, 8 kHz, 8-bit mu-law, back up to ``out_rate``."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-c", "1"]
    # -D: no dither, so a seed gives bit-identical files
    narrow = subprocess.run(
        ["sox", "-D", *raw, "-r", str(sample_rate), "-e", "signed", "-b", "16", "-",
         *raw, "-r", "8000", "-e", "mu-law", "-b", "8", "-", "sinc", "300-3400", "rate", "8000"],
        input=pcm, capture_output=True, check=True,
    )  # fmt: skip
    wide = subprocess.run(
        ["sox", "-D", *raw, "-r", "8000", "-e", "mu-law", "-b", "8", "-",
         *raw, "-r", str(out_rate), "-e", "signed", "-b", "16", "-", "rate", str(out_rate)],
        input=narrow.stdout, capture_output=True, check=True,
    )  # fmt: skip
    return np.frombuffer(wide.stdout, dtype="<i2").astype(np.float32) / 32768.0


def render(job: SynthJob, wav_dir: str | os.PathLike[str], channel: bool = True) -> float:
    """Render one job to ``wav_dir/job.name``; returns its duration in seconds."""
    try:
        audio, sr = espeak(job.text, job.variant, job.speed, job.pitch, job.amplitude)
    except InvalidInput as exc:
        if not job.origin:
            raise
        raise InvalidInput(f"{job.origin}: {exc.message}") from None
    rng = np.random.default_rng(job.noise_seed)
    pre, post = (np.zeros(int(p * sr), dtype=np.float32) for p in job.pad_s)
    audio = np.concatenate([pre, audio, post])
    if job.snr_db is not None:
        audio = add_noise(audio, job.snr_db, rng)
    peak = float(np.abs(audio).max()) or 1.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    if channel:
        audio = phone_channel(audio, sr)
    else:
        from haneul.speech.corpus import resample

        audio = resample(audio, sr, SAMPLE_RATE)
    write_wav(Path(wav_dir) / job.name, audio, SAMPLE_RATE)
    return len(audio) / SAMPLE_RATE


def _render_star(args: tuple[SynthJob, str, bool]) -> float:
    return render(*args)


def synthesize(
    out_dir: str | os.PathLike[str],
    hours: float | None = None,
    seed: int = 0,
    *,
    texts: Sequence[str | Sentence] | None = None,
    repeat: int = 1,
    split: str = "train",
    noise: float = 0.0,
    workers: int | None = None,
    channel: bool = True,
    progress: Callable[[float, float], None] | None = None,
) -> SynthResult:
    """Render speech into ``out_dir/wavs`` and write ``out_dir/manifest.json``.

    Without ``texts``: generated reservation sentences until at least ``hours`` of speech. With
    ``texts`` (strings, or :func:`read_sentences`'s result): each sentence ``repeat`` times with
    different voices of ``split``, all of them, or until ``hours`` when it is given.
    Jobs run in order-preserving blocks across ``workers`` processes; the corpus stops at the first
    utterance that reaches the target duration, so the file list depends only on the seed.
    ``progress(done, total)`` is called after each block: seconds of audio against the target with
    ``hours``, else utterances rendered against utterances planned.
    """
    import time

    if hours is not None and not hours > 0:
        raise InvalidInput(f"--hours {hours} must be positive (e.g. 0.1 for six minutes)")
    if texts is None:
        if hours is None:
            raise InvalidInput("give --hours for generated sentences, or --text with your own sentences")
        if repeat != 1:
            raise InvalidInput(f"--repeat {repeat} applies to --text sentences only; drop it or add --text")
        jobs: Iterator[SynthJob] = plan_jobs(seed, split, noise)
        planned = 0  # endless: the progress is the duration
    else:
        text_jobs = plan_text_jobs(_as_sentences(texts), seed, split, noise, repeat)
        jobs, planned = iter(text_jobs), len(text_jobs)
    check_tools()
    t0 = time.perf_counter()
    out = Path(out_dir)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, workers or (os.cpu_count() or 1))
    target = hours * 3600.0 if hours is not None else None
    done: list[tuple[SynthJob, float]] = []
    total = 0.0
    block = max(8, 8 * workers)
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        while target is None or total < target:
            batch = list(itertools.islice(jobs, block))
            if not batch:
                break
            args = [(j, str(wav_dir), channel) for j in batch]
            secs = list(pool.map(_render_star, args)) if pool else [_render_star(a) for a in args]
            for job, s in zip(batch, secs, strict=True):
                if target is not None and total >= target:
                    (wav_dir / job.name).unlink(missing_ok=True)  # rendered past the target
                    continue
                done.append((job, s))
                total += s
            if progress and target is not None:
                progress(min(total, target), target)
            elif progress:
                progress(len(done), planned)
    finally:
        if pool:
            pool.shutdown()
    items = [Utterance(j.name, j.text, j.speaker_id) for j, _ in done]
    manifest = write_manifest(out / "manifest.json", items)
    return SynthResult(out, manifest, len(items), total, time.perf_counter() - t0)


def job_dict(job: SynthJob) -> dict:
    return asdict(job)


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode float audio as a 16-bit WAV in memory (used by tests and the streaming demo)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()
