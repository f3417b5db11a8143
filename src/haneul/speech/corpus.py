"""ClovaCall corpus tools: manifests, audio loading, validation, silence trimming, speaker splits.

ClovaCall (Ha et al., 2020, section 3) ships each split as a JSON list of
``{"wav": "file.wav", "text": "...", "speaker_id": "03319"}`` records beside a folder of 16 kHz mono
WAV files, plus a "clean" version whose leading and trailing silence was cut at a 25 dB threshold.
This module reads and writes that format, checks a corpus before a long training run (missing,
corrupt or truncated audio, empty text, sample-rate and channel mismatches), trims, resamples and
splits by speaker so that no voice appears in two splits.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_open, atomic_write_text

SAMPLE_RATE = 16_000
TRIM_DB = 25.0


class AudioError(InvalidInput):
    """A WAV file is missing, unreadable or truncated."""

    code = "audio_error"


@dataclass(frozen=True)
class Utterance:
    """One ClovaCall record; ``wav`` is relative to the manifest's WAV folder."""

    wav: str
    text: str
    speaker_id: str = "0"

    def to_dict(self) -> dict[str, str]:
        return {"wav": self.wav, "text": self.text, "speaker_id": self.speaker_id}


@dataclass
class Manifest:
    """A list of utterances and the folder their ``wav`` names resolve against."""

    items: list[Utterance]
    wav_dir: Path
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def audio_path(self, utt: Utterance) -> Path:
        return self.wav_dir / utt.wav

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker_id for u in self.items})


# --------------------------------------------------------------------------------------------------
# manifests


def default_wav_dir(manifest_path: Path) -> Path:
    """``<dir>/wavs`` beside the manifest when it exists, else the manifest's own folder."""
    beside = manifest_path.parent / "wavs"
    return beside if beside.is_dir() else manifest_path.parent


