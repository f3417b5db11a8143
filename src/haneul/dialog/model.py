"""The NLI-transfer memory-operation classifier: a small Korean sentence-pair model in torch.

Keep Me Updated (§3.2) classifies each (memory sentence, summary sentence) pair with a model that is
first trained on Korean NLI (entailment / neutral / contradiction) and then on memory-operation pairs.
Here the encoder reads Hangul syllables plus hashed syllable bigrams (no tokenizer to ship), runs a
small transformer and pools to one vector per sentence; pairs are scored from ``[u, v, |u-v|, u*v]``
plus a few lexical pair features (:func:`haneul.dialog.pairs.pair_features_info`) and the lexical
baseline's decision as a one-hot, which is also added to the operation logits with a learned weight
(a prior: with few labelled pairs the model starts from the baseline and learns where to overrule it). Encoding every
sentence once and scoring pairs with a small MLP is what makes a 50 x 10 update a single cheap batch.

The NLI head and the operation head share the first MLP layer's initialisation: the operation head
starts from the NLI head's hidden layer (the transfer) and gets its own 4-way output. A
:class:`DecisionRule` saved with the model turns the operation probabilities into operations,
keeping both sentences (APPEND) when the model is unsure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from haneul.dialog.defaults import classifier_dir, resolve_classifier_path
from haneul.dialog.pairs import (
    N_PAIR_FEATURES,
    OPS,
    PASS_THRESHOLD,
    REPLACE_THRESHOLD,
    TOPIC_THRESHOLD,
    Op,
    SentenceInfo,
    pair_features_info,
)
from haneul.errors import InvalidInput

NLI_LABELS = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class PairClassifierConfig:
    vocab_buckets: int = 8192  # hashed syllable ids (Hangul has 11,172 syllables; collisions are rare in practice)
    bigram_buckets: int = 16384
    max_len: int = 64
    d_model: int = 96
    n_layers: int = 1
    n_heads: int = 4
    d_ff: int = 192
    hidden: int = 128
    dropout: float = 0.1
    rule_prior: float = 2.0  # initial weight of the lexical rule's one-hot added to the operation logits

    @classmethod
    def from_name(cls, name: str) -> PairClassifierConfig:
        if name not in PRESETS:
            raise InvalidInput(f"unknown classifier preset {name!r}; use one of {', '.join(PRESETS)}")
        return PRESETS[name]


PRESETS: dict[str, PairClassifierConfig] = {
    "tiny": PairClassifierConfig(vocab_buckets=2048, bigram_buckets=2048, max_len=48, d_model=32,
                                 n_layers=1, n_heads=2, d_ff=64, hidden=32, dropout=0.0),
    "small": PairClassifierConfig(),
    "base": PairClassifierConfig(d_model=192, n_layers=2, n_heads=6, d_ff=384, hidden=256),
}


def encode_ids(texts: list[str], cfg: PairClassifierConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Syllable ids, bigram ids and the padding mask, each (batch, length)."""
    length = max(1, min(cfg.max_len, max((len(t) for t in texts), default=1)))
    uni_rows, bi_rows = [], []
    vb, bb = cfg.vocab_buckets - 1, cfg.bigram_buckets - 1
    for text in texts:
        codes = [ord(c) for c in text[:length]]
        pad = [0] * (length - len(codes))
        uni_rows.append([1 + c % vb for c in codes] + pad)
        nxt = codes[1:] + [32]
        bi_rows.append([1 + (a * 65599 + b) % bb for a, b in zip(codes, nxt, strict=True)] + pad)
    uni = torch.tensor(uni_rows, dtype=torch.long).reshape(len(texts), length)
    bi = torch.tensor(bi_rows, dtype=torch.long).reshape(len(texts), length)
    return uni, bi, uni != 0


