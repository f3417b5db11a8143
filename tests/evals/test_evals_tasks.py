from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from haneul.errors import InvalidInput, NotFound
from haneul.evals import get_task, list_tasks, load_task_spec


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_registry_lists_every_task_and_rejects_unknown_names():
    names = {t.name for t in list_tasks()}
    assert {"nsmc", "kornli", "korsts", "klue_nli", "klue_sts", "klue_ynat", "korquad", "kobest_boolq",
            "kobest_copa", "kobest_wic", "kobest_hellaswag", "kobest_sentineg", "kmmlu", "haerae"} <= names
    with pytest.raises(InvalidInput, match="unknown task 'nsmcc'.*nsmc"):
        get_task("nsmcc")


def test_nsmc_tsv_and_gzip(tmp_path):
    text = "id\tdocument\tlabel\n1\t재밌다\t1\n2\t별로다\t0\n"
    plain = get_task("nsmc").load(write(tmp_path / "a.txt", text))
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert plain == get_task("nsmc").load(gz)
    assert [(e.id, e.fields["document"], e.label) for e in plain] == [("1", "재밌다", 1), ("2", "별로다", 0)]
    assert get_task("nsmc").gold_text(plain[0]) == "긍정"


def test_nsmc_bad_rows_name_file_line_and_field(tmp_path):
    f = write(tmp_path / "bad.txt", "id\tdocument\tlabel\n1\t좋다\t1\n2\t싫다\n")
    with pytest.raises(InvalidInput, match=r"bad.txt line 3: missing field 'label'"):
        get_task("nsmc").load(f)
    f = write(tmp_path / "lab.txt", "id\tdocument\tlabel\n1\t좋다\t2\n")
    with pytest.raises(InvalidInput, match=r"lab.txt line 2: label '2' is not in the task's label set"):
        get_task("nsmc").load(f)
    f = write(tmp_path / "hdr.txt", "id\ttext\tlabel\n1\t좋다\t1\n")
    with pytest.raises(InvalidInput, match=r"hdr.txt line 1: header lacks field 'document'"):
        get_task("nsmc").load(f)
    with pytest.raises(NotFound, match="does not exist"):
        get_task("nsmc").load(tmp_path / "missing.txt")


def test_kornli_and_korsts(tmp_path):
    nli = write(tmp_path / "nli.tsv", "sentence1\tsentence2\tgold_label\n비가 온다\t날씨가 맑다\tcontradiction\n")
    (ex,) = get_task("kornli").load(nli)
    assert ex.label == 2 and ex.fields == {"premise": "비가 온다", "hypothesis": "날씨가 맑다"}
    bad = write(tmp_path / "nli2.tsv", "sentence1\tsentence2\tgold_label\n가\t나\tmaybe\n")
    with pytest.raises(InvalidInput, match="nli2.tsv line 2: label 'maybe'"):
        get_task("kornli").load(bad)
    sts = write(
        tmp_path / "sts.tsv",
        "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\nmain\tMSR\t2012\t0001\t4.750\t가 \"나\"\t다\n",
    )
    (ex,) = get_task("korsts").load(sts)
    assert ex.score == pytest.approx(4.75) and ex.fields["sentence1"] == '가 "나"'
    bad = write(tmp_path / "sts2.tsv", "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\nm\tf\t1\t2\t7\ta\tb\n")
    with pytest.raises(InvalidInput, match="sts2.tsv line 2: score 7.0 is outside"):
        get_task("korsts").load(bad)


def test_klue_json(tmp_path):
    nli = tmp_path / "klue-nli.json"
    nli.write_text(json.dumps([
        {"guid": "n1", "source": "x", "premise": "p", "hypothesis": "h", "gold_label": "neutral"},
        {"guid": "n2", "source": "x", "premise": "p", "hypothesis": "h", "gold_label": 0},
    ]), encoding="utf-8")
    assert [e.label for e in get_task("klue_nli").load(nli)] == [1, 0]
    sts = jsonl(tmp_path / "sts.jsonl", [
        {"guid": "s1", "sentence1": "a", "sentence2": "b", "labels": {"label": 3.2, "real-label": 3.214, "binary-label": 1}},
    ])
    assert get_task("klue_sts").load(sts)[0].score == pytest.approx(3.214)
    ynat = jsonl(tmp_path / "ynat.jsonl", [{"guid": "y1", "title": "삼성 반도체", "label": "경제"},
                                           {"guid": "y2", "title": "손흥민 골", "label": 5}])
    assert [e.label for e in get_task("klue_ynat").load(ynat)] == [1, 5]
    bad = jsonl(tmp_path / "ynat2.jsonl", [{"guid": "y1", "label": "경제"}])
    with pytest.raises(InvalidInput, match="ynat2.jsonl line 1: missing field 'title'"):
        get_task("klue_ynat").load(bad)
    bad = tmp_path / "nli-bad.json"
    bad.write_text(json.dumps([{"guid": "a", "premise": "p", "hypothesis": "h"}]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="nli-bad.json record 1: missing field 'gold_label'"):
        get_task("klue_nli").load(bad)


def test_korquad_json(tmp_path):
    doc = {"version": "KorQuAD_v1.0", "data": [{"title": "t", "paragraphs": [{
        "context": "세종대왕은 1443년에 훈민정음을 창제하였다.",
        "qas": [{"id": "q1", "question": "훈민정음을 만든 사람은?", "answers": [{"text": "세종대왕", "answer_start": 0}]},
                {"id": "q2", "question": "언제?", "answers": [{"text": "1443년", "answer_start": 6}]}]}]}]}
    f = tmp_path / "korquad.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    items = get_task("korquad").load(f)
    assert [(e.id, e.answers) for e in items] == [("q1", ("세종대왕",)), ("q2", ("1443년",))]
    del doc["data"][0]["paragraphs"][0]["qas"][1]["question"]
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"data\[0\].paragraphs\[0\].qas\[1\]: missing field 'question'"):
        get_task("korquad").load(f)


