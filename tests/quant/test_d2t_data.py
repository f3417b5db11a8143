from __future__ import annotations

import random
import re

import pytest

from haneul.errors import InvalidInput
from haneul.quant.d2t_data import SLOTS, generate, mr_string, parse_mr, slot_error_rate, slot_errors
from haneul.text.korean import has_final_consonant

# the canonical values of the slots with a closed vocabulary
VALUES = {
    "eatType": ("식당", "카페", "주점"),
    "food": ("한식", "중식", "일식", "양식", "분식", "해산물 요리", "고기 요리", "디저트"),
    "priceRange": ("만 원 미만", "1만~2만 원", "2만~3만 원", "3만 원 이상"),
    "customerRating": ("낮음", "보통", "높음"),
    "area": ("도심", "강변"),
    "familyFriendly": ("예", "아니오"),
}

TRAIN = generate(300, seed=0)
TEST = generate(300, seed=0, split="test")


def test_generate_is_deterministic_per_seed_and_split() -> None:
    assert generate(40, seed=7) == generate(40, seed=7)
    assert generate(40, seed=7) != generate(40, seed=8)
    assert generate(40, seed=7) != generate(40, seed=7, split="test")
    assert len({e["text"] for e in TRAIN}) > 250  # varied, not a handful of sentences


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_mrs_have_a_name_and_two_to_seven_canonical_slots(lang: str) -> None:
    from haneul.quant import d2t_en

    examples = TRAIN + TEST if lang == "ko" else generate(300, lang="en") + generate(300, split="test", lang="en")
    vocabulary = VALUES if lang == "ko" else d2t_en.VALUES  # English: E2E's own values
    counts = set()
    for example in examples:
        mr = example["mr"]
        assert list(mr) == [s for s in SLOTS if s in mr] and "name" in mr
        counts.add(len(mr) - 1)
        for slot, value in mr.items():
            assert slot in ("name", "near") or value in vocabulary[slot]
        assert parse_mr(mr_string(mr)) == mr
    assert counts == set(range(2, 8))


def test_every_generated_text_realises_its_mr_in_one_or_two_sentences() -> None:
    for example in TRAIN + TEST:
        assert slot_errors(example["mr"], example["text"]) == 0, example
        assert re.fullmatch(r"[^.]+\.( [^.]+\.)?", example["text"]), example["text"]


def test_every_template_form_is_an_accepted_form() -> None:
    from haneul.quant import d2t_data as d

    rng = random.Random(0)
    tables = {
        "priceRange": (d._PRICE_CLAUSES, d._PRICE_ADNOMINAL),
        "customerRating": (d._RATING_CLAUSES, d._RATING_ADNOMINAL),
        "familyFriendly": (d._FAMILY_CLAUSES, {}),
    }
    for slot, (clauses, adnominals) in tables.items():
        for value in VALUES[slot]:
            texts = [*adnominals.get(value, ())]
            for spec in clauses[value]:
                texts += [d._clause(spec, kind, subject, {}, rng) for kind in (0, 1, 2) for subject in (0, 1)]
            for text in texts:
                assert slot_errors({slot: value}, text) == 0, (slot, value, text)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_texts_state_no_value_outside_their_mr(lang: str) -> None:
    from haneul.quant import d2t_en

    examples, vocabulary = (TRAIN[:150], VALUES) if lang == "ko" else (generate(200, lang="en"), d2t_en.VALUES)
    for example in examples:
        mr, text = example["mr"], example["text"]
        for slot, values in vocabulary.items():
            # a value the MR has not, or another value of a slot it has, is not realised
            for value in values:
                if mr.get(slot) != value:
                    assert slot_errors({**mr, slot: value}, text) == 1, (slot, value, text)


def test_slot_errors_counts_a_removed_name_or_landmark() -> None:
    with_near = [e for e in TRAIN if "near" in e["mr"]][:20]
    assert with_near
    for example in with_near:
        mr, text = example["mr"], example["text"]
        assert slot_errors(mr, text.replace(mr["name"], "")) == 1
        assert slot_errors(mr, text.replace(mr["near"], "")) == 1
        assert slot_error_rate([mr], [text.replace(mr["near"], "")]) == pytest.approx(1 / len(mr))