def pair_feature_matrix(a: list[SentenceInfo], b: list[SentenceInfo]) -> torch.Tensor:
    """All ``len(a) x len(b)`` lexical pair features at once, (len(a) * len(b), N_PAIR_FEATURES).

    Matches :func:`haneul.dialog.pairs.pair_features_info` pair by pair; bigram sets become 0/1
    matrices so intersections are one matrix product instead of 500 Python set operations.
    """
    vocab: dict[str, int] = {}
    for info in (*a, *b):
        for g in info.grams | info.topic:
            vocab.setdefault(g, len(vocab))

    def dense(infos: list[SentenceInfo], attr: str) -> torch.Tensor:
        m = torch.zeros(len(infos), max(1, len(vocab)))
        for r, info in enumerate(infos):
            idx = [vocab[g] for g in getattr(info, attr)]
            if idx:
                m[r, idx] = 1.0
        return m

    ga, gb, ta, tb = dense(a, "grams"), dense(b, "grams"), dense(a, "topic"), dense(b, "topic")
    g_inter = ga @ gb.T
    t_inter = ta @ tb.T
    na, nb = ga.sum(1)[:, None], gb.sum(1)[None, :]
    sa, sb = ta.sum(1)[:, None], tb.sum(1)[None, :]
    union = na + nb - g_inter
    jac = torch.where(union > 0, g_inter / union.clamp(min=1), torch.ones_like(union))
    contain = g_inter / torch.minimum(na, nb).clamp(min=1)
    overlap = t_inter / torch.minimum(sa, sb).clamp(min=1)
    cov_a = t_inter / sa.clamp(min=1)
    cov_b = t_inter / sb.clamp(min=1)
    s_change = torch.tensor([float(x.change) for x in b])[None, :].expand_as(jac)
    m_change = torch.tensor([float(x.change) for x in a])[:, None].expand_as(jac)
    s_cancel = torch.tensor([float(x.cancel) for x in b])[None, :].expand_as(jac)
    same = torch.tensor([[float(x.key == y.key) for y in b] for x in a]).reshape(jac.shape)
    feats = torch.stack([jac, contain, overlap, cov_a, cov_b, s_change, m_change, s_cancel, same], -1)
    return feats.reshape(len(a) * len(b), N_PAIR_FEATURES)


def lexical_rule_onehot(feats: torch.Tensor) -> torch.Tensor:
    """The lexical baseline's decision as a one-hot over OPS, from the pair features, (N, 4).

    Same thresholds as :class:`haneul.dialog.operators.LexicalOperator`; given to the classifier so a
    few hundred labelled pairs teach it where the rule is wrong rather than the rule itself.
    """
    sim, contain, overlap = feats[:, 0], feats[:, 1], feats[:, 2]
    s_change, m_change, s_cancel, same = feats[:, 5] > 0, feats[:, 6] > 0, feats[:, 7] > 0, feats[:, 8] > 0
    is_pass = same | ((contain >= PASS_THRESHOLD) & (s_change <= m_change))
    topic = (overlap >= TOPIC_THRESHOLD) & ~is_pass
    is_delete = topic & s_cancel
    is_replace = topic & ~s_cancel & ((s_change & ~m_change) | (sim >= REPLACE_THRESHOLD))
    is_append = ~(is_pass | is_delete | is_replace)
    return torch.stack([is_pass, is_append, is_replace, is_delete], -1).float()


