from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from haneul.evals import EvalConfig, TaskRun, get_task, run_eval  # noqa: E402
from haneul.evals.backends.hf import HFBackend  # noqa: E402
from haneul.evals.testing import tiny_llama, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    return tiny_llama(tok, seed=0), tok


def naive_loglikelihood(model, tok, context: str, cont: str) -> float:
    """Score by hand: one forward pass over the whole text, sum the option tokens' log-probs."""
    ctx = tok.encode(context.rstrip())
    whole = tok.encode(context.rstrip() + context[len(context.rstrip()):] + cont)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits[0], dim=-1)
    return sum(float(logp[i - 1, whole[i]]) for i in range(len(ctx), len(whole)))


def test_shared_prefix_scores_equal_full_passes(tiny):
    model, tok = tiny
    cached, full = HFBackend(model, tok), HFBackend(model, tok, reuse_prefix=False)
    context = "리뷰: 정말 재미있는 영화였다\n감정:"
    options = [" 긍정", " 부정", " 아주 지루하고 별로였다", " 예"]
    a = cached.loglikelihood(context, options)
    b = full.loglikelihood(context, options)
    for (la, na), (lb, nb), opt in zip(a, b, options, strict=True):
        assert na == nb
        assert la == pytest.approx(lb, abs=1e-4)
        assert la == pytest.approx(naive_loglikelihood(model, tok, context, opt), abs=1e-4)


def test_trailing_context_spaces_move_into_the_option(tiny):
    model, tok = tiny
    backend = HFBackend(model, tok)
    ctx, cont = backend.encode_pair("감정: ", "긍정")
    assert tok.decode(ctx) == "감정:" and tok.decode(cont) == " 긍정"


def test_hf_backend_runs_a_task_and_generates(tiny, tmp_path):
    model, tok = tiny
    f = tmp_path / "nsmc.txt"
    f.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로\t0\n3\t재미있다\t1\n", encoding="utf-8")
    backend = HFBackend(model, tok)
    res = run_eval(backend, [TaskRun(get_task("nsmc"), f)], EvalConfig(shots=[0, 1], seeds=2))
    for k in ("0", "1"):
        assert 0 <= res["tasks"]["nsmc"]["shots"][k]["mean"]["acc"] <= 100
    # the greedy continuation equals a hand-rolled argmax loop
    prompt = "리뷰: 좋다"
    ids = tok.encode(prompt)
    with torch.no_grad():
        for _ in range(4):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    expected = tok.decode(ids[len(tok.encode(prompt)):], skip_special_tokens=True)
    assert backend.generate(prompt, 4, stop=()) == expected


def test_agreement_with_lm_evaluation_harness(tiny, tmp_path):
    """Same model, same requests: lm-evaluation-harness's HFLM gives the same log-likelihoods."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, tok = tiny
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    reference = HFLM(pretrained=str(folder), device="cpu", batch_size=4, dtype="float32")
    ours = HFBackend.from_pretrained(folder, device="cpu")
    reqs = [("리뷰: 좋다\n감정:", [" 긍정", " 부정"]), ("전제: 비가 온다 가설: 맑다 관계:", [" 예", " 아마도", " 아니오"])]
    flat = [(c, o) for c, opts in reqs for o in opts]
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i) for i, pair in enumerate(flat)]
    theirs = [lp for lp, _ in reference.loglikelihood(instances, disable_tqdm=True)]
    mine = [lp for c, opts in reqs for lp, _ in ours.loglikelihood(c, opts)]
    assert mine == pytest.approx(theirs, abs=1e-4)


def test_batched_left_padded_prompts_score_like_one_at_a_time(tiny):
    model, tok = tiny
    requests = [
        ("리뷰: 정말 재미있는 영화였다 배우들 연기가 최고\n감정:", [" 긍정", " 부정"]),
        ("x", [" 예", " 아니오 아마도", " 별로"]),
        ("전제: 비가 온다\n가설: 맑다\n관계:", [" 예"]),
        ("질문: 한글을 만든 사람은?\n답변:", [" 세종대왕", " 이순신 장군", " 아마도", " 모름"]),
    ]
    batched = HFBackend(model, tok, batch_size=3).loglikelihood_many(requests)
    single = HFBackend(model, tok, reuse_prefix=False).loglikelihood_many(requests)
    for got, want in zip(batched, single, strict=True):
        assert [n for _, n in got] == [n for _, n in want]
        assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in want], abs=1e-4)


def test_prompts_sharing_a_few_shot_block_encode_it_once_and_score_the_same(tiny):
    model, tok = tiny
    block = "리뷰: 정말 재미있는 영화였다\n감정: 긍정\n\n리뷰: 지루하고 별로였다\n감정: 부정\n\n"
    requests = [(block + f"리뷰: {q}\n감정:", [" 긍정", " 부정 아주"]) for q in ("좋다", "별로였다 정말", "음")]
    backend = HFBackend(model, tok)
    calls = []
    handle = model.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(kwargs["input_ids"].shape),
                                             with_kwargs=True)
    try:
        shared = backend.loglikelihood_many(requests)
    finally:
        handle.remove()
    assert calls[0][0] == 1 and calls[0][1] > 16  # the common block, once
    assert calls[1][0] == 3 and calls[1][1] < calls[0][1]  # then only the three remainders
    single = HFBackend(model, tok, reuse_prefix=False).loglikelihood_many(requests)
    for got, want in zip(shared, single, strict=True):
        assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in want], abs=1e-4)
