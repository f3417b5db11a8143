"""Synthetic Korean call speech in the ClovaCall format (espeak-ng voice + sox telephone channel).

No real call audio can be downloaded here, so haneul renders its own: restaurant-reservation
sentences (:mod:`haneul.speech.korean`) spoken by espeak-ng's Korean voice under many voice variants,
speeds, pitches and loudnesses, padded with a little line silence, optionally mixed with background
noise, then passed through a narrow-band telephone channel (300-3400 Hz band-pass, 8 kHz, G.711
mu-law) and stored as 16 kHz 16-bit mono WAV as in ClovaCall (Ha et al., 2020, section 3).

Everything an utterance needs (text, voice, speed, noise seed) is drawn up front from one seeded
generator, so the output is identical for a seed whatever the number of worker processes.
The ``heldout`` split uses voice variants and sentences that the ``train`` split never produces:
a sentence belongs to one side by a stable hash of its text.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from haneul.errors import InvalidInput, NotFound
from haneul.speech.corpus import SAMPLE_RATE, Utterance, stable_hash, write_manifest, write_wav
from haneul.speech.korean import reservation_sentence

# espeak-ng voice variants (``-v ko+<variant>``); the held-out ones are never used for training.
TRAIN_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3",
    "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb", "david", "ed", "edward",
    "john", "linda", "max", "michel", "paul", "robert", "steph", "travis", "victor", "zac", "norbert",
]  # fmt: skip
HELDOUT_VARIANTS = ["m8", "f5", "klatt4", "Mario", "Michael", "quincy", "shelby", "sandro"]
HELDOUT_MODULUS = 8  # one sentence in eight (by text hash) is reserved for the held-out split
SPLITS = ("train", "heldout")


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


def plan_jobs(seed: int, split: str = "train", noise: float = 0.0):
    """Endless deterministic stream of :class:`SynthJob` for ``split``; ``noise`` is the share of
    utterances that get background noise."""
    if split not in SPLITS:
        raise InvalidInput(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    if not 0.0 <= noise <= 1.0:
        raise InvalidInput(f"noise={noise} must be a fraction of utterances in [0, 1]")
    variants = TRAIN_VARIANTS if split == "train" else HELDOUT_VARIANTS
    want_heldout = split == "heldout"
    r = random.Random(f"{seed}:{split}")
    text_r = random.Random(f"{seed}:{split}:text")
    i = 0
    while True:
        text = reservation_sentence(text_r)
        while is_heldout_sentence(text) != want_heldout:
            text = reservation_sentence(text_r)
        variant = r.choice(variants)
        pitch = r.randint(20, 80)
        # a "speaker" is a voice variant at a pitch band; speed and loudness vary per call
        speaker = f"{split[0]}{variants.index(variant):02d}{pitch // 20}"
        yield SynthJob(
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
        )
        i += 1


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
            text,
        ]
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
        if proc.returncode != 0 or not wav.exists():
            raise InvalidInput(
                f"espeak-ng failed on {text!r}: {proc.stderr.decode(errors='replace').strip()}"
            )
        audio, sr = sf.read(str(wav), dtype="float32")
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
    audio, sr = espeak(job.text, job.variant, job.speed, job.pitch, job.amplitude)
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
    hours: float,
    seed: int = 0,
    *,
    split: str = "train",
    noise: float = 0.0,
    workers: int | None = None,
    channel: bool = True,
    progress: Callable[[float, float], None] | None = None,
) -> SynthResult:
    """Render at least ``hours`` of speech into ``out_dir/wavs`` and write ``out_dir/manifest.json``.

    Jobs run in order-preserving blocks across ``workers`` processes; the corpus stops at the first
    utterance that reaches the target duration, so the file list depends only on the seed.
    ``progress(done_seconds, target_seconds)`` is called after each block.
    """
    import time

    if not hours > 0:
        raise InvalidInput(f"--hours {hours} must be positive (e.g. 0.1 for six minutes)")
    check_tools()
    t0 = time.perf_counter()
    out = Path(out_dir)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, workers or (os.cpu_count() or 1))
    target = hours * 3600.0
    jobs = plan_jobs(seed, split, noise)
    done: list[tuple[SynthJob, float]] = []
    total = 0.0
    block = max(8, 8 * workers)
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        while total < target:
            batch = [next(jobs) for _ in range(block)]
            args = [(j, str(wav_dir), channel) for j in batch]
            secs = list(pool.map(_render_star, args)) if pool else [_render_star(a) for a in args]
            for job, s in zip(batch, secs, strict=True):
                if total >= target:
                    (wav_dir / job.name).unlink(missing_ok=True)  # rendered past the target
                    continue
                done.append((job, s))
                total += s
            if progress:
                progress(min(total, target), target)
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
