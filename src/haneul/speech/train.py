"""Training loop for the DS2-style CTC model and LAS on ClovaCall manifests.

Utterances are loaded once into memory as features (bad audio is skipped and listed, never fatal),
grouped into length buckets so a batch wastes little padding (DeepSpeech2, Amodei et al., 2016,
section 3.2 "SortaGrad" sorts the first epoch by length too), and trained with AdamW, warm-up and
cosine decay, gradient clipping and SpecAugment. Every ``eval_every`` steps the dev set is decoded
greedily; loss, learning rate and dev CER go through ``haneul.report`` so a run is the same inside a
platform session and outside one. ``last.pt`` (every evaluation) and ``best.pt`` (lowest dev CER)
hold everything needed to resume or to transcribe.
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import haneul
from haneul.errors import InvalidInput, NotFound
from haneul.io import atomic_open
from haneul.speech.corpus import AudioError, Manifest, load_audio, read_manifest
from haneul.speech.decode import greedy_decode
from haneul.speech.features import FeatureConfig, SpecAugment, extract
from haneul.speech.metrics import cer, wer
from haneul.speech.models import LAS, MODEL_KINDS, DeepSpeech2, DS2Config, LASConfig
from haneul.speech.vocab import UNITS, Vocabulary
from haneul.text.korean import normalize as normalize_text
from haneul.training import pick_device, warmup_decay


class SpeechDataWarning(UserWarning):
    """Some utterances were skipped (unreadable audio) or had characters outside the vocabulary."""


@dataclass
class TrainConfig:
    model: str = "ds2"
    preset: str = "small"
    features: str = "spectrogram"
    units: str = "hangul"
    epochs: int = 30
    max_steps: int | None = None
    max_minutes: float | None = None
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    clip: float = 5.0
    specaugment: bool = True
    eval_every: int = 200
    seed: int = 0
    amp: bool = True
    threads: int | None = None
    device: str | None = None
    out_dir: str = "speech-run"
    resume: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise InvalidInput(f"--model {self.model!r} is unknown; choose one of {', '.join(MODEL_KINDS)}")
        if self.units not in UNITS:
            raise InvalidInput(f"--units {self.units!r} is unknown; choose one of {', '.join(UNITS)}")
        if self.batch_size < 1 or self.epochs < 1:
            raise InvalidInput("--batch-size and --epochs must be at least 1")


def lr_at(cfg: TrainConfig, step: int, total_steps: int, minutes: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak.

    The decay follows whichever budget runs out first: the steps, or ``max_minutes`` of wall time,
    so that a run bounded by time still ends at the low learning rate rather than at the peak.
    """
    spent = minutes / cfg.max_minutes if cfg.max_minutes else 0.0
    return warmup_decay(step, total=total_steps, warmup=cfg.warmup_steps, peak=cfg.lr, floor=cfg.lr * 0.05, spent=spent)


@dataclass
class Example:
    feats: torch.Tensor  # (T, F) float16 to halve memory
    ids: list[int]
    text: str
    seconds: float
    wav: str


@dataclass
class TrainResult:
    out_dir: Path
    best_checkpoint: Path
    best_cer: float
    steps: int
    history: list[dict[str, float]]
    skipped: list[tuple[str, str]]
    oov: dict[str, int]


# --------------------------------------------------------------------------------------------------
# data


def load_examples(
    manifest: Manifest,
    fcfg: FeatureConfig,
    vocab: Vocabulary,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Example], list[tuple[str, str]]]:
    """Features and ids for every usable utterance, plus ``(wav, reason)`` for those skipped."""
    out, skipped = [], []
    for i, utt in enumerate(manifest):
        if progress and i % 50 == 0:
            progress(i, len(manifest))
        if not utt.text.strip():
            skipped.append((utt.wav, "empty transcript"))
            continue
        try:
            audio = load_audio(manifest.audio_path(utt), fcfg.sample_rate)
        except AudioError as exc:
            skipped.append((utt.wav, exc.message))
            continue
        feats = extract(audio, fcfg).to(torch.float16)
        out.append(Example(feats, vocab.encode(utt.text), utt.text, len(audio) / fcfg.sample_rate, utt.wav))
    if progress:
        progress(len(manifest), len(manifest))
    return out, skipped


def warn_skipped(name: str, skipped: list[tuple[str, str]]) -> None:
    if skipped:
        lines = "\n".join(f"  - {w}: {why}" for w, why in skipped[:50])
        more = f"\n  ... and {len(skipped) - 50} more" if len(skipped) > 50 else ""
        warnings.warn(
            f"{name}: skipped {len(skipped)} utterance(s):\n{lines}{more}", SpeechDataWarning, stacklevel=2
        )


