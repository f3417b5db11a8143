"""Listen, Attend and Spell with location-aware attention (the ClovaCall LAS baseline).

Encoder ("listener", Chan et al., 2016, section 3.1): a 2-D convolutional front end that
downsamples time by 4, then bidirectional LSTM layers. Decoder ("speller", section 3.2): an LSTM
over the previous character and the previous context vector, with location-aware attention
(Chorowski et al., 2015, section 2.2): the energies use the decoder state, the encoder states and
features of the previous attention weights obtained by a 1-D convolution, which keeps the alignment
moving forward. Trained with teacher forcing and cross-entropy; decoded greedily or with a beam (optionally fused
with a character n-gram LM). ``forward(feats, lengths, targets=None, target_lengths=None) -> (logits, loss)``.

Hybrid CTC / attention training (Kim, Hori and Watanabe, 2017; ESPnet's default): a linear CTC head on
the listener's states adds ``ctc_weight * CTC + (1 - ctc_weight) * cross-entropy`` to the loss. CTC's
monotonic alignment teaches the listener where each character lies, so the attention, which on its
own may spend most of a CPU budget learning a language model of the transcripts before it finds
the audio, locks on early. ``ctc_weight=0`` is the plain LAS of ClovaCall (and of checkpoints saved
before this option existed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from haneul.errors import InvalidInput
from haneul.speech.models.ctc import ConvFrontEnd, DS2Config

if TYPE_CHECKING:
    from haneul.speech.decode import CharNgramLM

SOS, EOS = 2, 3  # ids fixed by haneul.speech.vocab


@dataclass(frozen=True)
class LASConfig:
    input_dim: int = 161
    vocab_size: int = 0
    conv_channels: int = 32
    enc_hidden: int = 256
    enc_layers: int = 3
    dec_hidden: int = 256
    emb_dim: int = 128
    att_dim: int = 128
    loc_channels: int = 10
    loc_kernel: int = 31
    dropout: float = 0.1
    max_decode_len: int = 200
    ctc_weight: float = 0.0

    @staticmethod
    def from_name(name: str, **overrides) -> LASConfig:
        """Named presets: ``tiny`` (tests), ``small``, ``clovacall`` (paper-sized: 3x512 BiLSTM); all with
        the hybrid CTC loss at weight 0.3 unless ``ctc_weight`` says otherwise."""
        presets = {
            "tiny": dict(
                conv_channels=8,
                enc_hidden=64,
                enc_layers=1,
                dec_hidden=64,
                emb_dim=32,
                att_dim=32,
                dropout=0.0,
            ),
            "small": dict(conv_channels=16, enc_hidden=192, enc_layers=3, dec_hidden=256),
            "clovacall": dict(
                conv_channels=32, enc_hidden=512, enc_layers=3, dec_hidden=512, emb_dim=256, att_dim=256
            ),
        }
        if name not in presets:
            raise InvalidInput(f"LAS preset {name!r} is unknown; choose one of {', '.join(presets)}")
        return LASConfig(**{"ctc_weight": 0.3, **presets[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


class Listener(nn.Module):
    def __init__(self, cfg: LASConfig) -> None:
        super().__init__()
        self.front = ConvFrontEnd(
            DS2Config(input_dim=cfg.input_dim, vocab_size=2, conv_channels=cfg.conv_channels, time_stride=4)
        )
        self.rnn = nn.LSTM(
            self.front.out_dim, cfg.enc_hidden, num_layers=cfg.enc_layers, batch_first=True, bidirectional=True,
            dropout=cfg.dropout if cfg.enc_layers > 1 else 0.0,
        )  # fmt: skip

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_len = self.front(feats, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, out_len.cpu().clamp(min=1), batch_first=True, enforce_sorted=False
        )
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return y, out_len  # (B, T', 2H)


class LocationAwareAttention(nn.Module):
    """e_{t,j} = w^T tanh(W s_t + V h_j + U (F * a_{t-1})_j + b); a_t = softmax(e_t) over valid j."""

    def __init__(self, dec_dim: int, enc_dim: int, att_dim: int, channels: int, kernel: int) -> None:
        super().__init__()
        self.query = nn.Linear(dec_dim, att_dim, bias=False)
        self.key = nn.Linear(enc_dim, att_dim, bias=True)
        self.loc_conv = nn.Conv1d(1, channels, kernel, padding=kernel // 2, bias=False)
        self.loc = nn.Linear(channels, att_dim, bias=False)
        self.score = nn.Linear(att_dim, 1, bias=False)

    def forward(
        self,
        state: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        prev: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, D), keys = key(enc) (B, T, A), values (B, T, E), prev (B, T), mask (B, T) True=valid."""
        loc = self.loc(self.loc_conv(prev.unsqueeze(1)).transpose(1, 2))  # (B, T, A)
        energy = self.score(torch.tanh(self.query(state).unsqueeze(1) + keys + loc)).squeeze(-1)
        energy = energy.masked_fill(~mask, float("-inf"))
        weights = energy.softmax(-1)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, E)
        return context, weights


