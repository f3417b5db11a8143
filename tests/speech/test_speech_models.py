from __future__ import annotations

import pytest
import torch

from haneul.errors import InvalidInput
from haneul.speech.models import LAS, DeepSpeech2, DS2Config, LASConfig
from haneul.speech.models.las import EOS, SOS, LocationAwareAttention
from haneul.speech.vocab import Vocabulary


def _batch(lengths, dim=161):
    torch.manual_seed(0)
    x = torch.randn(len(lengths), max(lengths), dim)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_ds2_shapes_and_lengths(stride):
    model = DeepSpeech2(DS2Config.from_name("tiny", vocab_size=12, time_stride=stride)).eval()
    x, lengths = _batch([100, 37])
    lp, out_len, _ = model(x, lengths)
    assert lp.shape[0] == 2 and lp.shape[2] == 12
    assert out_len.tolist() == [-(-100 // stride), -(-37 // stride)]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-5)


def test_ds2_padded_batch_equals_single_utterance():
    model = DeepSpeech2(DS2Config.from_name("tiny", vocab_size=9)).eval()
    x, lengths = _batch([80, 45])
    lp, out_len, _ = model(x, lengths)
    single, n, _ = model(x[1:, :45], lengths[1:])
    assert int(n[0]) == int(out_len[1])
    assert torch.allclose(lp[1, : int(n[0])], single[0], atol=1e-5)


def test_ds2_ctc_loss_matches_torch_reference():
    model = DeepSpeech2(DS2Config.from_name("tiny", vocab_size=7)).eval()
    x, lengths = _batch([60, 40])
    targets = torch.tensor([[4, 5, 5, 6], [6, 4, 0, 0]])
    tl = torch.tensor([4, 2])
    lp, out_len, loss = model(x, lengths, targets, tl)
    ref = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, out_len, tl, blank=0)
    assert torch.isfinite(loss) and torch.allclose(loss, ref)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_presets_and_bad_names():
    assert DS2Config.from_name("clovacall").rnn_type == "lstm"
    with pytest.raises(InvalidInput, match="tiny"):
        DS2Config.from_name("huge")
    with pytest.raises(InvalidInput):
        LASConfig.from_name("huge")
    with pytest.raises(InvalidInput):
        DeepSpeech2(DS2Config())  # vocab size unset


def test_las_markers_match_vocabulary():
    v = Vocabulary(["가"])
    assert (v.sos, v.eos) == (SOS, EOS)


def test_las_forward_and_greedy_decode_shapes():
    model = LAS(LASConfig.from_name("tiny", vocab_size=10)).eval()
    x, lengths = _batch([120, 64])
    targets = torch.tensor([[4, 5, 6], [7, 0, 0]])
    logits, loss = model(x, lengths, targets, torch.tensor([3, 1]))
    assert logits.shape == (2, 4, 10) and torch.isfinite(loss)
    hyps = model.decode(x, lengths, max_len=7)
    assert len(hyps) == 2 and all(len(h) <= 7 for h in hyps)
    assert all(k not in (0, SOS, EOS) for h in hyps for k in h)


def test_location_aware_attention_respects_mask_and_uses_previous_alignment():
    torch.manual_seed(0)
    att = LocationAwareAttention(dec_dim=8, enc_dim=6, att_dim=5, channels=3, kernel=5)
    enc = torch.randn(2, 7, 6)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    prev = torch.full((2, 7), 1 / 7)
    ctx, w = att(torch.randn(2, 8), att.key(enc), enc, prev, mask)
    assert torch.allclose(w.sum(-1), torch.ones(2))
    assert (w[1, 4:] == 0).all()
    assert torch.allclose(ctx, torch.einsum("bt,bte->be", w, enc), atol=1e-6)
    prev2 = torch.zeros(2, 7)
    prev2[:, 0] = 1.0
    _, w2 = att(torch.randn(2, 8), att.key(enc), enc, prev2, mask)
    _, w3 = att(torch.zeros(2, 8), att.key(enc), enc, prev, mask)
    _, w4 = att(torch.zeros(2, 8), att.key(enc), enc, prev2, mask)
    assert not torch.allclose(w3, w4)  # same query, different previous alignment -> different weights