def test_kobest_family(tmp_path):
    boolq = jsonl(tmp_path / "boolq.jsonl", [{"paragraph": "p", "question": "q?", "label": 1}])
    assert get_task("kobest_boolq").load(boolq)[0].label == 1
    copa = jsonl(tmp_path / "copa.jsonl", [{"premise": "비가 왔다.", "question": "결과", "alternative_1": "우산을 폈다.",
                                            "alternative_2": "해가 떴다.", "label": 0}])
    (ex,) = get_task("kobest_copa").load(copa)
    assert ex.choices == ("우산을 폈다.", "해가 떴다.") and ex.fields["connective"] == "그래서"
    bad = jsonl(tmp_path / "copa2.jsonl", [{"premise": "p", "question": "이유", "alternative_1": "a",
                                            "alternative_2": "b", "label": 0}])
    with pytest.raises(InvalidInput, match="copa2.jsonl line 1: question '이유'"):
        get_task("kobest_copa").load(bad)
    wic = jsonl(tmp_path / "wic.jsonl", [{"word": "배", "context_1": "배가 아프다", "context_2": "배를 탔다", "label": 0}])
    assert get_task("kobest_wic").load(wic)[0].fields["word"] == "배"
    hs = jsonl(tmp_path / "hs.jsonl", [{"context": "c", "ending_1": "a", "ending_2": "b", "ending_3": "c",
                                        "ending_4": "d", "label": 3}])
    assert get_task("kobest_hellaswag").load(hs)[0].choices == ("a", "b", "c", "d")
    neg = jsonl(tmp_path / "neg.jsonl", [{"sentence": "좋지 않다", "label": 0}, {"sentence": "x", "label": 4}])
    with pytest.raises(InvalidInput, match="neg.jsonl line 2: label '4'"):
        get_task("kobest_sentineg").load(neg)


def test_kmmlu_csv_and_haerae_jsonl(tmp_path):
    csv_file = write(tmp_path / "kmmlu.csv",
                     'question,A,B,C,D,answer\n"1+1은?",1,2,3,4,2\n"수도는,어디?",부산,서울,대구,광주,2\n')
    items = get_task("kmmlu").load(csv_file)
    assert [e.label for e in items] == [1, 1] and items[1].fields["question"] == "수도는,어디?"
    bad = write(tmp_path / "bad.csv", "question,A,B,C,answer\nq,a,b,c,1\n")
    with pytest.raises(InvalidInput, match="bad.csv line 2: missing field 'D'"):
        get_task("kmmlu").load(bad)
    hr = jsonl(tmp_path / "hr.jsonl", [{"question": "q", "options": ["w", "x", "y", "z"], "answer": "(C)"},
                                       {"question": "q", "options": ["w", "x", "y", "z"], "answer": "E"}])
    with pytest.raises(InvalidInput, match="hr.jsonl line 2: label 'E'"):
        get_task("haerae").load(hr)


def test_yaml_spec_builds_tasks_without_code(tmp_path):
    jsonl(tmp_path / "data.jsonl", [{"text": "좋아요", "y": "pos"}, {"text": "싫어요", "y": "neg"}])
    spec = write(tmp_path / "senti.yaml", (
        "name: my_senti\nkind: classification\ndata: data.jsonl\n"
        "template: \"글: {text}\\n감정:\"\nlabel_field: y\nlabels: {neg: 부정, pos: 긍정}\n"
    ))
    loaded = load_task_spec(spec)
    items = loaded.task.load(loaded.data)
    assert loaded.task.kind == "choice" and loaded.task.choices == ("부정", "긍정")
    assert [e.label for e in items] == [1, 0]
    jsonl(tmp_path / "gen.jsonl", [{"q": "수도?", "a": ["서울", "서울특별시"]}, {"q": "x"}])
    gen = write(tmp_path / "gen.yaml", "name: g\nkind: generation\ndata: gen.jsonl\ntemplate: '{q}'\nanswers_field: a\nmetric: f1\n")
    spec_g = load_task_spec(gen)
    with pytest.raises(InvalidInput, match="gen.jsonl line 2: missing field 'a'"):
        spec_g.task.load(spec_g.data)
    jsonl(tmp_path / "mc.jsonl", [{"q": "?", "choices": ["a", "b", "c"], "answer": 2}])
    mc = write(tmp_path / "mc.yaml", "name: m\nkind: multiple_choice\ndata: mc.jsonl\ntemplate: '{q}'\n")
    spec_m = load_task_spec(mc)
    assert spec_m.task.load(spec_m.data)[0].choices == ("a", "b", "c")
    bad = write(tmp_path / "bad.yaml", "name: b\nkind: ranking\ndata: x.jsonl\ntemplate: '{q}'\n")
    with pytest.raises(InvalidInput, match="kind 'ranking' is not one of"):
        load_task_spec(bad)
