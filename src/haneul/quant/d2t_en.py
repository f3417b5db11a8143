"""The English side of the generated data-to-text task: E2E's own slot values, English sentences.

:mod:`haneul.quant.d2t_data` writes a Korean E2E-style set for haneul's Korean models; an English
pre-trained model such as the embedded SmolLM2-135M-Instruct is compared on this English one, which
uses the value vocabulary of the E2E NLG challenge (``priceRange[£20-25]``, ``customerRating[3 out of
5]``, ``familyFriendly[no]``) with restaurant names and landmarks written for haneul. The ``test`` split
keeps the last quarter of the names and landmarks unseen. :func:`forms` lists the phrases that realise
a value, which :func:`haneul.quant.d2t_data.slot_errors` matches ignoring case.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["FAMILY_NO", "VALUES", "draw_mr", "forms", "names", "realise"]

VALUES: dict[str, tuple[str, ...]] = {
    "eatType": ("restaurant", "coffee shop", "pub"),
    "food": ("English", "French", "Italian", "Japanese", "Chinese", "Indian", "Fast food"),
    "priceRange": ("cheap", "moderate", "high", "less than £20", "£20-25", "more than £30"),
    "customerRating": ("low", "average", "high", "1 out of 5", "3 out of 5", "5 out of 5"),
    "area": ("city centre", "riverside"),
    "familyFriendly": ("yes", "no"),
}

_NAMES = (
    "The Copper Kettle", "Juniper", "The Red Lion", "Saffron House", "Blue Heron", "The Old Mill",
    "Lantern", "Marigold", "The Fox and Hound", "Olive Tree", "Harbour Light", "The Wheatsheaf",
    "Silver Birch", "Pepper Pot", "The Anchor", "Willow Bank", "Magnolia", "The Crown", "Bramble",
    "Rosemary Lane", "Golden Dragon", "Little Tokyo", "Nonna's Kitchen", "Bombay Nights",
    # test split
    "The Kingfisher", "Cobblestone", "Hazel Grove", "The Lamplighter", "Tangerine", "The Swan",
    "Ivy Court", "Quayside",
)  # fmt: skip
_LANDMARKS = (
    "Café Roma", "Pizza Corner", "the Grand Hotel", "Burger Barn", "the Noodle Bar", "the Corner Bakery",
    "the Riverside Hotel", "Clare Hall", "the Market Hall", "the Royal Oak", "Station Square",
    "the Playhouse",
    # test split
    "the Cathedral", "the Corn Exchange", "Castle Hill", "the University Arms",
)  # fmt: skip

# names that say what the place is fix that slot when the MR has it (no noodle house serving pizza)
_NAME_FIXES: dict[str, dict[str, str]] = {
    "Golden Dragon": {"food": "Chinese"},
    "Little Tokyo": {"food": "Japanese"},
    "Nonna's Kitchen": {"food": "Italian"},
    "Bombay Nights": {"food": "Indian"},
    "The Red Lion": {"eatType": "pub"},
    "The Crown": {"eatType": "pub"},
    "The Copper Kettle": {"eatType": "coffee shop"},
}

# ------------------------------------------------------------------------------------------------
# how each value may be said: (adjective before the noun, or None; predicate after "it"/the name)

_PRICE: dict[str, tuple[tuple[str | None, str], ...]] = {
    "cheap": (("cheap", "is cheap"), ("low-priced", "has low prices"), ("inexpensive", "is inexpensive")),
    "moderate": (("moderately priced", "is moderately priced"), (None, "has a moderate price range")),
    "high": (("expensive", "is expensive"), ("high-priced", "has a high price range")),
    "less than £20": ((None, "has meals for less than £20"), (None, "charges under £20 a head")),
    "£20-25": ((None, "has a price range of £20-25"), (None, "costs between £20 and £25 a head")),
    "more than £30": ((None, "charges more than £30 a head"), (None, "has meals costing over £30")),
}
_RATING: dict[str, tuple[tuple[str | None, str], ...]] = {
    "low": (("low-rated", "has a low customer rating"), (None, "is rated low by customers")),
    "average": ((None, "has an average customer rating"), (None, "is rated average by its customers")),
    "high": (("highly rated", "has a high customer rating"), (None, "is rated highly by customers")),
    "1 out of 5": ((None, "has a customer rating of 1 out of 5"), (None, "is rated 1 out of 5")),
    "3 out of 5": ((None, "has a customer rating of 3 out of 5"), (None, "is rated 3 out of 5")),
    "5 out of 5": ((None, "has a customer rating of 5 out of 5"), (None, "is rated 5 out of 5")),
}
_FAMILY: dict[str, tuple[tuple[str | None, str], ...]] = {
    "yes": (("family-friendly", "is family-friendly"), ("kid-friendly", "welcomes children"),
            (None, "is a good place for families")),
    "no": ((None, "is not family-friendly"), (None, "does not welcome children"),
           (None, "is not kid-friendly")),
}  # fmt: skip
_AREA = {"city centre": ("in the city centre", "in the centre of the city"), "riverside": ("by the riverside", "on the riverside")}
_NEAR = ("near {N}", "close to {N}", "not far from {N}")

_FORMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("eatType", "restaurant"): ("restaurant",),
    ("eatType", "coffee shop"): ("coffee shop",),
    ("eatType", "pub"): ("pub",),
    ("priceRange", "cheap"): ("cheap", "low-priced", "low price", "low prices", "inexpensive"),
    ("priceRange", "moderate"): ("moderate", "moderately priced", "mid-priced"),
    ("priceRange", "high"): ("expensive", "high-priced", "high price", "high prices", "pricey"),
    ("priceRange", "less than £20"): ("less than £20", "under £20", "below £20"),
    ("priceRange", "£20-25"): ("£20-25", "£20 and £25", "£20 to £25", "£20-£25"),
    ("priceRange", "more than £30"): ("more than £30", "over £30", "above £30"),
    ("customerRating", "low"): ("low-rated", "low customer rating", "low rating", "rated low", "poorly rated"),
    ("customerRating", "average"): ("average customer rating", "average rating", "rated average"),
    ("customerRating", "high"): ("highly rated", "high customer rating", "high rating", "rated highly"),
    ("customerRating", "1 out of 5"): ("1 out of 5", "one out of five", "1 star"),
    ("customerRating", "3 out of 5"): ("3 out of 5", "three out of five", "3 stars"),
    ("customerRating", "5 out of 5"): ("5 out of 5", "five out of five", "5 stars"),
    ("area", "city centre"): ("city centre", "centre of the city", "city center", "center of the city"),
    ("area", "riverside"): ("riverside", "by the river", "on the river"),
    ("familyFriendly", "yes"): ("family-friendly", "family friendly", "kid-friendly", "kid friendly",
                                "welcomes children", "children are welcome", "good place for families"),
}  # fmt: skip
# a negative form wins over a positive one it contains ("not family-friendly" says "no")
FAMILY_NO = (
    "not family-friendly", "not family friendly", "not kid-friendly", "not kid friendly",
    "not welcome children", "n't welcome children", "no children", "adults only", "not child-friendly",
    "isn't family-friendly", "not a good place for families", "not suitable for children",
)  # fmt: skip


def names(split: str) -> tuple[Sequence[str], Sequence[str]]:
    """(restaurant names, landmarks) of ``split``: the test split's lie outside the train split's."""
    n, m = len(_NAMES) * 3 // 4, len(_LANDMARKS) * 3 // 4
    return (_NAMES[:n], _LANDMARKS[:m]) if split == "train" else (_NAMES[n:], _LANDMARKS[m:])


def forms(slot: str, value: str) -> tuple[str, ...] | None:
    """The phrases that realise ``slot[value]`` (lower-case matching), or None outside the lexicon."""
    if (slot, value) in _FORMS:
        return _FORMS[slot, value]
    if slot == "food" and value in VALUES["food"]:
        return (value.lower(),)
    return None


def draw_mr(rng: random.Random, slots: Sequence[str], split: str) -> dict[str, str]:
    """A name and 2-7 of the other seven slots, values drawn from E2E's vocabulary."""
    pool_names, landmarks = names(split)
    name = rng.choice(pool_names)
    chosen = set(rng.sample(slots[1:], rng.randint(2, 7)))
    mr = {"name": name}
    for slot in slots[1:]:
        if slot in chosen:
            pool = landmarks if slot == "near" else VALUES[slot]
            mr[slot] = _NAME_FIXES.get(name, {}).get(slot) or rng.choice(pool)
    return mr


