"""Template-made (memory, summary, operation) pairs for training the memory operator (§3.2, training only).

Hand-labelled pairs are few, so this module writes more from topic templates in the note style of
care-call memory ("허리가 쑤신다고 하심", "모레 치과 예약이 있음"). A :class:`Topic` (pain in a body part,
a regular medicine, a grandchild's visit, a class at the welfare centre ...) holds memory sentences,
paraphrases, updates and — when it is time-bound — endings, all with slots filled from small word
lists (particles chosen by :func:`haneul.text.korean.josa`). The topics and word lists are data:
``synth_templates/topics.yaml`` and ``synth_templates/words.yaml`` next to this module, read and
checked once on first use (:func:`load_topics`). The four operations come from the topic as follows:
``PASS`` pairs a memory sentence with a paraphrase of the same fact ("요즘도", "여전히", synonyms);
``REPLACE`` with an update that supersedes it (recovery, stopping, a changed value or place, the
opposite state, "…았으나 …"); ``DELETE`` with an ending of a time-bound memory (a cancelled or
postponed plan, a temporary state that is over); ``APPEND`` mostly pairs it with any sentence of an
unrelated topic (different group, often of the same domain; no shared person, body part, clinic or
medicine) and sometimes with a compatible addition on the same topic (a second medicine, another
hobby, another relative).
:func:`generate_pairs` draws a seeded, duplicate-free, topic-balanced mix of them.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from haneul.dialog.operators import Op
from haneul.errors import InvalidInput
from haneul.text.korean import PARTICLES, josa, normalize

__all__ = [
    "DEFAULT_MIX",
    "TOPICS",
    "Topic",
    "generate_pairs",
    "josa",
    "load_topics",
    "max_pairs",
    "topic_sentences",
]

DEFAULT_MIX: dict[Op, float] = {Op.PASS: 0.2, Op.APPEND: 0.4, Op.REPLACE: 0.25, Op.DELETE: 0.15}

# ------------------------------------------------------------------------------------------------
# topics

# Slot values are a word, or a dict whose "w" is the word and whose other keys are forms used as
# {slot.key} (verb forms that go with the word). A slot named X2 takes a value of X other than X's.
_SLOT = re.compile(r"\{(\w+?)(?:\.(\w+))?(?::([^}]+))?\}")
# Slots naming a person, a body part, a clinic or a medicine: two sentences sharing one are related.
ENTITY_SLOTS = ("junior", "elder", "part", "clinic", "med")
_KINDS = ("memory", "paraphrase", "update", "ending", "extra")


def _word(value: Any) -> str:
    return value["w"] if isinstance(value, dict) else value


def _base(slot: str) -> str:
    return slot[:-1] if slot.endswith("2") else slot


def _slots(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1) for m in _SLOT.finditer(template)))


def _render(template: str, binding: Mapping[str, Any]) -> str:
    def fill(m: re.Match[str]) -> str:
        name, form, particle = m.groups()
        value = binding[name]
        word = value[form] if form else _word(value)
        if particle:
            word = josa(word, particle) if "/" in particle else word + particle
        return word

    return normalize(_SLOT.sub(fill, template))


@dataclass(frozen=True)
class Topic:
    """One kind of remembered fact and the sentences that restate, supersede or end it."""

    name: str
    domain: str
    memory: tuple[str, ...]
    paraphrase: tuple[str, ...]
    update: tuple[str, ...]
    ending: tuple[str, ...] = ()  # non-empty only for time-bound facts (plans, temporary states)
    extra: tuple[str, ...] = ()  # compatible additions on the same topic (APPEND)
    slots: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()  # words every sentence of the topic uses one of
    key_slots: tuple[str, ...] = ()  # slots whose words count as keywords too
    group: str = ""  # topics of one group are related: never paired as unrelated

    @property
    def time_bound(self) -> bool:
        return bool(self.ending)

    @property
    def all_keywords(self) -> tuple[str, ...]:
        words = [_word(v) for s in self.key_slots for v in self.slots[s]]
        return tuple(dict.fromkeys([*self.keywords, *words]))

    def _paired(self, name: str, names: tuple[str, ...]) -> bool:
        return name.endswith("2") and _base(name) in names

    def binding_count(self, names: tuple[str, ...]) -> int:
        """How many assignments the slots ``names`` have (X2 never equal to X when both are named)."""
        return math.prod(len(self.slots[_base(n)]) - self._paired(n, names) for n in names)

    def binding_at(self, names: tuple[str, ...], index: int) -> dict[str, Any]:
        """Assignment number ``index`` of the slots ``names`` (mixed radix, X decided before X2)."""
        picks: dict[str, int] = {}
        for n in sorted(names, key=lambda n: n.endswith("2")):
            paired = self._paired(n, names)
            index, pick = divmod(index, len(self.slots[_base(n)]) - paired)
            if paired and pick >= picks[_base(n)]:
                pick += 1  # skip X's value
            picks[n] = pick
        return {n: self.slots[_base(n)][i] for n, i in picks.items()}

    def bindings(self, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        for i in range(self.binding_count(names)):
            yield self.binding_at(names, i)


# ------------------------------------------------------------------------------------------------
# reading the templates

_DATA = resources.files("haneul.dialog") / "synth_templates"
_TOPIC_FIELDS = ("name", "domain", "group", "slots", "key_slots", "keywords", *_KINDS)
_PAIR_PARTICLES = frozenset(f"{c}/{v}" for c, v in PARTICLES) | frozenset(f"{v}/{c}" for c, v in PARTICLES)
_PAIR_NAMES = ", ".join(f"{c}/{v}" for c, v in PARTICLES)
_SLOT_NAME = re.compile(r"\w+")

_Source = str | Path | Traversable


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping, where the later one would silently win."""