def read_manifest(path: str | os.PathLike[str], wav_dir: str | os.PathLike[str] | None = None) -> Manifest:
    """Read a ClovaCall JSON manifest; raise a one-line error on anything malformed or empty."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"manifest {path} does not exist; pass the path of a ClovaCall JSON file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"manifest {path} is not valid UTF-8 JSON ({exc}); fix or regenerate it") from None
    if not isinstance(raw, list):
        raise InvalidInput(f"manifest {path} must be a JSON list of {{wav, text, speaker_id}} records")
    if not raw:
        raise InvalidInput(
            f"manifest {path} is empty (no utterances); add records or point at another manifest"
        )
    items = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict) or "wav" not in rec or "text" not in rec:
            raise InvalidInput(f"manifest {path} record {i} needs 'wav' and 'text' keys; got {rec!r:.80}")
        items.append(Utterance(str(rec["wav"]), str(rec["text"]), str(rec.get("speaker_id", "0"))))
    root = Path(wav_dir) if wav_dir is not None else default_wav_dir(path)
    return Manifest(items, root, path)


def write_manifest(path: str | os.PathLike[str], items: list[Utterance]) -> Path:
    """Write records atomically as ClovaCall JSON (UTF-8, Hangul unescaped)."""
    path = Path(path)
    body = json.dumps([u.to_dict() for u in items], ensure_ascii=False, indent=1)
    atomic_write_text(path, body + "\n")
    return path


# --------------------------------------------------------------------------------------------------
# audio


def _wav_truncated(path: Path) -> str | None:
    """Why a RIFF/WAVE file is truncated (its data chunk claims more bytes than exist), else None.

    libsndfile quietly returns the frames that are present, so a cut-off download would otherwise
    train on half an utterance against the full transcript.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not RIFF: let soundfile judge the format
        pos = 12
        while True:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return "no data chunk"
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                if clen != 0xFFFFFFFF and pos + 8 + clen > size:
                    return f"data chunk declares {clen} bytes but only {size - pos - 8} are present"
                return None
            pos += 8 + clen + (clen & 1)


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` of an audio file, or :class:`AudioError`."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} is missing; restore it or drop its manifest record")
    why = _wav_truncated(path)
    if why:
        raise AudioError(f"audio file {path} is truncated ({why}); re-export or drop it")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError for corrupt files
        raise AudioError(
            f"audio file {path} is unreadable ({str(exc).splitlines()[0]}); re-export it as WAV"
        ) from None
    if info.frames <= 0:
        raise AudioError(f"audio file {path} has no samples; drop it from the manifest")
    return int(info.samplerate), int(info.channels), int(info.frames)


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased) between integer rates."""
    if sr_from == sr_to:
        return audio.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr_from, sr_to)
    return resample_poly(audio, sr_to // g, sr_from // g).astype(np.float32)


def load_audio(
    path: str | os.PathLike[str], sample_rate: int | None = SAMPLE_RATE, mono: bool = True
) -> np.ndarray:
    """Read audio as float32 in [-1, 1]; stereo is averaged to mono, other rates are resampled.

    ``sample_rate=None`` keeps the file's own rate.
    """
    import soundfile as sf

    sr, _, _ = audio_info(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(
            f"audio file {path} is unreadable ({str(exc).splitlines()[0]}); re-export it as WAV"
        ) from None
    audio = audio.mean(axis=1) if mono else audio.T
    if sample_rate is not None and sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def write_wav(
    path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16"
) -> None:
    """Write a mono WAV atomically."""
    import soundfile as sf

    with atomic_open(path, "wb") as fh:
        sf.write(fh, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype, format="WAV")


def trim_silence(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    top_db: float = TRIM_DB,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``top_db`` below the loudest frame (RMS).

    This is the rule behind ClovaCall's "clean" version; silence inside the utterance is kept.
    """
    frame = max(1, int(sample_rate * frame_ms / 1000))
    hop = max(1, int(sample_rate * hop_ms / 1000))
    if len(audio) <= frame:
        return audio
    n = 1 + (len(audio) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(audio[idx].astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    # digital silence (below -100 dBFS) never counts as sound, so an all-zero file trims to nothing
    loud = np.flatnonzero((db > db.max() - top_db) & (db > -100.0))
    if loud.size == 0:
        return audio[:0]
    start = loud[0] * hop
    end = min(len(audio), loud[-1] * hop + frame)
    return audio[start:end]


# --------------------------------------------------------------------------------------------------
# validation


@dataclass
class ValidationReport:
    """What :func:`validate` found; ``problems`` lists ``(wav, kind, detail)`` rows."""

    total: int = 0
    ok: int = 0
    seconds: float = 0.0
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.problems if k == kind)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [{"wav": w, "kind": k, "detail": x} for w, k, x in self.problems]
        d["passed"] = self.passed
        return d


PROBLEM_KINDS = ("missing", "corrupt", "empty_text", "sample_rate", "channels")


def validate(manifest: Manifest, sample_rate: int = SAMPLE_RATE) -> ValidationReport:
    """Check every record: audio present and readable, text non-empty, rate and channels as expected."""
    rep = ValidationReport(total=len(manifest))
    for utt in manifest:
        path = manifest.audio_path(utt)
        bad = False
        if not utt.text.strip():
            rep.problems.append((utt.wav, "empty_text", "transcript is empty"))
            bad = True
        if not path.is_file():
            rep.problems.append((utt.wav, "missing", f"{path} does not exist"))
            continue
        try:
            sr, ch, frames = audio_info(path)
        except AudioError as exc:
            rep.problems.append((utt.wav, "corrupt", exc.message.split(" is ", 1)[-1]))
            continue
        if sr != sample_rate:
            rep.problems.append((utt.wav, "sample_rate", f"{sr} Hz, expected {sample_rate} Hz"))
            bad = True
        if ch != 1:
            rep.problems.append((utt.wav, "channels", f"{ch} channels, expected mono"))
            bad = True
        rep.seconds += frames / sr
        rep.ok += not bad
    return rep


# --------------------------------------------------------------------------------------------------
# conversion and splits


def convert_corpus(
    manifest: Manifest,
    out_dir: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    trim_db: float | None = TRIM_DB,
    name: str = "manifest.json",
) -> tuple[Path, list[tuple[str, str]]]:
    """Write a 16-bit mono copy at ``sample_rate`` (trimmed at ``trim_db`` unless None) plus its manifest.

    Returns the new manifest path and the ``(wav, reason)`` records that were skipped.
    """
    out = Path(out_dir)
    wav_out = out / "wavs"
    kept: list[Utterance] = []
    skipped: list[tuple[str, str]] = []
    for utt in manifest:
        if not utt.text.strip():
            skipped.append((utt.wav, "empty transcript"))
            continue
        try:
            audio = load_audio(manifest.audio_path(utt), sample_rate)
        except AudioError as exc:
            skipped.append((utt.wav, exc.message))
            continue
        if trim_db is not None:
            audio = trim_silence(audio, sample_rate, trim_db)
        if audio.size == 0:
            skipped.append((utt.wav, "silent after trimming"))
            continue
        rel = Path(utt.wav).with_suffix(".wav")
        write_wav(wav_out / rel, audio, sample_rate)
        kept.append(Utterance(rel.as_posix(), utt.text, utt.speaker_id))
    if not kept:
        raise InvalidInput(f"no usable utterance in {manifest.path}; run `haneul speech validate` to see why")
    return write_manifest(out / name, kept), skipped


def split_by_speaker(
    items: list[Utterance], dev: float = 0.1, test: float = 0.1, seed: int = 0
) -> dict[str, list[Utterance]]:
    """Split so that each speaker lands in exactly one of train/dev/test.

    Speakers are shuffled with ``seed`` and dealt to dev, then test, until each holds about its
    fraction of the utterances; everyone else trains.
    """
    if not items:
        raise InvalidInput("cannot split an empty manifest; add utterances first")
    if not (0 <= dev < 1 and 0 <= test < 1 and dev + test < 1):
        raise InvalidInput(f"dev={dev} and test={test} must be fractions in [0, 1) summing below 1")
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in items:
        by_spk[u.speaker_id].append(u)
    need = (dev > 0) + (test > 0) + 1
    if len(by_spk) < need:
        raise InvalidInput(
            f"{len(by_spk)} speaker(s) cannot fill {need} speaker-disjoint splits; add speakers or set dev/test to 0"
        )
    speakers = sorted(by_spk)
    random.Random(seed).shuffle(speakers)
    total = len(items)
    out: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    i = 0
    for split, frac in (("dev", dev), ("test", test)):
        if frac <= 0:
            continue
        # take whole speakers until the split holds its share, keeping one speaker back for train
        while i < len(speakers) - 1 and (not out[split] or len(out[split]) < frac * total):
            out[split].extend(by_spk[speakers[i]])
            i += 1
    for spk in speakers[i:]:
        out["train"].extend(by_spk[spk])
    return out


def stable_hash(text: str) -> int:
    """A process-independent hash (Python's ``hash`` is salted per run)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")
