"""Inference: offline transcription, evaluation (CER/WER/RTF) and a streaming chunked-CTC recogniser.

The streaming recogniser is what a live call needs: audio arrives in small chunks and the caller
wants a partial hypothesis after each one and a final one when the call turn ends. It runs the CTC
model on fixed chunks with some left context and a short look-ahead (chunked CTC: each chunk's
frames are computed from a window around it, so a bidirectional model only sees bounded future),
keeps the posteriors of each chunk's own frames, and extends a greedy decoding of them for the
partial result. Features are normalised with running statistics of the audio heard so far. Only the
window the next chunk needs is kept for the model, so each chunk costs the same at minute two of a
call as at second two. The final hypothesis is, by default, a full-utterance pass (with beam search
and LM if configured), which is exactly the offline result; with ``rescore_final=False`` it decodes
the chunk posteriors.

Every hypothesis (offline, partial or final) has its runs of spaces collapsed and its ends trimmed:
a model may emit a space for each stretch of a long silence.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from haneul.errors import InvalidInput
from haneul.speech.corpus import AudioError, Manifest, load_audio
from haneul.speech.decode import CharNgramLM, greedy_decode, prefix_beam_search
from haneul.speech.features import FeatureConfig, extract, log_mel, spectrogram
from haneul.speech.metrics import EvalResult, cer, wer
from haneul.speech.models import LAS, DeepSpeech2
from haneul.speech.vocab import Vocabulary
from haneul.text.korean import normalize as normalize_text


def build_lm(texts: Iterable[str], vocab: Vocabulary, order: int = 4) -> CharNgramLM:
    """A character n-gram LM over ``vocab`` ids (out-of-vocabulary characters count as ``<unk>``)."""
    before = vocab.oov.copy()
    lm = CharNgramLM(order, len(vocab)).fit(vocab.encode(t) for t in texts)
    vocab.oov = before  # LM text is not evaluation data; keep the OOV tally about audio transcripts
    return lm


def read_lm_text(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a text file, or the transcripts of a ClovaCall manifest (``.json``)."""
    from haneul.speech.corpus import read_manifest

    path = Path(path)
    if path.suffix == ".json":
        return [u.text for u in read_manifest(path)]
    if not path.is_file():
        raise InvalidInput(f"LM text {path} does not exist; pass a UTF-8 text file or a manifest .json")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise InvalidInput(f"LM text {path} is empty; give it one sentence per line")
    return lines


