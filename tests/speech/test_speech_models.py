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


def _las_and_input(vocab_size, seed=0):
    torch.manual_seed(seed)
    model = LAS(LASConfig.from_name("tiny", vocab_size=vocab_size)).eval()
    x, lengths = _batch([48, 40])
    return model, x, lengths


def _speller_score(model, x, lengths, ids):
    """Exact log-probability of ``ids`` then the end marker, with the decoder's output masking."""
    enc, enc_len = model.listener(x, lengths)
    mask, prev, state, context, keys = model._init(enc, enc_len)
    token, total = torch.tensor([SOS]), 0.0
    for k in [*ids, EOS]:
        logits, state, context, prev = model._step(token, state, context, enc, keys, prev, mask)
        logits[:, [0, SOS]] = float("-inf")
        total += float(logits.detach().log_softmax(-1)[0, k])
        token = torch.tensor([k])
    return total


def test_las_beam_of_one_is_greedy():
    model, x, lengths = _las_and_input(10)
    greedy = model.decode(x, lengths, max_len=7)
    beams = model.beam_search(x, lengths, beam=1, max_len=7)
    assert [b[0][0] for b in beams] == greedy


@pytest.mark.parametrize("length_norm", [False, True])
def test_las_wide_beam_is_exact_against_brute_force(length_norm):
    import itertools

    model, x, lengths = _las_and_input(6, seed=3)  # outputs: <unk>=1, 4, 5 and the end marker
    x, lengths = x[:1], lengths[:1]
    limit = 3
    scored = []
    for n in range(limit):
        for ids in itertools.product([1, 4, 5], repeat=n):
            s = _speller_score(model, x, lengths, list(ids))
            scored.append((s / (n + 1) if length_norm else s, list(ids), s))
    scored.sort(key=lambda t: -t[0])
    hyps = model.beam_search(x, lengths, beam=40, max_len=limit, length_norm=length_norm)[0]
    assert hyps[0][0] == scored[0][1]
    exact = {tuple(ids): s for _, ids, s in scored}
    for ids, score in hyps:  # every hypothesis returned carries its exact score
        assert score == pytest.approx(exact[tuple(ids)], abs=1e-4)
    if length_norm:  # no early stop: the whole ranking is exact
        assert [h[0] for h in hyps[:5]] == [ids for _, ids, _ in scored[:5]]


def test_las_beam_search_fuses_a_character_lm():
    from haneul.speech.decode import CharNgramLM

    model, x, lengths = _las_and_input(10)
    plain = model.beam_search(x, lengths, beam=4, max_len=6)
    assert all(5 not in h[0][0] for h in plain)  # the model alone never says 5
    lm = CharNgramLM(3, 10).fit([[5, 5, 5, 5]] * 20)
    fused = model.beam_search(x, lengths, beam=4, max_len=6, lm=lm, alpha=5.0, beta=0.5)
    for hyps in fused:
        assert hyps[0][0] and set(hyps[0][0]) == {5}
    with pytest.raises(InvalidInput, match="beam width"):
        model.beam_search(x, lengths, beam=0)


def test_las_adds_a_ctc_loss_on_the_listener_when_asked():
    torch.manual_seed(0)
    x, lengths = _batch([120, 64])
    targets, target_lengths = torch.tensor([[4, 5, 6], [7, 0, 0]]), torch.tensor([3, 1])
    plain = LAS(LASConfig.from_name("tiny", vocab_size=10, ctc_weight=0.0, dropout=0.0)).eval()
    hybrid = LAS(LASConfig.from_name("tiny", vocab_size=10)).eval()
    assert plain.ctc is None and hybrid.cfg.ctc_weight == 0.3
    hybrid.load_state_dict({**plain.state_dict(), **{k: v for k, v in hybrid.state_dict().items() if k.startswith("ctc.")}})
    _, attention_only = plain(x, lengths, targets, target_lengths)
    _, mixed = hybrid(x, lengths, targets, target_lengths)
    enc, enc_len = hybrid.listener(x, lengths)
    ctc = hybrid.ctc_loss(enc, enc_len, targets, target_lengths)
    assert mixed.item() == pytest.approx(0.7 * attention_only.item() + 0.3 * ctc.item(), rel=1e-5)
    mixed.backward()
    assert hybrid.ctc.weight.grad is not None and hybrid.ctc.weight.grad.abs().sum() > 0
    # a checkpoint saved before the option (no ctc_weight in its config) is plain LAS and loads as it was
    config = {k: v for k, v in plain.cfg.to_dict().items() if k != "ctc_weight"}
    old = LAS(LASConfig(**config))
    old.load_state_dict(plain.state_dict())
    assert old.ctc is None
    with pytest.raises(InvalidInput, match="ctc_weight=1.0 must be in"):
        LAS(LASConfig.from_name("tiny", vocab_size=10, ctc_weight=1.0))