def test_family_friendly_tells_no_from_yes() -> None:
    positive, negative = "해오름은 아이와 함께 가기 좋아요.", "해오름은 아이와 함께 가기 좋지 않아요."
    assert slot_errors({"name": "해오름", "familyFriendly": "예"}, positive) == 0
    assert slot_errors({"name": "해오름", "familyFriendly": "아니오"}, positive) == 1
    assert slot_errors({"name": "해오름", "familyFriendly": "예"}, negative) == 1
    assert slot_errors({"name": "해오름", "familyFriendly": "아니오"}, negative) == 0


def test_other_values_match_verbatim_and_names_do_not_realise_other_slots() -> None:
    mr = {"name": "The Eagle", "food": "Japanese", "near": "Burger King"}
    assert slot_errors(mr, "The Eagle serves Japanese food near Burger King.") == 0
    assert slot_errors(mr, "The Eagle serves French food near Burger King.") == 1
    # the 식당 in the name 달빛식당 does not say that the place is a 식당
    assert slot_errors({"name": "달빛식당", "eatType": "식당"}, "달빛식당은 시청 근처에 있어요.") == 1
    assert slot_error_rate([mr, {"name": "마루"}], ["The Eagle", "마루"]) == pytest.approx(2 / 4)
    with pytest.raises(InvalidInput):
        slot_error_rate([mr], [])


def test_test_split_names_and_landmarks_are_unseen_in_train() -> None:
    def used(examples: list[dict], slot: str) -> set[str]:
        return {e["mr"][slot] for e in examples if slot in e["mr"]}

    big_train, big_test = generate(600, seed=1), generate(600, seed=1, split="test")
    for slot in ("name", "near"):
        assert used(big_test, slot) and not used(big_test, slot) & used(big_train, slot)
        assert not used(TEST, slot) & used(TRAIN, slot)


def test_particles_agree_with_the_final_consonant() -> None:
    names = {e["mr"]["name"] for e in TRAIN}
    assert {"해오름", "달빛식당", "마루"} <= names
    for example in TRAIN + TEST:
        name, text = example["mr"]["name"], example["text"]
        right, wrong = (name + "은", name + "는") if has_final_consonant(name) else (name + "는", name + "은")
        assert right in text and wrong not in text, text
    text = next(e["text"] for e in TRAIN if e["mr"]["name"] == "해오름")
    assert "해오름은" in text
    # particles after the food words and head nouns the templates write
    for wrong in ("한식를", "디저트을", "요리을", "음식를", "카페으로", "술집로", "식당로", "주점로", "곳로"):
        assert not any(wrong in e["text"] for e in TRAIN + TEST), wrong


def test_mr_string_round_trip_and_e2e_lines() -> None:
    for example in TRAIN[:50]:
        line = mr_string(example["mr"])
        assert parse_mr(line) == example["mr"]
    assert (
        mr_string({"food": "한식", "name": "해오름", "eatType": "식당"})
        == "name[해오름], eatType[식당], food[한식]"
    )
    line = "name[The Vaults], eatType[pub], priceRange[more than £30], near[Café Adriatic]"
    mr = parse_mr(line)
    assert mr == {
        "name": "The Vaults",
        "eatType": "pub",
        "priceRange": "more than £30",
        "near": "Café Adriatic",
    }
    assert mr_string(mr) == line
    rated = parse_mr("name[The Eagle], customer rating[5 out of 5], area[city centre]")
    assert rated == {"name": "The Eagle", "customerRating": "5 out of 5", "area": "city centre"}


@pytest.mark.parametrize(
    ("line", "piece"),
    [
        ("", "empty"),
        ("해오름 한식", "해오름 한식"),
        ("name[해오름", "name\\[해오름"),
        ("name[해오름], food[한식", "food\\[한식"),
        ("name[해오름]], food[한식]", "\\]"),
        ("name[], food[한식]", "name\\[\\]"),
        ("name[해오름] food[한식]", "food\\[한식\\]"),
        ("name[해오름], 한식, food[한식]", "한식"),
        ("name[해[오]름]", "name"),
        ("name[해오름], name[달빛식당]", "name"),
    ],
)
def test_parse_mr_rejects_malformed_lines(line: str, piece: str) -> None:
    with pytest.raises(InvalidInput, match=piece):
        parse_mr(line)


def test_bad_arguments_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="0"):
        generate(0)
    with pytest.raises(InvalidInput, match="dev"):
        generate(5, split="dev")
    with pytest.raises(InvalidInput, match="bracket"):
        mr_string({"name": "해[오]름"})