@dataclass
class Recognizer:
    """A trained model plus its vocabulary and feature settings, ready to transcribe."""

    model: torch.nn.Module
    vocab: Vocabulary
    features: FeatureConfig
    beam: int = 1
    lm: CharNgramLM | None = None
    alpha: float = 0.5
    beta: float = 1.0

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs) -> Recognizer:
        from haneul.speech.train import load_checkpoint, model_from_checkpoint

        model, vocab, fcfg = model_from_checkpoint(load_checkpoint(path))
        return cls(model, vocab, fcfg, **kwargs)

    @property
    def is_ctc(self) -> bool:
        return isinstance(self.model, DeepSpeech2)

    def text_of(self, ids: Iterable[int]) -> str:
        """Text of output ids with runs of spaces (long silences) collapsed and the ends trimmed."""
        return normalize_text(self.vocab.decode(ids))

    def decode_posteriors(self, log_probs: np.ndarray) -> str:
        if self.beam <= 1 and self.lm is None:
            return self.text_of(greedy_decode(log_probs))
        hyps = prefix_beam_search(
            log_probs, beam=max(1, self.beam), lm=self.lm, alpha=self.alpha, beta=self.beta
        )
        return self.text_of(hyps[0][0])

    @torch.no_grad()
    def posteriors(self, audio: np.ndarray) -> np.ndarray:
        """CTC log posteriors (T', V) of one utterance."""
        x = extract(audio, self.features).unsqueeze(0)
        log_probs, out_len, _ = self.model(x, torch.tensor([x.shape[1]]))
        return log_probs[0, : int(out_len[0])].numpy()

    @torch.no_grad()
    def transcribe(self, audio: np.ndarray | str | os.PathLike[str]) -> str:
        """Text of one utterance (16 kHz float array or an audio file path)."""
        if not isinstance(audio, np.ndarray):
            audio = load_audio(audio, self.features.sample_rate)
        if audio.size == 0:
            return ""
        if self.is_ctc:
            return self.decode_posteriors(self.posteriors(audio))
        las = cast(LAS, self.model)
        x = extract(audio, self.features).unsqueeze(0)
        lengths = torch.tensor([x.shape[1]])
        if self.beam <= 1 and self.lm is None:
            return self.text_of(las.decode(x, lengths)[0])
        # LAS scores are length-normalised; the insertion bonus only balances the LM's per-character cost
        beta = self.beta if self.lm is not None else 0.0
        hyps = las.beam_search(x, lengths, beam=max(1, self.beam), lm=self.lm, alpha=self.alpha, beta=beta)
        return self.text_of(hyps[0][0][0])

    def evaluate(
        self, manifest: Manifest, limit: int | None = None, *, skip_unreadable: bool = False
    ) -> tuple[EvalResult, list[dict]]:
        """CER (no spaces), WER and real-time factor over a manifest.

        A missing or corrupt audio file counts, by default, as an empty hypothesis: every character
        of its reference is a deletion, so a broken test set cannot look better than it is. With
        ``skip_unreadable`` such files are left out of the scores instead. Either way they are
        counted and listed (rows with ``"unreadable"``); they never count towards the real-time factor.
        """
        rows: list[dict] = []
        refs, hyps = [], []
        audio_s = decode_s = 0.0
        unreadable = readable = 0
        for utt in manifest.items[:limit]:
            try:
                audio = load_audio(manifest.audio_path(utt), self.features.sample_rate)
            except AudioError as exc:
                unreadable += 1
                row: dict = {"wav": utt.wav, "ref": utt.text, "hyp": None, "unreadable": exc.message}
                if not skip_unreadable:
                    refs.append(utt.text)
                    hyps.append("")
                    row["cer"] = 1.0 if utt.text.strip() else None
                rows.append(row)
                continue
            readable += 1
            t0 = time.perf_counter()
            hyp = self.transcribe(audio)  # features + model + decoding all count towards the RTF
            decode_s += time.perf_counter() - t0
            audio_s += len(audio) / self.features.sample_rate
            refs.append(utt.text)
            hyps.append(hyp)
            rows.append(
                {
                    "wav": utt.wav,
                    "ref": utt.text,
                    "hyp": hyp,
                    "cer": cer(utt.text, hyp) if utt.text.strip() else None,
                }
            )
        if not readable:
            raise InvalidInput(
                f"no readable utterance to evaluate in {manifest.path}; run `haneul speech validate`"
            )
        result = EvalResult(
            cer(refs, hyps), wer(refs, hyps), len(refs), audio_s, decode_s,
            unreadable=unreadable, skip_unreadable=skip_unreadable,
        )  # fmt: skip
        return result, rows

    def stream(
        self, chunk_ms: int = 640, left_ms: int = 800, lookahead_ms: int = 320, rescore_final: bool = True
    ) -> StreamingSession:
        if not self.is_ctc:
            raise InvalidInput("streaming needs a CTC (ds2) checkpoint; LAS attends over the whole utterance")
        return StreamingSession(self, chunk_ms, left_ms, lookahead_ms, rescore_final)


@dataclass
class Hypothesis:
    text: str
    is_final: bool
    audio_s: float  # audio consumed so far


