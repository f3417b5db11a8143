from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from haneul.cli.main import main
from haneul.dialog import synth
from haneul.dialog.data import load_pairs
from haneul.dialog.operators import Op
from haneul.dialog.synth import CITIES, TOPICS, generate_pairs, josa, load_topics, max_pairs, topic_sentences
from haneul.errors import InvalidInput

KINDS = ("memory", "paraphrase", "update", "ending", "extra")
# a sentence that changes or ends a fact; a paraphrase (PASS) must not bring one the memory lacks
CHANGE_CUES = (
    "그만",
    "나으",
    "나았",
    "좋아지",
    "괜찮아",
    "이사",
    "옮기",
    "바꾸",
    "바뀌",
    "취소",
    "미뤄",
    "미루",
    "미룸",
    "연기",
    "퇴원",
    "으나",
    "없어지",
    "끝나",
    "합격",
    "낳",
)
ENDING_CUES = (
    "취소",
    "미뤄",
    "미루",
    "미룸",
    "연기",
    "없던 일",
    "퇴원",
    "돌아",
    "나와",
    "나오",
    "떠남",
    "고치",
    "고쳐",
    "수리",
    "못 오",
    "못 가",
)


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str, Op]]:
    return generate_pairs(2000, seed=0)


@pytest.fixture(scope="module")
def topic_of() -> dict[str, dict[str, set[str]]]:
    """kind -> sentence -> names of the topics that make it."""
    index: dict[str, dict[str, set[str]]] = {k: {} for k in KINDS}
    for t in TOPICS:
        for k in KINDS:
            for s, _ in topic_sentences(t.name, k):
                index[k].setdefault(s, set()).add(t.name)
    return index


def is_note_style(s: str) -> bool:
    last = ord(s[-1]) - 0xAC00 if s else -1
    return (
        0 < len(s) <= 60
        and s == s.strip()
        and "  " not in s
        and re.fullmatch(r"[가-힣0-9 ]+", s) is not None
        and 0 <= last < 11172
        and last % 28 in (16, 10)  # final ㅁ (-심, -음, -함, -임 ...) or ㄻ (삶)
        and not s.endswith(("요", "니다"))
    )


def test_josa_follows_the_last_sound():
    assert [josa(w, "을/를") for w in ("사과", "밥", "물")] == ["사과를", "밥을", "물을"]
    assert [josa(w, "으로/로") for w in ("서울", "부산", "나무", "10일")] == [
        "서울로",
        "부산으로",
        "나무로",
        "10일로",
    ]
    assert [josa(w, "이/가") for w in ("학교", "선생님", "3", "2")] == ["학교가", "선생님이", "3이", "2가"]
    assert [josa(w, "은/는") for w in ("혈압약", "보일러")] == ["혈압약은", "보일러는"]
    assert [josa(w, "과/와") for w in ("동생", "친구")] == ["동생과", "친구와"]
    with pytest.raises(ValueError, match="unknown particle '에게/께'"):
        josa("밥", "에게/께")


DATA = Path(synth.__file__).with_name("synth_templates")