def buckets(examples: list[Example], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Batches of similar length: sort by frames, cut into ``batch_size`` runs, shuffle the runs."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].feats.shape[0])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(
    examples: list[Example], augment: SpecAugment | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded (B, T, F) features, lengths, padded targets (B, S) and target lengths."""
    feats = [e.feats.float() for e in examples]
    if augment is not None:
        feats = [augment(f, generator) for f in feats]
    lengths = torch.tensor([f.shape[0] for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    tl = torch.tensor([len(e.ids) for e in examples])
    y = torch.zeros(len(examples), max(1, int(tl.max())), dtype=torch.long)
    for i, e in enumerate(examples):
        y[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
    return x, lengths, y, tl


# --------------------------------------------------------------------------------------------------
# models and checkpoints


def build_model(kind: str, preset: str, input_dim: int, vocab_size: int, **overrides: Any) -> torch.nn.Module:
    if kind == "ds2":
        return DeepSpeech2(
            DS2Config.from_name(preset, input_dim=input_dim, vocab_size=vocab_size, **overrides)
        )
    if kind == "las":
        return LAS(LASConfig.from_name(preset, input_dim=input_dim, vocab_size=vocab_size, **overrides))
    raise InvalidInput(f"model kind {kind!r} is unknown; choose one of {', '.join(MODEL_KINDS)}")


def save_checkpoint(path: Path, **payload: Any) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"checkpoint {path} does not exist; train one with `haneul speech train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InvalidInput(f"checkpoint {path} is unreadable ({exc}); retrain or pick another file") from None


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[torch.nn.Module, Vocabulary, FeatureConfig]:
    vocab = Vocabulary.from_json(ckpt["vocab"])
    fcfg = FeatureConfig(**ckpt["feature_config"])
    if ckpt["kind"] == "ds2":
        model: torch.nn.Module = DeepSpeech2(DS2Config(**ckpt["model_config"]))
    else:
        model = LAS(LASConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, vocab, fcfg


@torch.no_grad()
def transcribe_batch(
    model: torch.nn.Module, vocab: Vocabulary, x: torch.Tensor, lengths: torch.Tensor
) -> list[str]:
    """Greedy transcripts for a padded batch (CTC best path or LAS greedy spelling), runs of spaces collapsed."""
    if isinstance(model, DeepSpeech2):
        log_probs, out_len, _ = model(x, lengths)
        lp = log_probs.cpu().numpy()
        return [normalize_text(vocab.decode(greedy_decode(lp[i, : int(out_len[i])]))) for i in range(len(lp))]
    return [normalize_text(vocab.decode(ids)) for ids in model.decode(x, lengths)]


def evaluate_examples(
    model: torch.nn.Module,
    vocab: Vocabulary,
    examples: list[Example],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> tuple[float, float, list[str]]:
    """(CER, WER, hypotheses) of greedy decoding over ``examples``."""
    was_training = model.training
    model.eval()
    hyps: dict[int, str] = {}
    for batch in buckets(examples, batch_size, None):
        x, lengths, _, _ = collate([examples[i] for i in batch])
        for i, h in zip(batch, transcribe_batch(model, vocab, x.to(device), lengths.to(device)), strict=True):
            hyps[i] = h
    model.train(was_training)
    ordered = [hyps[i] for i in range(len(examples))]
    refs = [e.text for e in examples]
    return cer(refs, ordered), wer(refs, ordered), ordered


# --------------------------------------------------------------------------------------------------
# the loop


def train(
    cfg: TrainConfig,
    train_manifest: str | os.PathLike[str] | Manifest,
    dev_manifest: str | os.PathLike[str] | Manifest,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``train_manifest``, select on dev CER; resume from ``out_dir/last.pt``."""
    say = log or (lambda msg: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tr = train_manifest if isinstance(train_manifest, Manifest) else read_manifest(train_manifest)
    dv = dev_manifest if isinstance(dev_manifest, Manifest) else read_manifest(dev_manifest)

    resume_from = out / "last.pt"
    ckpt = load_checkpoint(resume_from) if cfg.resume and resume_from.is_file() else None
    if ckpt is not None:
        vocab = Vocabulary.from_json(ckpt["vocab"])
        fcfg = FeatureConfig(**ckpt["feature_config"])
        say(f"resuming from {resume_from} at step {ckpt['step']}")
    else:
        vocab = Vocabulary.for_units(cfg.units, (u.text for u in tr))
        fcfg = FeatureConfig.from_name(cfg.features)

    say(f"loading {len(tr)} training and {len(dv)} dev utterances")
    train_ex, skipped = load_examples(tr, fcfg, vocab)
    train_oov = sum(vocab.oov.values())
    dev_ex, dev_skipped = load_examples(dv, fcfg, vocab)
    skipped_all = [(f"train:{w}", r) for w, r in skipped] + [(f"dev:{w}", r) for w, r in dev_skipped]
    warn_skipped("speech train", skipped_all)
    if vocab.oov:
        warnings.warn(
            f"{sum(vocab.oov.values()) - train_oov} dev character(s) outside the training vocabulary mapped to <unk>: "
            + ", ".join(f"{c!r}x{n}" for c, n in vocab.oov.most_common(10)),
            SpeechDataWarning,
            stacklevel=2,
        )
    if not train_ex:
        raise InvalidInput(
            f"no readable training utterance in {tr.path}; run `haneul speech validate {tr.path}`"
        )
    if not dev_ex:
        raise InvalidInput(f"no readable dev utterance in {dv.path}; run `haneul speech validate {dv.path}`")

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, fcfg.dim, len(vocab), **cfg.overrides).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_ex) / cfg.batch_size)
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch

    step, epoch, best_cer, history = 0, 0, float("inf"), []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, epoch, best_cer, history = ckpt["step"], ckpt["epoch"], ckpt["best_cer"], ckpt["history"]

    augment = SpecAugment() if cfg.specaugment else None
    gen = torch.Generator().manual_seed(cfg.seed + step)
    use_amp = cfg.amp and device.type == "cuda"
    model_config = model.cfg.to_dict()

    def checkpoint(path: Path) -> None:
        save_checkpoint(
            path, kind=cfg.model, model_config=model_config, feature_config=asdict(fcfg), vocab=vocab.to_json(),
            model=model.state_dict(), optimizer=opt.state_dict(), step=step, epoch=epoch, best_cer=best_cer,
            history=history, train_config=asdict(cfg),
        )  # fmt: skip

    def run_eval(loss_avg: float) -> None:
        nonlocal best_cer
        dev_cer, dev_wer, hyps = evaluate_examples(model, vocab, dev_ex, cfg.batch_size, device)
        point = {"step": step, "epoch": epoch, "loss": loss_avg, "dev_cer": dev_cer, "dev_wer": dev_wer,
                 "minutes": (time.perf_counter() - t0) / 60 + elapsed0}  # fmt: skip
        history.append(point)
        haneul.report(step=step, dev_cer=dev_cer, dev_wer=dev_wer)
        say(
            f"step {step} epoch {epoch} loss {loss_avg:.3f} dev CER {dev_cer:.3%} WER {dev_wer:.3%}  e.g. {hyps[0]!r}"
        )
        if dev_cer < best_cer:
            best_cer = dev_cer
            checkpoint(out / "best.pt")
        checkpoint(out / "last.pt")

    t0 = time.perf_counter()
    elapsed0 = history[-1]["minutes"] if history else 0.0
    deadline = None if cfg.max_minutes is None else cfg.max_minutes - elapsed0
    model.train()
    running, n_running = 0.0, 0
    stop = step >= total_steps
    while not stop:
        # SortaGrad: the first epoch goes shortest first, later ones in shuffled buckets
        rng = random.Random(cfg.seed * 1000 + epoch)
        order = buckets(train_ex, cfg.batch_size, None if epoch == 0 else rng)
        skip = step - epoch * steps_per_epoch if ckpt is not None and step > epoch * steps_per_epoch else 0
        for batch in order[skip:]:
            x, lengths, y, tl = collate([train_ex[i] for i in batch], augment, gen)
            x, lengths, y, tl = x.to(device), lengths.to(device), y.to(device), tl.to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step, total_steps, (time.perf_counter() - t0) / 60 + elapsed0)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                if cfg.model == "ds2":
                    _, _, loss = model(x, lengths, y, tl)
                else:
                    _, loss = model(x, lengths, y, tl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            step += 1
            running += loss.item()
            n_running += 1
            haneul.report(step=step, loss=loss.item(), lr=opt.param_groups[0]["lr"])
            out_of_time = deadline is not None and (time.perf_counter() - t0) / 60 >= deadline
            if step % cfg.eval_every == 0 or step >= total_steps or out_of_time:
                run_eval(running / max(1, n_running))
                running, n_running = 0.0, 0
            if step >= total_steps or out_of_time:
                stop = True
                break
        else:
            epoch += 1
        ckpt = None  # only the first epoch after a resume skips batches
    if not history or history[-1]["step"] != step:
        run_eval(running / max(1, n_running))
    haneul.flush()
    return TrainResult(out, out / "best.pt", best_cer, step, history, skipped_all, dict(vocab.oov))