@dataclass
class StreamingSession:
    """Feed audio with :meth:`accept`; get partial hypotheses; call :meth:`finish` for the final one."""

    rec: Recognizer
    chunk_ms: int = 640
    left_ms: int = 800
    lookahead_ms: int = 320
    rescore_final: bool = True
    _heard: list[np.ndarray] = field(default_factory=list)  # all audio, for the final full pass
    _window: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _window_start: int = 0  # sample index of _window[0]
    _n: int = 0
    _done: int = 0  # samples whose output frames are already emitted
    _post: list[np.ndarray] = field(default_factory=list)  # chunk posteriors, kept only to decode the final
    _emitted: int = 0  # output frames emitted so far
    _last_best: int = -1  # best symbol of the last emitted frame, to merge repeats across chunks
    _partial: str = ""  # greedy text of the emitted frames, spaces not yet collapsed
    _sum: np.ndarray | None = None
    _sumsq: np.ndarray | None = None
    _frames: int = 0
    _finished: bool = False

    def __post_init__(self) -> None:
        fc = self.rec.features
        stride = cast(DeepSpeech2, self.rec.model).front.out_lengths(torch.tensor([10_000])).item()
        self._ratio = round(10_000 / stride) if stride else 1  # feature frames per output frame
        self._unit = fc.hop * self._ratio  # samples per output frame
        self.chunk = self._round(fc.sample_rate * self.chunk_ms // 1000)
        self.left = self._round(fc.sample_rate * self.left_ms // 1000)
        self.ahead = self._round(fc.sample_rate * self.lookahead_ms // 1000)
        if self.chunk <= 0:
            raise InvalidInput(
                f"chunk_ms={self.chunk_ms} is too small; use at least {1000 * self._unit // fc.sample_rate} ms"
            )

    def _round(self, samples: int) -> int:
        return max(0, samples // self._unit * self._unit)

    def _raw_feats(self, audio: np.ndarray) -> torch.Tensor:
        fc = self.rec.features
        return spectrogram(audio, fc) if fc.kind == "spectrogram" else log_mel(audio, fc)

    @torch.no_grad()
    def _emit(self, end: int, final: bool) -> None:
        start = max(0, self._done - self.left)
        stop = min(self._n, end + (0 if final else self.ahead))
        raw = self._raw_feats(self._window[start - self._window_start : stop - self._window_start])
        # running normalisation statistics over the newly covered feature frames
        hop = self.rec.features.hop
        first = (self._done - start) // hop
        new = raw[first:] if end >= self._n else raw[first : (end - start) // hop]
        s, sq = new.sum(0).numpy(), (new.double() ** 2).sum(0).numpy()
        self._sum = s if self._sum is None else self._sum + s
        self._sumsq = sq if self._sumsq is None else self._sumsq + sq
        self._frames += new.shape[0]
        if self.rec.features.normalize:
            mean = self._sum / max(1, self._frames)
            std = np.sqrt(np.maximum(self._sumsq / max(1, self._frames) - mean**2, 0.0))
            x = (raw - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(
                std + 1e-5, dtype=torch.float32
            )
        else:
            x = raw
        lp, out_len, _ = self.rec.model(x.unsqueeze(0), torch.tensor([x.shape[0]]))
        lp = lp[0, : int(out_len[0])].numpy()
        a = (self._done - start) // self._unit
        # the last window also owns the extra frame a centred STFT adds at the very end
        b = len(lp) if end >= self._n and final else a + (end - self._done + self._unit - 1) // self._unit
        own = lp[a : min(b, len(lp))]
        self._emitted += len(own)
        if not self.rescore_final:
            self._post.append(own)
        if len(own):
            self._partial += self.rec.vocab.decode(greedy_decode(own, previous=self._last_best))
            self._last_best = int(own[-1].argmax())
        self._done = end
        # the next window starts `left` samples before the first unemitted one: drop what precedes it
        keep_from = max(0, self._done - self.left)
        self._window = self._window[keep_from - self._window_start :]
        self._window_start = keep_from

    def accept(self, chunk: np.ndarray | Sequence[float]) -> Hypothesis:
        """Add 16 kHz mono samples; returns the current partial hypothesis."""
        if self._finished:
            raise InvalidInput("this stream is finished; start a new one with Recognizer.stream()")
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise InvalidInput(
                f"audio chunks must be mono 1-D arrays, got shape {chunk.shape}; average the channels"
            )
        if self.rescore_final:
            self._heard.append(chunk)
        self._window = np.concatenate([self._window, chunk])
        self._n += len(chunk)
        while self._n - self._done >= self.chunk + self.ahead:
            self._emit(self._done + self.chunk, final=False)
        return Hypothesis(self.partial_text(), False, self._n / self.rec.features.sample_rate)

    def partial_text(self) -> str:
        """Greedy text of the chunks emitted so far, spaces collapsed."""
        return normalize_text(self._partial)

    def finish(self) -> Hypothesis:
        """Flush the remaining audio and return the final hypothesis."""
        if not self._finished:
            while self._done < self._n:
                self._emit(min(self._n, self._done + self.chunk), final=True)
            self._finished = True
        sr = self.rec.features.sample_rate
        if self.rescore_final:
            text = self.rec.transcribe(np.concatenate(self._heard)) if self._n else ""
        else:
            text = self.rec.decode_posteriors(np.concatenate(self._post)) if self._post else ""
        return Hypothesis(text, True, self._n / sr)