def _an(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _join(clauses: Sequence[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def realise(mr: dict[str, str], rng: random.Random) -> str:
    """One to three sentences that state every value of ``mr`` and nothing more."""
    name, eat, food = mr["name"], mr.get("eatType"), mr.get("food")
    area, near = mr.get("area"), mr.get("near")
    adjectives: list[str] = []
    predicates: list[str] = []
    for slot, table in (("customerRating", _RATING), ("priceRange", _PRICE), ("familyFriendly", _FAMILY)):
        value = mr.get(slot)
        if value is None:
            continue
        adjective, predicate = rng.choice(table[value])
        if adjective is not None and len(adjectives) < 2 and rng.random() < 0.35:
            adjectives.append(adjective)
        else:
            predicates.append(predicate)

    food_word = food if food is None or food != "Fast food" else "fast food"
    place = ""
    if area or near:
        parts = [rng.choice(_AREA[area])] if area else []
        if near:
            parts.append(rng.choice(_NEAR).format(N=near))
        place = " ".join(parts)

    noun = eat or rng.choice(("place", "venue"))
    if food and rng.random() < 0.6:
        head, serves = f"{food_word} {noun}", None
    else:
        head, serves = noun, (rng.choice(("serves {F} food", "offers {F} food")).format(F=food_word) if food else None)
    head = _an(" ".join([*adjectives, head]))
    if serves:
        predicates.insert(rng.randint(0, len(predicates)), serves)

    style = rng.random()
    there_is = False  # "There is … called X" takes no further predicate in its sentence
    if place and style < 0.25:
        lead = f"{place[0].upper()}{place[1:]}, {name} is {head}"
    elif place and style < 0.4:
        lead, there_is = f"There is {head} {place} called {name}", True
    elif place:
        lead = f"{name} is {head} {place}"
    else:
        lead = f"{name} is {head}"
    if not predicates:
        return lead + "."
    if not there_is and len(predicates) <= 2 and rng.random() < 0.4:
        return f"{lead} that {_join(predicates)}."
    cut = 0 if there_is else rng.randint(0, min(2, len(predicates)))
    sentences = [_join([lead, *predicates[:cut]]) + "."]
    rest = predicates[cut:]
    # at most two more sentences of one to three predicates each
    split = len(rest) if len(rest) <= 2 else rng.randint(max(1, len(rest) - 3), min(3, len(rest) - 1))
    for part in (rest[:split], rest[split:]):
        if part:
            subject = rng.choice(("It", "It", f"The {noun}", name))
            sentences.append(f"{subject} {_join(part)}.")
    return " ".join(sentences)