def _unique_keys(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


class _Problem(Exception):
    """A defect found while reading one topic; :func:`_read_topics` adds the file and topic."""


def _read_yaml(path: _Source, top: str) -> Any:
    try:
        text = (Path(path) if isinstance(path, str) else path).read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read the file ({e.strerror}); check the path") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "bad syntax"
        raise InvalidInput(f"{path}: not valid YAML ({problem}{where}); fix the syntax there") from None
    if not isinstance(data, dict) or (top and not isinstance(data.get(top), list)):
        what = f"a mapping with a '{top}:' list" if top else "a mapping of word lists"
        raise InvalidInput(f"{path}: expected {what}, got {type(data).__name__}; see the file's header")
    return data


def _read_words(path: _Source) -> dict[str, tuple[Any, ...]]:
    """The word lists of ``words.yaml``: name -> words (str) or word dicts ({"w": word, form: text})."""
    lists: dict[str, tuple[Any, ...]] = {}
    for name, items in _read_yaml(path, "").items():
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                f"{path}: word list {name!r} must be a non-empty list of words; write [word, ...]"
            )
        for item in items:
            ok = isinstance(item, str) and item.strip() == item != ""
            if isinstance(item, dict):
                ok = isinstance(item.get("w"), str) and all(
                    isinstance(k, str) and isinstance(v, str) and v for k, v in item.items()
                )
            if not ok:
                raise InvalidInput(
                    f"{path}: word list {name!r} has the item {item!r}; write a word, or "
                    "{w: word, form: text} with text for every form"
                )
        words = [_word(item) for item in items]
        if len(set(words)) < len(words):
            twice = next(w for w in words if words.count(w) > 1)
            raise InvalidInput(f"{path}: word list {name!r} has {twice!r} twice; keep one")
        lists[str(name)] = tuple(items)
    return lists


def _strings(raw: dict[str, Any], key: str, *, required: bool = False) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise _Problem(f"field {key!r} must be a list of non-empty strings; write one per '- ' line")
    if required and not value:
        raise _Problem(f"field {key!r} is empty; give it at least one sentence")
    return tuple(value)


