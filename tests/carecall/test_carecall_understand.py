from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from haneul.carecall.answers import Answer, generate, load_templates
from haneul.carecall.understand import (
    EXPECTS,
    INTENTS,
    SYMPTOMS,
    AnswerClassifier,
    Understanding,
    parse_lm_reply,
    read_count,
    read_temperature,
    understand,
)
from haneul.dialog.lm import LMUnavailable
from haneul.errors import InvalidInput

HELDOUT = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "carecall_answers_heldout.jsonl"

# --------------------------------------------------------------------------------------------------
# yes / no


@pytest.mark.parametrize(
    ("text", "slot", "intent", "symptoms"),
    [
        ("네", "cough", "yes", {"cough": True}),
        ("아니요", "cough", "no", {"cough": False}),
        ("아니요 괜찮아요", "fever", "no", {"fever": False}),
        ("조금 있어요", "cough", "yes", {"cough": True}),
        ("기침은 없는데 열이 좀 나요", "cough", "no", {"cough": False, "fever": True}),
        ("기침은 없는데 열이 좀 나요", "fever", "yes", {"cough": False, "fever": True}),
        ("별로요", "cough", "no", {"cough": False}),
        ("그닥", "sore_throat", "no", {"sore_throat": False}),
        ("안 해요", "cough", "no", {"cough": False}),
        ("없어요", "fever", "no", {"fever": False}),
        ("괜찮아요", "breathing", "no", {"breathing": False}),  # no problem: the symptom is absent
        ("그럼요", "cough", "yes", {"cough": True}),
        ("예", "fever", "yes", {"fever": True}),
        ("응", "cough", "yes", {"cough": True}),
        ("맞아요", "contact", "yes", {"contact": True}),
        ("네 없어요", "cough", "no", {"cough": False}),  # the content beats the agreeing 네
        ("없진 않아요", "cough", "yes", {"cough": True}),  # a double negative is a hedged yes
        ("맛을 못 느끼겠어요", "taste_smell", "yes", {"taste_smell": True}),  # losing taste is the symptom
        ("냄새는 잘 맡아요", "taste_smell", "no", {"taste_smell": False}),
        ("숨쉬기가 좀 힘들어요", "breathing", "yes", {"breathing": True}),
        ("확진자 만난 적 없어요", "contact", "no", {"contact": False}),
        ("어제는 났는데 오늘은 없어요", "fever", "no", {"fever": False}),
        ("기침이좀나요근데열은없어요", "cough", "yes", {"cough": True, "fever": False}),  # spaces lost
        ("숨 차는 건 전혀요", "breathing", "no", {"breathing": False}),
        ("기침 때문에 잠을 못 자요", "cough", "yes", {"cough": True}),
        ("기침은 다 나았어요", "cough", "no", {"cough": False}),
        ("기침이 멈추질 않아요", "cough", "yes", {"cough": True}),
    ],
)
def test_symptom_yes_no(text, slot, intent, symptoms):
    got = understand(text, "yesno", slot, method="rules")
    assert (got.intent, got.symptoms, got.method) == (intent, symptoms, "rules")


@pytest.mark.parametrize(
    ("text", "intent"),
    [("했어요", "yes"), ("먹었어요", "yes"), ("네 점심 먹었어요", "yes"), ("아직이요", "no"), ("아직 안 먹었어요", "no"),
     ("깜빡했어요", "no"), ("괜찮아요", "yes"), ("안 좋아요", "no"), ("아니요 집에만 있었어요", "no")],
)  # fmt: skip
def test_yes_no_without_a_symptom(text, intent):
    """Meals, medicine, outings: 괜찮아요 is a yes, 안 좋아요 a no, and nothing fills a slot."""
    got = understand(text, "yesno", None, method="rules")
    assert (got.intent, got.symptoms) == (intent, {})


def test_other_symptoms_fill_their_slots_in_an_open_question():
    got = understand("목이 아프고 기침도 나는데 열은 없어요", "symptoms", method="rules")
    assert got.intent == "yes"
    assert got.symptoms == {"sore_throat": True, "cough": True, "fever": False}
    assert understand("다 괜찮아요 아무 증상 없어요", "symptoms", method="rules").intent == "no"
    got = understand("기침이랑 콧물 말고는 없어요", "symptoms", method="rules")
    assert (got.intent, got.symptoms) == ("yes", {"cough": True})


# --------------------------------------------------------------------------------------------------
# the other intents