def edited(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the packaged data file ``name`` with its first ``old`` replaced by ``new``."""
    text = (DATA / name).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_packaged_data_files_are_the_topics_and_word_lists():
    assert load_topics() == TOPICS
    assert load_topics(DATA / "topics.yaml", DATA / "words.yaml") == TOPICS
    assert CITIES[:2] == ("서울", "부산") and synth.BODY[0] == "허리"
    home = next(t for t in TOPICS if t.name == "home_city")
    assert home.slots["city"] == tuple(c for c in CITIES if c not in ("미국", "일본"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [('"{part:이/가} 아프심"', '"{prt:이/가} 아프심"',
      "topic 'pain': memory[0] '{prt:이/가} 아프심' uses slot 'prt', which is not under slots; "
      "declare 'prt' or fix the name"),
     ('"{ill.got}"', '"{ill.gone}"',
      "topic 'illness': memory[0] '{ill.gone}' uses form 'gone' of slot 'ill', which not every word has; "
      "add gone: to each of its words"),
     ('"{part:이/가} 아프심"', '"{part:에게/께} 아프심"',
      "topic 'pain': memory[0] '{part:에게/께} 아프심' gives slot 'part' the unknown particle '에게/께'; "
      "use one of 이/가, 을/를"),
     ('"{part:이/가} 아프심"', '"{part:이/가 아프심"',
      "topic 'pain': memory[0] '{part:이/가 아프심' has an unmatched brace"),
     ("slots: {part: body}", "slots: {part: bodies}",
      "topic 'pain': slot 'part' names the word list 'bodies'"),
     ("slots: {part: body}", "slots: {part2: body}", "topic 'pain': slot name 'part2' must be"),
     ("key_slots: [part]", "key_slots: [parts]", "topic 'pain': key_slots names slot 'parts', which is not"),
     ("keywords: [통증]", "keywords: [통증]\n    memroy: []", "topic 'pain': unknown field 'memroy'; use name,"),
     ('memory:\n      - "{ill.got}"\n', "memory: []\n    extra:\n      - \"{ill.got}\"\n",
      "topic 'illness': field 'memory' is empty; give it at least one sentence"),
     ("  - name: symptom\n", "  - name: symptom\n    paraphrase: []\n", "key 'paraphrase' is given twice"),
     ("  - name: symptom", "  - name: pain", "topic 'pain' occurs twice"),
     ("{list: cities, except: [미국, 일본]}", "{list: cities, except: [미국, 중국]}",
      "topic 'home_city': slot 'city' leaves out '중국', which is not in 'cities'"),
     ("  - name: pain", "  - name: [pain", "not valid YAML")],
)  # fmt: skip
def test_a_broken_topic_is_one_line_naming_file_topic_and_slot(tmp_path, old, new, message):
    path = edited(tmp_path, "topics.yaml", old, new)
    with pytest.raises(InvalidInput) as exc:
        load_topics(path)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


def test_a_broken_word_list_names_file_and_list(tmp_path):
    path = edited(tmp_path, "words.yaml", "got: 감기에 걸리심", "got:")
    with pytest.raises(
        InvalidInput, match=r"words.yaml: word list 'illnesses' has the item .*; write a word,"
    ):
        load_topics(words=path)
    path = edited(tmp_path, "words.yaml", "[허리, 무릎,", "[허리, 허리,")
    with pytest.raises(InvalidInput, match="word list 'body' has '허리' twice; keep one"):
        load_topics(words=path)
    path = edited(
        tmp_path, "words.yaml", "{w: 수영, v: 하심, ing: 하시다가, neg: 안 하심}", "{w: 수영, v: 하심}"
    )
    with pytest.raises(InvalidInput, match="topic 'exercise': update.* uses form 'neg' of slot 'act'"):
        load_topics(words=path)


def test_topics_cover_the_domains_and_only_time_bound_ones_end():
    assert len(TOPICS) >= 40 and len({t.name for t in TOPICS}) == len(TOPICS)
    assert {t.domain for t in TOPICS} == {
        "health",
        "clinic",
        "meals",
        "activity",
        "family",
        "living",
        "mood",
        "plans",
    }
    bound = [t for t in TOPICS if t.time_bound]
    assert len(bound) >= 8 and all(topic_sentences(t.name, "ending") for t in bound)
    assert all(t.memory and t.paraphrase and (t.update or t.ending) for t in TOPICS)


def test_every_sentence_is_short_hangul_note_style_and_belongs_to_one_topic(topic_of):
    sentences = {s: names for k in KINDS for s, names in topic_of[k].items()}
    assert len(sentences) > 3000
    assert [s for s in sentences if not is_note_style(s)] == []
    owners: dict[str, set[str]] = {}
    for k in KINDS:
        for s, names in topic_of[k].items():
            owners.setdefault(s, set()).update(names)
    assert [s for s, names in owners.items() if len(names) > 1] == []


def test_same_seed_same_pairs_other_seed_other_pairs():
    a = generate_pairs(300, seed=7)
    assert a == generate_pairs(300, seed=7)
    b = generate_pairs(300, seed=8)
    assert len(set(a) & set(b)) < 60


def test_exact_n_class_mix_and_no_duplicates(pairs):
    assert len(pairs) == 2000
    assert Counter(op for *_, op in pairs) == {Op.PASS: 400, Op.APPEND: 800, Op.REPLACE: 500, Op.DELETE: 300}
    assert len({(m, s) for m, s, _ in pairs}) == 2000
    assert all(m != s and is_note_style(m) and is_note_style(s) for m, s, _ in pairs)
    # 37 x (1, 1, 1, 0) / 3 = 12.33 each: largest remainder gives 13, 12, 12 and no DELETE
    counts = Counter(
        op for *_, op in generate_pairs(37, mix={Op.PASS: 1, Op.APPEND: 1, "replace": 1, Op.DELETE: 0})
    )
    assert sorted(counts.values()) == [12, 12, 13] and Op.DELETE not in counts


def test_delete_memories_are_time_bound_and_the_summary_ends_them(pairs, topic_of):
    bound = {t.name for t in TOPICS if t.time_bound}
    deletes = [(m, s) for m, s, op in pairs if op is Op.DELETE]
    assert deletes and all(topic_of["memory"][m] <= bound for m, _ in deletes)
    assert [s for _, s in deletes if not any(c in s for c in ENDING_CUES)] == []


def test_pass_replace_delete_pairs_stay_on_one_topic(pairs, topic_of):
    keywords = {t.name: t.all_keywords for t in TOPICS}
    for m, s, op in pairs:
        if op is Op.APPEND:
            continue
        kind = {Op.PASS: "paraphrase", Op.REPLACE: "update", Op.DELETE: "ending"}[op]
        shared = topic_of["memory"][m] & topic_of[kind].get(s, set())
        assert shared, (m, s, op)
        assert any(any(k in m for k in keywords[t]) and any(k in s for k in keywords[t]) for t in shared), (
            m,
            s,
        )


def test_paraphrases_bring_no_change_and_replacements_change_the_city(pairs, topic_of):
    for m, s, op in pairs:
        if op is Op.PASS:
            assert not [c for c in CHANGE_CUES if c in s and c not in m], (m, s)
    moves = [
        (m, s)
        for m, s, op in generate_pairs(3000, seed=1, mix={Op.REPLACE: 1})
        if "home_city" in topic_of["memory"].get(m, ())
    ]
    assert len(moves) > 20
    for m, s in moves:
        assert {c for c in CITIES if c in s} - {c for c in CITIES if c in m}, (m, s)


def test_append_pairs_are_unrelated_topics_or_same_topic_additions(pairs, topic_of):
    by_name = {t.name: t for t in TOPICS}
    appends = [(m, s) for m, s, op in pairs if op is Op.APPEND]
    same = 0
    for m, s in appends:
        (mt,) = topic_of["memory"][m]
        if mt in topic_of["extra"].get(s, ()):
            same += 1
            continue
        owners = {t for k in ("memory", "paraphrase", "update", "ending") for t in topic_of[k].get(s, ())}
        assert owners and all(by_name[t].group != by_name[mt].group for t in owners), (m, s)
    assert 0.1 * len(appends) < same < 0.3 * len(appends)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(InvalidInput, match="at least one pair"):
        generate_pairs(0)
    with pytest.raises(InvalidInput, match="unknown operation 'MERGE'"):
        generate_pairs(10, mix={"MERGE": 1.0})
    with pytest.raises(InvalidInput, match="≥ 0"):
        generate_pairs(10, mix={Op.PASS: -0.5, Op.APPEND: 1.0})
    with pytest.raises(InvalidInput, match="sum to a positive number"):
        generate_pairs(10, mix={Op.PASS: 0})
    cap = max_pairs()[Op.DELETE]
    with pytest.raises(InvalidInput, match=f"at most {cap}; ask for n ≤ {cap}"):
        generate_pairs(cap + 1, mix={Op.DELETE: 1})


def test_capacity_is_exact_every_delete_pair_can_be_drawn():
    cap = max_pairs()
    assert (
        cap[Op.PASS] >= 3000 and cap[Op.REPLACE] >= 3000 and cap[Op.DELETE] >= 3000 and cap[Op.APPEND] > 10**5
    )
    every = generate_pairs(cap[Op.DELETE], mix={Op.DELETE: 1}, seed=3)
    assert len({(m, s) for m, s, _ in every}) == cap[Op.DELETE]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["dialog", *args])
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_cli_writes_pairs_that_load_pairs_reads(capsys, tmp_path):
    path = tmp_path / "pairs.jsonl"
    code, out, _ = run_cli(capsys, "synth-pairs", "-n", "40", "--seed", "5", "-o", str(path))
    assert code == 0 and f"wrote 40 pairs to {path} (APPEND 16, DELETE 6, PASS 8, REPLACE 10)" in out
    assert load_pairs(path) == generate_pairs(40, seed=5)
    code, _, err = run_cli(capsys, "synth-pairs", "-n", "0", "-o", str(path))
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: n must be a whole number ≥ 1")