def _slot_values(
    slot: str, spec: Any, lists: Mapping[str, tuple[Any, ...]], words_path: _Source
) -> tuple[Any, ...]:
    """The words of one slot: a word list's name, or {list: NAME, except: [words left out]}."""
    name: Any = spec if isinstance(spec, str) else None
    leave_out: Any = [] if isinstance(spec, str) else None
    if isinstance(spec, dict) and set(spec) <= {"list", "except"}:
        name, leave_out = spec.get("list"), spec.get("except", [])
    if not isinstance(name, str) or not isinstance(leave_out, list):
        raise _Problem(f"slot {slot!r} is {spec!r}; give a word list name or {{list: NAME, except: [words]}}")
    if name not in lists:
        raise _Problem(f"slot {slot!r} names the word list {name!r}, which {words_path} lacks; use one of "
                       f"{', '.join(lists)}")  # fmt: skip
    words = lists[name]
    unknown = [w for w in leave_out if w not in {_word(v) for v in words}]
    if unknown:
        raise _Problem(
            f"slot {slot!r} leaves out {unknown[0]!r}, which is not in {name!r}; fix the except list"
        )
    kept = tuple(v for v in words if _word(v) not in leave_out)
    if not kept:
        raise _Problem(f"slot {slot!r} leaves out every word of {name!r}; keep at least one")
    return kept


def _check_template(kind: str, i: int, template: str, slots: Mapping[str, tuple[Any, ...]]) -> None:
    where = f"{kind}[{i}] {template!r}"
    if "{" in _SLOT.sub("", template) or "}" in _SLOT.sub("", template):
        raise _Problem(
            f"{where} has an unmatched brace; write slots as {{slot}}, {{slot.form}} or {{slot:이/가}}"
        )
    for m in _SLOT.finditer(template):
        name, form, particle = m.groups()
        base = _base(name)
        if base not in slots:
            raise _Problem(
                f"{where} uses slot {name!r}, which is not under slots; declare {base!r} or fix the name"
            )
        if name != base and len(slots[base]) < 2:
            raise _Problem(f"{where} uses {name!r} but {base!r} has one word; give {base!r} a second word")
        if form and any(not isinstance(v, dict) or form not in v for v in slots[base]):
            raise _Problem(f"{where} uses form {form!r} of slot {base!r}, which not every word has; "
                           f"add {form}: to each of its words or fix the template")  # fmt: skip
        if particle and "/" in particle and particle not in _PAIR_PARTICLES:
            raise _Problem(f"{where} gives slot {name!r} the unknown particle {particle!r}; use one of "
                           f"{_PAIR_NAMES} or a one-form particle without '/'")  # fmt: skip


def _topic(raw: dict[str, Any], lists: Mapping[str, tuple[Any, ...]], words_path: _Source) -> Topic:
    unknown = [k for k in raw if k not in _TOPIC_FIELDS]
    if unknown:
        raise _Problem(f"unknown field {unknown[0]!r}; use {', '.join(_TOPIC_FIELDS)}")
    for key in ("domain", "group"):
        if not isinstance(raw.get(key, ""), str) or (key == "domain" and not raw.get(key)):
            raise _Problem(f"field {key!r} must be a word; write {key}: NAME")
    spec = raw.get("slots") or {}
    if not isinstance(spec, dict):
        raise _Problem("field 'slots' must map slot names to word lists; write slots: {slot: list_name}")
    for slot in spec:
        if not isinstance(slot, str) or not _SLOT_NAME.fullmatch(slot) or slot.endswith("2"):
            raise _Problem(f"slot name {slot!r} must be letters, digits or _ and not end in 2; rename it")
    slots = {slot: _slot_values(slot, value, lists, words_path) for slot, value in spec.items()}
    key_slots = _strings(raw, "key_slots")
    if missing := [s for s in key_slots if s not in slots]:
        raise _Problem(
            f"key_slots names slot {missing[0]!r}, which is not under slots; declare it or drop it"
        )
    sentences = {kind: _strings(raw, kind, required=kind in ("memory", "paraphrase")) for kind in _KINDS}
    if not sentences["update"] and not sentences["ending"]:
        raise _Problem("has neither an update nor an ending; give it one of them")
    for kind, templates in sentences.items():
        for i, template in enumerate(templates):
            _check_template(kind, i, template, slots)
    return Topic(
        name=raw["name"],
        domain=raw["domain"],
        group=raw.get("group", ""),
        slots=slots,
        keywords=_strings(raw, "keywords"),
        key_slots=key_slots,
        **sentences,
    )