@pytest.mark.parametrize(
    ("text", "intent"),
    [("잘 모르겠어요", "unknown"), ("글쎄요", "unknown"), ("나중에 전화 주세요", "later"), ("지금 바빠요", "later"),
     ("지금 운전 중이에요", "later"), ("상담원 바꿔 주세요", "human"), ("사람이랑 얘기할래요", "human"),
     ("", "unclear"), ("   ", "unclear"), ("I'm fine", "unclear"), ("大丈夫", "unclear"), ("어... 음...", "unclear"),
     ("네? 뭐라고요?", "unclear"), ("여보세요?", "unclear")],
)  # fmt: skip
@pytest.mark.parametrize("expect", ["yesno", "temperature"])
def test_requests_and_noise(text, intent, expect):
    got = understand(text, expect, "fever" if expect == "yesno" else None, method="rules")
    assert got.intent == intent
    assert got.value is None


# --------------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize(
    ("text", "value"),
    [("삼십칠 점 팔 도", 37.8), ("36.5도", 36.5), ("37도 5부요", 37.5), ("서른여섯 도 반이요", 36.5),
     ("서른여덟 도 이 부", 38.2), ("삼십팔도", 38.0), ("체온이삼십칠점이도예요", 37.2), ("36,8이요", 36.8),
     ("378", 37.8), ("3.78", 37.8), ("아까는 38도였는데 지금은 37.1이요", 37.1)],
)  # fmt: skip
def test_temperatures(text, value):
    got = understand(text, "temperature", method="rules")
    assert got.intent == "yes"
    assert got.value == pytest.approx(value)


def test_an_approximate_temperature_has_less_confidence():
    exact = read_temperature("서른일곱 도요")
    approx = read_temperature("서른일곱 도 조금 넘어요")
    assert exact == (37.0, 1.0)
    assert approx[0] == 37.0 and approx[1] < exact[1]
    assert read_temperature("37도에서 38도 사이요") == (37.5, 0.5)


@pytest.mark.parametrize("text", ["4도요", "50도", "12.3도"])
def test_implausible_temperatures_are_unclear(text):
    got = understand(text, "temperature", method="rules")
    assert (got.intent, got.value) == ("unclear", None)


def test_temperature_without_a_number():
    assert understand("열 없어요 정상이에요", "temperature", method="rules").intent == "no"
    assert understand("열도 없어요", "temperature", method="rules").symptoms == {"fever": False}  # 열 is not ten here
    assert understand("안 재봤어요", "temperature", method="rules").intent == "unknown"


@pytest.mark.parametrize(
    ("text", "value"),
    [("세 번", 3.0), ("세 번이요", 3.0), ("3번 먹어요", 3.0), ("다섯이요", 5.0), ("칠이요", 7.0), ("하루에 사 회", 4.0),
     ("두세 번", 2.5), ("한 두어 번", 2.0), ("한 시간 반", 1.5), ("열 번은 넘게 했어요", 10.0), ("스무 번", 20.0), ("열한 번", 11.0)],
)  # fmt: skip
def test_counts(text, value):
    assert read_count(text)[0] == value
    got = understand(text, "number", method="rules")
    assert (got.intent, got.value) == ("yes", value)


def test_no_count_is_zero():
    got = understand("한 번도 안 했어요", "number", method="rules")
    assert (got.intent, got.value) == ("no", 0.0)
    assert read_count("모르겠어요") == (None, 0.0)


# --------------------------------------------------------------------------------------------------
# bad input


def test_unknown_expect_names_the_choices():
    with pytest.raises(InvalidInput) as err:
        understand("네", "yes-no")
    assert "'yes-no'" in err.value.message
    assert all(choice in err.value.message for choice in EXPECTS)


def test_unknown_slot_and_method():
    with pytest.raises(InvalidInput, match="symptom slot 'headache'.*fever"):
        understand("네", "yesno", "headache")
    with pytest.raises(InvalidInput, match="method 'magic'.*rules"):
        understand("네", method="magic")
    with pytest.raises(InvalidInput, match="text"):
        understand(None)  # type: ignore[arg-type]


def test_understanding_is_frozen():
    got = understand("네", "yesno", "cough")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.intent = "no"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# the LM method falls back to the rules


def test_lm_without_an_endpoint_answers_with_the_rules():
    got = understand("아니요 괜찮아요", "yesno", "fever", method="lm")
    assert got == Understanding("no", None, {"fever": False}, got.confidence, "rules")