@dataclass(frozen=True)
class DecisionRule:
    """How pair probabilities become operations: keep both sentences (APPEND) when unsure.

    PASS and DELETE drop a summary sentence and REPLACE and DELETE drop a memory sentence; a wrong
    one loses a fact for good, while a wrong APPEND only keeps a stale or repeated one. So the most
    probable operation is used only when its probability reaches its threshold *and* the two
    sentences share some content (content-bigram overlap coefficient ≥ ``min_overlap``): a new fact
    is never dropped by a PASS against an unrelated memory. Otherwise the pair gets the ``unsure``
    decision: APPEND, or the lexical rule's (which only leaves APPEND on near-copies and on
    same-topic sentences with a change or cancellation cue). The defaults are the plain argmax; the
    rule of a trained model is calibrated on development updates by
    :func:`haneul.dialog.train.calibrate` and saved with it.
    """

    pass_min: float = 0.0
    replace_min: float = 0.0
    delete_min: float = 0.0
    min_overlap: float = 0.0
    unsure: str = "append"  # or "lexical"

    def __post_init__(self) -> None:
        if self.unsure not in ("append", "lexical"):
            raise InvalidInput(f"unknown unsure decision {self.unsure!r}; use append or lexical")

    def choose(self, probs: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Operation indices into OPS, (N,), from probabilities (N, 4) and pair features (N, F)."""
        best = probs.argmax(-1)
        p_best = probs.gather(1, best[:, None])[:, 0]
        floor = torch.tensor([self.pass_min, 0.0, self.replace_min, self.delete_min])[best]
        related = feats[:, 2] >= self.min_overlap  # content-bigram overlap coefficient
        keep = (p_best >= floor) & related
        if self.unsure == "lexical":
            fallback = lexical_rule_onehot(feats).argmax(-1)
        else:
            fallback = torch.full_like(best, OPS.index(Op.APPEND))
        return torch.where(keep, best, fallback)


class SentenceEncoder(nn.Module):
    def __init__(self, cfg: PairClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.uni = nn.Embedding(cfg.vocab_buckets, cfg.d_model, padding_idx=0)
        self.bi = nn.Embedding(cfg.bigram_buckets, cfg.d_model, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.out = nn.Linear(2 * cfg.d_model, cfg.d_model)

    def forward(self, uni: torch.Tensor, bi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(uni.shape[1], device=uni.device)
        x = self.uni(uni) + self.bi(bi) + self.pos(pos)[None]  # (B, T, D)
        x = self.norm(self.layers(x, src_key_padding_mask=~mask))
        m = mask[..., None].float()
        mean = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        mx = x.masked_fill(~mask[..., None], -1e4).max(1).values
        return torch.tanh(self.out(torch.cat([mean, mx], -1)))  # (B, D)


class PairHead(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_out: int, dropout: float):
        super().__init__()
        self.hidden = nn.Linear(d_in, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(F.gelu(self.hidden(x))))


class PairClassifier(nn.Module):
    """``forward(u_ids, v_ids, feats, head, targets=None) -> (logits, loss)``."""

    def __init__(self, cfg: PairClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SentenceEncoder(cfg)
        d_in = 4 * cfg.d_model + N_PAIR_FEATURES + len(OPS)
        self.nli_head = PairHead(d_in, cfg.hidden, len(NLI_LABELS), cfg.dropout)
        self.op_head = PairHead(d_in, cfg.hidden, len(OPS), cfg.dropout)
        self.rule_scale = nn.Parameter(torch.tensor(cfg.rule_prior))
        self.decision = DecisionRule()  # set from the saved model's config; not a weight
        # a zero output layer makes an untrained operation head exactly the lexical prior
        nn.init.zeros_(self.op_head.out.weight)
        nn.init.zeros_(self.op_head.out.bias)

    def transfer_nli_to_op(self) -> None:
        """Start the operation head's hidden layer from the NLI head's (the NLI transfer)."""
        self.op_head.hidden.load_state_dict(self.nli_head.hidden.state_dict())

    def pair_logits(self, u: torch.Tensor, v: torch.Tensor, feats: torch.Tensor, head: str) -> torch.Tensor:
        rule = lexical_rule_onehot(feats)
        x = torch.cat([u, v, (u - v).abs(), u * v, feats, rule], -1)
        if head == "nli":
            return self.nli_head(x)
        # the lexical decision is a prior on the logits: with few labelled pairs the model starts from
        # the baseline and learns where to overrule it
        return self.op_head(x) + self.rule_scale * rule

    def forward(self, a: list[str], b: list[str], head: str = "op", targets: torch.Tensor | None = None):
        texts = a + b
        uni, bi, mask = encode_ids(texts, self.cfg)
        emb = self.encoder(uni, bi, mask)
        u, v = emb[: len(a)], emb[len(a) :]
        feats = torch.tensor(
            [pair_features_info(SentenceInfo.of(x), SentenceInfo.of(y)) for x, y in zip(a, b, strict=True)], dtype=torch.float32
        ).reshape(len(a), N_PAIR_FEATURES)
        logits = self.pair_logits(u, v, feats, head)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    @torch.no_grad()
    def embed(self, texts: list[str], cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Sentence vectors (len(texts), d_model); sentences found in ``cache`` are not re-encoded."""
        self.eval()
        if cache is None:
            return self.encoder(*encode_ids(texts, self.cfg))
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            for text, vec in zip(todo, self.encoder(*encode_ids(todo, self.cfg)), strict=True):
                cache[text] = vec
        return torch.stack([cache[t] for t in texts])

    @torch.no_grad()
    def predict_probs(
        self, memory: list[str], summary: list[str], cache: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Operation probabilities and pair features of all pairs in one batch, (nm*ns, 4) and (nm*ns, F)."""
        emb = self.embed(memory + summary, cache)
        nm, ns = len(memory), len(summary)
        u = emb[:nm, None, :].expand(nm, ns, -1).reshape(nm * ns, -1)
        v = emb[nm:][None, :, :].expand(nm, ns, -1).reshape(nm * ns, -1)
        feats = pair_feature_matrix([SentenceInfo.of(m) for m in memory], [SentenceInfo.of(s) for s in summary])
        return self.pair_logits(u, v, feats, "op").softmax(-1), feats

    @torch.no_grad()
    def predict_ops(
        self, memory: list[str], summary: list[str], cache: dict[str, torch.Tensor] | None = None,
        decision: DecisionRule | None = None,
    ) -> tuple[list[list[Op]], list[list[float]]]:
        """Label all ``len(memory) x len(summary)`` pairs in one batch; returns ops and their probabilities.

        ``decision`` (default: the model's own, :attr:`decision`) turns probabilities into operations.
        """
        probs, feats = self.predict_probs(memory, summary, cache)
        idx = (decision or self.decision).choose(probs, feats)
        val = probs.gather(1, idx[:, None])[:, 0]
        nm, ns = len(memory), len(summary)
        return [[OPS[k] for k in row] for row in idx.view(nm, ns).tolist()], val.view(nm, ns).tolist()


def save_classifier(model: PairClassifier, name_or_path: str | Path, meta: dict[str, Any] | None = None, *,
                    home: Path | None = None) -> Path:
    """Write the model to a folder, or by name under ``home`` (default ``HANEUL_HOME``)."""
    from safetensors.torch import save as st_save

    from haneul.io import atomic_write_bytes, atomic_write_text

    named = "/" not in str(name_or_path) and not Path(name_or_path).is_absolute()
    path = classifier_dir(str(name_or_path), home) if named else Path(name_or_path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path / "model.safetensors", st_save(state))
    # config last: its presence marks a complete model folder
    body = {"format": "haneul-dialog-operator/1", "config": asdict(model.cfg), "ops": [o.value for o in OPS],
            "nli_labels": list(NLI_LABELS), "decision": asdict(model.decision), "meta": meta or {}}
    atomic_write_text(path / "config.json", json.dumps(body, ensure_ascii=False, indent=2))
    return path


def load_classifier(name_or_path: str | Path, *, home: Path | None = None) -> PairClassifier:
    """A saved model from a folder, or by name from ``home`` (default ``HANEUL_HOME``)."""
    from safetensors.torch import load_file

    path = resolve_classifier_path(name_or_path, home)
    body = json.loads((path / "config.json").read_text(encoding="utf-8"))
    cfg = replace(PairClassifierConfig(), **body["config"])
    model = PairClassifier(cfg)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    model.decision = DecisionRule(**body.get("decision", {}))  # older folders: plain argmax
    model.eval()
    return model