def _read_topics(
    path: _Source, lists: Mapping[str, tuple[Any, ...]], words_path: _Source
) -> tuple[Topic, ...]:
    topics: list[Topic] = []
    for i, raw in enumerate(_read_yaml(path, "topics")["topics"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{path}: topic #{i + 1} has no name; start each topic with '- name: NAME'")
        if any(t.name == name for t in topics):
            raise InvalidInput(f"{path}: topic {name!r} occurs twice; rename or merge one of them")
        try:
            topics.append(_topic(raw, lists, words_path))
        except _Problem as e:
            raise InvalidInput(f"{path}: topic {name!r}: {e}") from None
    if not topics:
        raise InvalidInput(f"{path}: no topics; add at least one under 'topics:'")
    return tuple(topics)


def load_topics(topics: str | Path | None = None, words: str | Path | None = None) -> tuple[Topic, ...]:
    """Read and check topic templates (default: the packaged ``data/topics.yaml`` and ``data/words.yaml``).

    A defect — a slot no list backs, a form a word lacks, an unknown two-form particle, a missing
    field — raises :class:`~haneul.errors.InvalidInput` in one line naming the file, the topic, the
    field or slot and the fix.
    """
    return _load(topics or _DATA / "topics.yaml", words or _DATA / "words.yaml")[0]


def _load(topics: _Source, words: _Source) -> tuple[tuple[Topic, ...], dict[str, tuple[Any, ...]]]:
    lists = _read_words(words)
    return _read_topics(topics, lists, words), lists


@functools.cache
def _packaged() -> tuple[tuple[Topic, ...], dict[str, tuple[Any, ...]]]:
    return _load(_DATA / "topics.yaml", _DATA / "words.yaml")


def _topics() -> tuple[Topic, ...]:
    return _packaged()[0]


@functools.cache
def _by_name() -> dict[str, Topic]:
    return {t.name: t for t in _topics()}


@functools.cache
def _by_domain() -> dict[str, list[Topic]]:
    by_domain: dict[str, list[Topic]] = {}
    for t in _topics():
        by_domain.setdefault(t.domain, []).append(t)
    return by_domain


TOPICS: tuple[Topic, ...]  # read on first use, through __getattr__


def __getattr__(name: str) -> Any:
    """``TOPICS`` and the word lists (``CITIES``, ``BODY`` ...) are read from the data files on first use."""
    if name == "TOPICS":
        return _topics()
    lists = _packaged()[1] if name.isupper() else {}
    if name.lower() in lists:
        return lists[name.lower()]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: share of the unrelated-topic APPEND pairs drawn from the memory topic's own domain
NEAR_SHARE = 0.4
# what an unrelated topic's sentence is, for APPEND pairs: mostly a new fact or a change
_CROSS_KINDS = (("memory", 0.35), ("update", 0.3), ("paraphrase", 0.2), ("ending", 0.15))
_OP_KIND = {Op.PASS: "paraphrase", Op.REPLACE: "update", Op.DELETE: "ending"}


def _entities(binding: Mapping[str, Any], names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_word(binding[n]) for n in names if _base(n) in ENTITY_SLOTS)


@functools.cache
def topic_sentences(name: str, kind: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """Every sentence of topic ``name``'s ``kind`` (memory, paraphrase, update, ending, extra), with
    the person / body part / clinic / medicine words it names."""
    topics = _by_name()
    if name not in topics or kind not in _KINDS:
        raise InvalidInput(f"unknown topic {name!r} or kind {kind!r}; kinds are {', '.join(_KINDS)}")
    out: dict[str, frozenset[str]] = {}
    for template in getattr(topics[name], kind):
        names = _slots(template)
        for b in topics[name].bindings(names):
            out.setdefault(_render(template, b), _entities(b, names))
    return tuple(out.items())


def _fits(op: Op | None, m_slots: tuple[str, ...], s_slots: tuple[str, ...]) -> bool:
    """Whether a memory template and a summary template make a sensible pair."""
    # a changed value (X2) must change a value the memory sentence states
    if any(_base(n) not in m_slots for n in s_slots if n.endswith("2")):
        return False
    if op is Op.PASS:  # a paraphrase adds nothing the memory sentence lacks
        return set(s_slots) <= set(m_slots)
    if op is None:  # a compatible addition names a second thing of the same kind
        return any(n.endswith("2") for n in s_slots)
    return True


@dataclass(frozen=True)
class _Pool:
    """The same-topic pairs of one topic and operation, made on demand by index (some pools are big)."""

    topic: Topic
    blocks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (memory template, summary template, slots)
    ends: tuple[int, ...]  # cumulative block sizes

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0

    def pair(self, index: int) -> tuple[str, str]:
        j = bisect.bisect_right(self.ends, index)
        mt, st, names = self.blocks[j]
        b = self.topic.binding_at(names, index - (self.ends[j - 1] if j else 0))
        return _render(mt, b), _render(st, b)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (self.pair(i) for i in range(self.size))


@functools.cache
def _pools() -> dict[Op, dict[str, _Pool]]:
    """Every same-topic pair per operation and topic (APPEND: the compatible additions)."""
    pools: dict[Op, dict[str, _Pool]] = {op: {} for op in Op}
    for topic in _topics():
        for op, kind in [*_OP_KIND.items(), (Op.APPEND, "extra")]:
            blocks, ends, total = [], [], 0
            for mt in topic.memory:
                for st in getattr(topic, kind):
                    m_slots, s_slots = _slots(mt), _slots(st)
                    if _fits(None if op is Op.APPEND else op, m_slots, s_slots):
                        names = tuple(dict.fromkeys(m_slots + s_slots))
                        total += topic.binding_count(names)
                        blocks.append((mt, st, names))
                        ends.append(total)
            if blocks:
                pools[op][topic.name] = _Pool(topic, tuple(blocks), tuple(ends))
    return pools


def _related(a: Topic, b: Topic) -> bool:
    return a.name == b.name or (bool(a.group) and a.group == b.group)


@functools.cache
def _cross_count() -> int:
    """How many (memory, unrelated sentence) pairs the topics make."""
    topics = _topics()
    mem = {t.name: Counter(e for _, e in topic_sentences(t.name, "memory")) for t in topics}
    summ = {
        t.name: Counter(e for k, _ in _CROSS_KINDS for _, e in topic_sentences(t.name, k)) for t in topics
    }
    # summary sentences naming each entity word, per topic
    naming = {
        t.name: Counter(w for es, c in summ[t.name].items() for w in es for _ in range(c)) for t in topics
    }
    total = 0
    for a in topics:
        for b in topics:
            if _related(a, b):
                continue
            n_summ = sum(summ[b.name].values())
            for em, cm in mem[a.name].items():
                if len(em) <= 1:  # the common case: conflicts are the summaries naming that one word
                    clash = sum(naming[b.name][w] for w in em)
                else:
                    clash = sum(cs for es, cs in summ[b.name].items() if em & es)
                total += cm * (n_summ - clash)
    return total


def max_pairs() -> dict[Op, int]:
    """How many distinct pairs the templates can make for each operation."""
    pools = _pools()
    counts = {op: sum(p.size for p in pools[op].values()) for op in Op}
    counts[Op.APPEND] += _cross_count()
    return counts


# ------------------------------------------------------------------------------------------------
# sampling


def _shares(mix: Mapping[Any, float] | None) -> dict[Op, float]:
    if mix is None:
        return dict(DEFAULT_MIX)
    shares = dict.fromkeys(Op, 0.0)
    for key, value in mix.items():
        try:
            op = Op.parse(key) if isinstance(key, str) else Op(key)
        except (ValueError, InvalidInput):
            raise InvalidInput(
                f"unknown operation {key!r} in mix; use {', '.join(o.value for o in Op)}"
            ) from None
        if not isinstance(value, int | float) or value < 0:
            raise InvalidInput(f"mix share for {op.value} must be a number ≥ 0, got {value!r}; fix the mix")
        shares[op] = float(value)
    total = sum(shares.values())
    if not total > 0:
        raise InvalidInput(
            "mix shares must sum to a positive number; give at least one operation a share > 0"
        )
    return {op: v / total for op, v in shares.items()}


def _counts(n: int, shares: Mapping[Op, float]) -> dict[Op, int]:
    """Largest-remainder rounding: every count is within 1 of n·share and they sum to n."""
    raw = {op: n * shares[op] for op in Op}
    counts = {op: int(raw[op]) for op in Op}
    rest = sorted(Op, key=lambda op: (-(raw[op] - counts[op]), list(Op).index(op)))
    for op in rest[: n - sum(counts.values())]:
        counts[op] += 1
    return counts


def _check_capacity(n: int, shares: Mapping[Op, float]) -> None:
    cap = max_pairs()
    counts = _counts(n, shares)
    short = [op for op in Op if counts[op] > cap[op]]
    if not short:
        return
    best = min(int(cap[op] / shares[op]) for op in Op if shares[op] > 0)
    while best > 0 and any(c > cap[op] for op, c in _counts(best, shares).items()):
        best -= 1
    op = short[0]
    raise InvalidInput(
        f"n={n} needs {counts[op]} {op.value} pairs but the templates make at most {cap[op]}; "
        f"ask for n ≤ {best} with this mix"
    )


def _take_balanced(
    pools: Mapping[str, _Pool], k: int, rng: random.Random, seen: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``k`` pairs, the topics taking turns so that small topics are not drowned by big ones."""
    queues = {name: rng.sample(range(pool.size), min(pool.size, k)) for name, pool in pools.items()}
    order = list(queues)
    rng.shuffle(order)
    out: list[tuple[str, str]] = []
    while len(out) < k and order:
        for name in list(order):
            if len(out) == k:
                break
            queue = queues[name]
            pair = None
            while queue and (pair is None or pair in seen):
                pair = pools[name].pair(queue.pop())
            if pair is None or pair in seen:
                order.remove(name)
                continue
            seen.add(pair)
            out.append(pair)
    return out


def _take_unrelated(k: int, rng: random.Random, seen: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """``k`` pairs of a memory sentence and a sentence of an unrelated topic.

    A share :data:`NEAR_SHARE` of them come from the memory topic's own domain ("혈압약" and "병원
    예약"): near misses that share vocabulary but not the fact, which a model must learn to keep apart.
    """
    kinds = [k for k, _ in _CROSS_KINDS]
    weights = [w for _, w in _CROSS_KINDS]
    topics, by_domain = _topics(), _by_domain()
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < k:
        attempts += 1
        if attempts > 50 * k + 1000:
            raise InvalidInput(
                f"could only make {len(out)} distinct unrelated APPEND pairs; ask for fewer pairs"
            )
        a = rng.choice(topics)
        near = [t for t in by_domain[a.domain] if not _related(a, t)]
        b = rng.choice(near) if near and rng.random() < NEAR_SHARE else rng.choice(topics)
        if _related(a, b):
            continue
        kind = rng.choices(kinds, weights)[0]
        summaries = topic_sentences(b.name, kind)
        if not summaries:
            continue
        m, em = rng.choice(topic_sentences(a.name, "memory"))
        s, es = rng.choice(summaries)
        if em & es or (m, s) in seen:
            continue
        seen.add((m, s))
        out.append((m, s))
    return out


def generate_pairs(
    n: int, seed: int = 0, mix: Mapping[Any, float] | None = None
) -> list[tuple[str, str, Op]]:
    """``n`` distinct labelled ``(memory, summary, op)`` pairs, the same for the same ``seed``.

    ``mix`` gives each operation's share (normalised; default :data:`DEFAULT_MIX`); each realised
    count is within one of ``n`` times its share. About one APPEND pair in five is a compatible
    addition on the memory sentence's own topic, the rest pair it with an unrelated topic.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInput(f"n must be a whole number ≥ 1, got {n!r}; ask for at least one pair")
    shares = _shares(mix)
    _check_capacity(n, shares)
    counts = _counts(n, shares)
    rng = random.Random(seed)
    pools = _pools()
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[str, str, Op]] = []
    for op in (Op.PASS, Op.REPLACE, Op.DELETE):
        taken = _take_balanced(pools[op], counts[op], rng, seen)
        if len(taken) < counts[op]:  # only when pairs of this op also came up under another op
            raise InvalidInput(f"could only make {len(taken)} distinct {op.value} pairs; ask for fewer pairs")
        rows += [(m, s, op) for m, s in taken]
    same_topic = _take_balanced(pools[Op.APPEND], round(counts[Op.APPEND] * 0.2), rng, seen)
    unrelated = _take_unrelated(counts[Op.APPEND] - len(same_topic), rng, seen)
    rows += [(m, s, Op.APPEND) for m, s in same_topic + unrelated]
    rng.shuffle(rows)
    return rows