class LAS(nn.Module):
    def __init__(self, cfg: LASConfig) -> None:
        super().__init__()
        if cfg.vocab_size <= EOS:
            raise InvalidInput("LASConfig.vocab_size must be set from the vocabulary")
        if not 0.0 <= cfg.ctc_weight < 1.0:
            raise InvalidInput(f"ctc_weight={cfg.ctc_weight} must be in [0, 1): 0 is plain LAS, 0.3 the usual mix")
        self.cfg = cfg
        self.listener = Listener(cfg)
        enc_dim = 2 * cfg.enc_hidden
        self.embed = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.cell = nn.LSTMCell(cfg.emb_dim + enc_dim, cfg.dec_hidden)
        self.attention = LocationAwareAttention(
            cfg.dec_hidden, enc_dim, cfg.att_dim, cfg.loc_channels, cfg.loc_kernel
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Sequential(
            nn.Linear(cfg.dec_hidden + enc_dim, cfg.dec_hidden),
            nn.Tanh(),
            nn.Linear(cfg.dec_hidden, cfg.vocab_size),
        )
        self.ctc = nn.Linear(enc_dim, cfg.vocab_size) if cfg.ctc_weight > 0 else None

    def _init(self, enc: torch.Tensor, enc_len: torch.Tensor):
        b, t, e = enc.shape
        mask = torch.arange(t, device=enc.device)[None, :] < enc_len[:, None]
        prev = mask.float() / enc_len.clamp(min=1)[:, None].float()  # uniform start over valid frames
        h = enc.new_zeros(b, self.cfg.dec_hidden)
        state = (h, h.clone())
        context = enc.new_zeros(b, e)
        return mask, prev, state, context, self.attention.key(enc)

    def _step(self, token, state, context, enc, keys, prev, mask):
        x = torch.cat([self.embed(token), context], dim=-1)
        h, c = self.cell(x, state)
        context, weights = self.attention(h, keys, enc, prev, mask)
        logits = self.out(self.drop(torch.cat([h, context], dim=-1)))
        return logits, (h, c), context, weights

    def forward(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        target_lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits (B, S+1, V) for targets (B, S) (padded; no start/end markers)."""
        if targets is None or target_lengths is None:
            raise InvalidInput("LAS.forward needs targets for teacher forcing; use LAS.decode to transcribe")
        enc, enc_len = self.listener(feats, lengths)
        mask, prev, state, context, keys = self._init(enc, enc_len)
        b, s = targets.shape
        sos = targets.new_full((b, 1), SOS)
        inputs = torch.cat([sos, targets], dim=1)  # (B, S+1)
        gold = torch.cat([targets, targets.new_full((b, 1), -100)], dim=1)
        gold[torch.arange(b), target_lengths] = EOS
        pad = torch.arange(s + 1, device=targets.device)[None, :] > target_lengths[:, None]
        gold = gold.masked_fill(pad, -100)
        logits = []
        for i in range(s + 1):
            step, state, context, prev = self._step(inputs[:, i], state, context, enc, keys, prev, mask)
            logits.append(step)
        out = torch.stack(logits, dim=1)
        loss = F.cross_entropy(
            out.reshape(-1, out.shape[-1]).float(), gold.reshape(-1), ignore_index=-100, label_smoothing=0.1
        )
        if self.ctc is not None:
            loss = (1 - self.cfg.ctc_weight) * loss + self.cfg.ctc_weight * self.ctc_loss(
                enc, enc_len, targets, target_lengths)
        return out, loss

    def ctc_loss(self, enc: torch.Tensor, enc_len: torch.Tensor, targets: torch.Tensor,
                 target_lengths: torch.Tensor) -> torch.Tensor:
        """CTC of the listener's states against ``targets`` (blank = id 0), averaged per target character."""
        assert self.ctc is not None
        log_probs = self.ctc(enc).float().log_softmax(-1).transpose(0, 1)  # (T, B, V)
        return F.ctc_loss(log_probs, targets, enc_len, target_lengths, blank=0, reduction="mean",
                          zero_infinity=True)

    @torch.no_grad()
    def decode(
        self, feats: torch.Tensor, lengths: torch.Tensor, max_len: int | None = None
    ) -> list[list[int]]:
        """Greedy decoding until the end marker (or ``max_len`` characters) for each utterance."""
        enc, enc_len = self.listener(feats, lengths)
        mask, prev, state, context, keys = self._init(enc, enc_len)
        b = feats.shape[0]
        token = torch.full((b,), SOS, dtype=torch.long, device=feats.device)
        outs: list[list[int]] = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool)
        # Korean speech runs at well under one syllable per 40 ms encoder frame, so an utterance can
        # never need more characters than it has frames; this bounds runaway outputs early in training
        limit = min(max_len or self.cfg.max_decode_len, int(enc_len.max()))
        for _ in range(limit):
            logits, state, context, prev = self._step(token, state, context, enc, keys, prev, mask)
            logits[:, [0, SOS]] = float("-inf")  # the CTC blank and the start marker are never outputs
            token = logits.argmax(-1)
            for i, k in enumerate(token.tolist()):
                if done[i]:
                    continue
                if k == EOS:
                    done[i] = True
                else:
                    outs[i].append(k)
            if bool(done.all()):
                break
        return outs

    @torch.no_grad()
    def beam_search(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        beam: int = 8,
        max_len: int | None = None,
        lm: CharNgramLM | None = None,
        alpha: float = 0.5,
        beta: float = 0.0,
        length_norm: bool = True,
    ) -> list[list[tuple[list[int], float]]]:
        """Beam search per utterance: up to ``beam`` ``(ids, score)`` pairs each, best first.

        ``score`` is the sum of the speller's log-probabilities (the end marker included) plus, per
        emitted character, ``alpha * log P_lm`` (shallow fusion with ``lm``) and ``beta``. Finished
        hypotheses are ranked by ``score / (len + 1)`` when ``length_norm`` (otherwise the shortest
        tend to win), by ``score`` alone if not. The beams of one utterance run as one batch;
        ``beam=1`` gives the greedy result.
        """
        if beam < 1:
            raise InvalidInput(f"beam width {beam} must be at least 1")
        enc_all, enc_len_all = self.listener(feats, lengths)
        out = []
        for i in range(feats.shape[0]):
            n = int(enc_len_all[i])
            limit = min(max_len or self.cfg.max_decode_len, n)
            out.append(self._beam_one(enc_all[i : i + 1, :n], limit, beam, lm, alpha, beta, length_norm))
        return out

    def _beam_one(self, enc, limit, beam, lm, alpha, beta, length_norm) -> list[tuple[list[int], float]]:
        mask, prev, state, context, keys = self._init(enc, enc.new_tensor([enc.shape[1]], dtype=torch.long))
        prefixes: list[tuple[int, ...]] = [()]
        scores = [0.0]
        token = torch.tensor([SOS], device=enc.device)
        finished: list[tuple[tuple[int, ...], float]] = []

        def rank(ids: tuple[int, ...], score: float) -> float:
            return score / (len(ids) + 1) if length_norm else score

        for _ in range(limit):
            k = len(prefixes)
            logits, state, context, prev = self._step(
                token, state, context, enc.expand(k, -1, -1), keys.expand(k, -1, -1), prev, mask.expand(k, -1)
            )
            logits[:, [0, SOS]] = float("-inf")
            logp = logits.float().log_softmax(-1)
            # only the most likely characters per hypothesis (as in CTC prefix beam search: at least
            # 16) can make the beam; the LM is queried for those alone
            top_lp, top_ids = logp.topk(min(max(beam + 1, 16), logp.shape[-1]), dim=-1)
            candidates = []
            for j, (lps, ids) in enumerate(zip(top_lp.tolist(), top_ids.tolist(), strict=True)):
                for lp, c in zip(lps, ids, strict=True):
                    if lp == float("-inf"):  # the blank and the start marker
                        continue
                    total = scores[j] + lp
                    if c != EOS:
                        total += beta + (alpha * lm.logprob(prefixes[j], c) if lm is not None else 0.0)
                    candidates.append((total, j, c))
            candidates.sort(key=lambda t: -t[0])
            keep: list[tuple[float, int, int]] = []
            for total, j, c in candidates[:beam]:
                if c == EOS:
                    finished.append((prefixes[j], total))
                else:
                    keep.append((total, j, c))
            best_done = max((rank(p, s) for p, s in finished), default=float("-inf"))
            # speller log-probabilities only fall as a hypothesis grows, so once the best finished
            # hypothesis beats every live one (with no bonus that could lift them) the search is over
            if not keep or len(finished) >= beam or (beta <= 0 and lm is None and not length_norm and
                                                     best_done >= max(t for t, _, _ in keep)):  # fmt: skip
                break
            parents = torch.tensor([j for _, j, _ in keep], device=enc.device)
            state = (state[0][parents], state[1][parents])
            context, prev = context[parents], prev[parents]
            prefixes = [prefixes[j] + (c,) for _, j, c in keep]
            scores = [t for t, _, _ in keep]
            token = torch.tensor([c for _, _, c in keep], device=enc.device)
        if not finished:  # nothing reached the end marker within the limit: return the live ones
            finished = list(zip(prefixes, scores, strict=True))
        finished.sort(key=lambda ps: -rank(*ps))
        return [(list(p), s) for p, s in finished[:beam]]
