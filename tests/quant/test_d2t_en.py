from __future__ import annotations

import re

import pytest

from haneul.errors import InvalidInput
from haneul.quant.d2t_data import generate, slot_error_rate, slot_errors

TRAIN = generate(400, seed=0, lang="en")
TEST = generate(300, seed=0, split="test", lang="en")


def test_english_generation_is_deterministic_and_differs_from_korean() -> None:
    assert generate(30, seed=3, lang="en") == generate(30, seed=3, lang="en")
    assert generate(30, seed=3, lang="en") != generate(30, seed=4, lang="en")
    assert generate(5, seed=3, lang="en")[0]["text"] != generate(5, seed=3)[0]["text"]
    assert len({e["text"] for e in TRAIN}) > 380
    assert not any("\uac00" <= ch <= "\ud7a3" for e in TRAIN for ch in e["text"])


def test_every_english_text_realises_its_mr_in_at_most_three_sentences() -> None:
    for example in TRAIN + TEST:
        text = example["text"]
        assert slot_errors(example["mr"], text) == 0, example
        assert re.fullmatch(r"[A-Z][^.]*\.( [A-Z][^.]*\.){0,2}", text), text
        # articles agree with the next word
        assert not re.search(r"\ba [aeiouAEIOU]", text) and not re.search(r"\ban [^aeiouAEIOU]", text), text


def test_english_test_split_names_and_landmarks_are_unseen() -> None:
    for slot in ("name", "near"):
        train = {e["mr"][slot] for e in TRAIN if slot in e["mr"]}
        test = {e["mr"][slot] for e in TEST if slot in e["mr"]}
        assert test and not test & train


@pytest.mark.parametrize(
    ("mr", "text", "errors"),
    [
        ({"name": "Aromi", "priceRange": "£20-25"}, "Aromi costs between £20 and £25 a head.", 0),
        ({"name": "Aromi", "priceRange": "£20-25"}, "Aromi costs more than £30 a head.", 1),
        ({"name": "Aromi", "customerRating": "high"}, "Aromi is HIGHLY RATED.", 0),
        ({"name": "Aromi", "customerRating": "high"}, "Aromi has a high price range.", 1),
        ({"name": "Aromi", "familyFriendly": "yes"}, "Aromi is kid friendly.", 0),
        ({"name": "Aromi", "familyFriendly": "yes"}, "Aromi is not kid friendly.", 1),
        ({"name": "Aromi", "familyFriendly": "no"}, "Aromi is not family-friendly.", 0),
        ({"name": "Aromi", "familyFriendly": "no"}, "Aromi is family-friendly.", 1),
        ({"name": "Aromi", "food": "Fast food", "area": "riverside"}, "Aromi sells fast food by the river.", 0),
        # a landmark's words do not realise a slot: "Riverside Hotel" is not area[riverside]
        ({"name": "Aromi", "area": "riverside", "near": "the Riverside Hotel"}, "Aromi is near the Riverside Hotel.", 1),
    ],
)  # fmt: skip
def test_english_values_match_their_phrases(mr: dict[str, str], text: str, errors: int) -> None:
    assert slot_errors(mr, text) == errors


def test_english_slot_error_rate_and_bad_language() -> None:
    mr = TRAIN[0]["mr"]
    assert slot_error_rate([mr], [TRAIN[0]["text"]]) == 0.0
    assert slot_error_rate([mr], [""]) == 1.0
    with pytest.raises(InvalidInput, match="'de'"):
        generate(3, lang="de")