def test_lm_with_a_dead_endpoint_answers_with_the_rules():
    # port 9 (discard) on loopback: refused at once
    got = understand("세 번이요", "number", method="lm", endpoint="http://127.0.0.1:9/v1", timeout=2)
    assert (got.intent, got.value, got.method) == ("yes", 3.0, "rules")


class _FakeClient:
    def __init__(self, reply: str | Exception):
        self.reply = reply
        self.messages: list = []

    def chat(self, messages):
        self.messages.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_lm_reply_is_read_and_checked():
    client = _FakeClient('네: {"intent": "yes", "value": null, "symptoms": {"cough": true, "headache": true}}')
    got = understand("콜록콜록 해요", "yesno", "cough", method="lm", client=client)
    assert got == Understanding("yes", None, {"cough": True}, 0.9, "lm")
    assert "콜록콜록 해요" in client.messages[0][1]["content"]
    assert understand("네", "yesno", "cough", method="lm", client=_FakeClient("sure!")).method == "rules"
    assert understand("네", "yesno", "cough", method="lm", client=_FakeClient(LMUnavailable("down"))).method == "rules"
    assert parse_lm_reply('{"intent": "yes", "value": 378}', "temperature", None).value == pytest.approx(37.8)
    with pytest.raises(InvalidInput, match="intent 'maybe'"):
        parse_lm_reply('{"intent": "maybe"}', "yesno", None)


# --------------------------------------------------------------------------------------------------
# the generator and the classifier


def test_generator_is_seeded_and_labels_are_valid():
    a, b = generate(400, seed=3), generate(400, seed=3)
    assert a == b
    assert a != generate(400, seed=4)
    for ans in a:
        assert isinstance(ans, Answer)
        assert ans.intent in INTENTS and ans.expect in EXPECTS
        assert ans.slot is None or ans.slot in SYMPTOMS
        assert set(ans.symptoms) <= set(SYMPTOMS)
        if ans.expect == "temperature" and ans.value is not None:
            assert 35.0 <= ans.value <= 40.0
    assert {ans.intent for ans in a} == set(INTENTS)
    assert {ans.expect for ans in a} == set(EXPECTS)
    with pytest.raises(InvalidInput):
        generate(-1)


def test_templates_are_checked():
    templates = load_templates()
    assert set(templates["symptom_present"]) == set(SYMPTOMS)


def _heldout() -> list[dict]:
    return [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text)


def test_heldout_set_is_big_enough_and_well_formed():
    rows = _heldout()
    assert len(rows) >= 300
    assert sum(r["expect"] == "yesno" for r in rows) >= 150
    assert sum(r["expect"] == "temperature" for r in rows) >= 60
    assert {r["intent"] for r in rows} == set(INTENTS)
    assert {r["expect"] for r in rows} == set(EXPECTS)
    for r in rows:
        assert set(r) == {"question", "expect", "slot", "text", "intent", "value", "symptoms"}
        assert r["slot"] is None or r["slot"] in SYMPTOMS
        assert set(r["symptoms"]) <= set(SYMPTOMS)
    assert len({r["text"] for r in rows}) == len(rows)


def test_generator_never_writes_a_heldout_answer():
    held = {_key(r["text"]) for r in _heldout()}
    for seed in range(3):
        generated = {_key(a.text) for a in generate(5000, seed=seed)}
        assert not held & generated


def test_classifier_training_is_deterministic():
    data = generate(1500, seed=0)
    cols = ([a.text for a in data], [a.expect for a in data], [a.slot for a in data], [a.intent for a in data])
    one = AnswerClassifier().fit(*cols, steps=40)
    two = AnswerClassifier().fit(*cols, steps=40)
    assert np.array_equal(one.weights, two.weights) and np.array_equal(one.bias, two.bias)
    probs = one.predict_proba("상담원 연결해 주세요", "yesno", "cough")
    assert max(probs, key=probs.__getitem__) == "human"
    assert sum(probs.values()) == pytest.approx(1.0)


def test_classifier_and_auto_methods():
    got = understand("네네 좀 있어요", "yesno", "cough", method="classifier")
    assert (got.intent, got.symptoms, got.method) == ("yes", {"cough": True}, "classifier")
    got = understand("36.5도요", "temperature", method="classifier")
    assert (got.intent, got.value) == ("yes", 36.5)
    # confident rules answer auto; the classifier only sees what the rules cannot read
    assert understand("아니요 없어요", "yesno", "fever", method="auto").method == "rules"
    assert understand("", "yesno", "fever", method="auto") == Understanding("unclear", method="rules")
