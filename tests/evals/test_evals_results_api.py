"""The evaluation results API (store, list, get, delete, bad documents) and the models × tasks table."""

from __future__ import annotations

import json
import math

import pytest
from evals_results_helpers import results_doc

from haneul.evals.store import leaderboard, main_metric, validate_results


def test_results_round_trip(evals_api, haneul_home):
    doc = results_doc("ko-small", {"nsmc": {0: [70.0], 4: [80.0, 84.0]}, "korsts": {0: [30.0]}})
    res = evals_api.post("/api/v1/evals/results?session=7", json=doc)
    assert res.status_code == 201, res.text
    info = res.json()
    rid = info["id"]
    assert info["created"] is True and info["model"] == "ko-small" and info["session"] == 7
    assert info["tasks"] == ["nsmc", "korsts"] and info["shots"] == [0, 4] and info["seeds"] == 2
    assert (haneul_home / "evals" / "results" / f"{rid}.json").is_file()
    # the same run again keeps one copy (and the first session link)
    again = evals_api.post("/api/v1/evals/results", json=doc).json()
    assert again["id"] == rid and again["created"] is False and again["session"] == 7
    listing = evals_api.get("/api/v1/evals/results").json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == rid
    assert evals_api.get("/api/v1/evals/results", params={"model": "other"}).json()["total"] == 0
    stored = evals_api.get(f"/api/v1/evals/results/{rid}").json()
    assert stored["results"]["tasks"] == doc["tasks"] and stored["session"] == 7
    assert stored["results"]["tasks"]["nsmc"]["shots"]["4"]["mean"]["acc"] == 82.0
    assert evals_api.delete(f"/api/v1/evals/results/{rid}").json() == {"id": rid, "deleted": True}
    assert evals_api.get(f"/api/v1/evals/results/{rid}").status_code == 404
    assert evals_api.delete(f"/api/v1/evals/results/{rid}").status_code == 404
    assert evals_api.get("/api/v1/evals/results").json()["total"] == 0


def test_a_different_run_gets_its_own_id(evals_api):
    a = evals_api.post("/api/v1/evals/results", json=results_doc("m", {"nsmc": {0: [70.0]}})).json()
    b = evals_api.post("/api/v1/evals/results", json=results_doc("m", {"nsmc": {0: [71.0]}})).json()
    assert a["id"] != b["id"]
    assert [r["id"] for r in evals_api.get("/api/v1/evals/results").json()["items"]] == [b["id"], a["id"]]


def _bad_docs():
    good = results_doc("m", {"nsmc": {0: [70.0]}})

    def edit(fn):
        doc = json.loads(json.dumps(good))
        fn(doc)
        return doc

    return [
        ([1, 2], "expected an object with 'model' and 'tasks'"),
        (edit(lambda d: d.pop("model")), "'model' is missing"),
        (edit(lambda d: d.update(tasks={})), "'tasks' is missing or empty"),
        (edit(lambda d: d["tasks"]["nsmc"].update(shots={})), "tasks.nsmc.shots is missing"),
        (edit(lambda d: d["tasks"]["nsmc"]["shots"].update({"four": {"mean": {"acc": 1.0}}})), "key 'four'"),
        (edit(lambda d: d["tasks"]["nsmc"]["shots"]["0"]["mean"].update(acc="high")),
         "tasks.nsmc.shots.0.mean.acc is 'high', expected a number"),
        (edit(lambda d: d["tasks"]["nsmc"]["shots"]["0"].pop("mean")), "tasks.nsmc.shots.0.mean must be"),
        (edit(lambda d: d["tasks"]["nsmc"]["shots"]["0"]["seeds"]["0"].update(acc=[1])), "seeds.0.acc"),
    ]


@pytest.mark.parametrize("doc,message", _bad_docs())
def test_bad_documents_are_one_line_400s(evals_api, doc, message):
    res = evals_api.post("/api/v1/evals/results", json=doc)
    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "invalid_input" and message in error["message"] and "\n" not in error["message"]
    assert "haneul eval run" in error["message"]  # the fix
    assert evals_api.get("/api/v1/evals/results").json()["total"] == 0


def test_session_must_be_a_session_id(evals_api):
    res = evals_api.post("/api/v1/evals/results?session=abc", json=results_doc("m", {"nsmc": {0: [1.0]}}))
    assert res.status_code == 400 and "session 'abc' is not a platform session id" in res.json()["error"]["message"]


def test_body_that_is_not_json(evals_api):
    res = evals_api.post("/api/v1/evals/results", content=b"model: x", headers={"Content-Type": "application/json"})
    assert res.status_code == 400 and "not valid JSON" in res.json()["error"]["message"]


def test_unknown_or_malformed_ids_are_404(evals_api):
    for rid in ("0123456789ab", "ZZZ", "..haneul"):
        res = evals_api.get(f"/api/v1/evals/results/{rid}")
        assert res.status_code == 404, rid
        assert res.json()["error"]["code"] == "not_found"
    assert evals_api.get("/api/v1/evals/results/..%2F..%2Fhaneul.db").status_code == 404


def test_non_finite_scores_are_stored_as_null(evals_api):
    doc = results_doc("m", {"korsts": {0: [10.0]}})
    doc["tasks"]["korsts"]["shots"]["0"]["mean"]["pearson"] = float("nan")
    body = json.dumps(doc, allow_nan=True)  # what Python's json writes for a NaN correlation
    rid = evals_api.post("/api/v1/evals/results", content=body, headers={"Content-Type": "application/json"}).json()["id"]
    stored = evals_api.get(f"/api/v1/evals/results/{rid}")
    assert "NaN" not in stored.text
    assert stored.json()["results"]["tasks"]["korsts"]["shots"]["0"]["mean"]["pearson"] is None
    assert validate_results({"model": "m", "tasks": {"t": {"shots": {"0": {"mean": {"acc": math.inf}}}}}}) == {
        "model": "m", "tasks": {"t": {"shots": {"0": {"mean": {"acc": None}}}}}}


def test_main_metric():
    assert main_metric(results_doc("m", {"korsts": {0: [1.0]}})["tasks"]["korsts"]) == "spearman"
    assert main_metric(results_doc("m", {"nsmc": {0: [1.0]}})["tasks"]["nsmc"]) == "acc"
    assert main_metric({"metric": "korquad", "shots": {"0": {"mean": {"exact_match": 1.0, "f1": 2.0}}}}) == "f1"
    assert main_metric({"metric": "custom", "shots": {"0": {"mean": {"rouge": 1.0}}}}) == "rouge"


def _record(rid, created, doc):
    return {"id": rid, "created_at": created, "session": None, "results": validate_results(doc)}


def test_leaderboard_table_by_hand():
    a = results_doc("model-a", {"nsmc": {0: [60.0], 4: [70.0, 74.0]}, "korsts": {0: [40.0]}})
    b = results_doc("model-b", {"nsmc": {0: [65.0], 4: [71.0, 71.0]}})
    b_old = results_doc("model-b", {"nsmc": {0: [99.0]}, "korsts": {0: [50.0]}})
    board = leaderboard([_record("a" * 12, 2.0, a), _record("b" * 12, 3.0, b), _record("c" * 12, 1.0, b_old)])
    assert board["shots"] == [0, 4]
    assert [(c["shots"], c["task"], c["metric"]) for c in board["columns"]] == [
        (0, "korsts", "spearman"), (0, "nsmc", "acc"), (4, "nsmc", "acc")]
    assert board["groups"] == [(0, 2), (4, 1)]
    rows = {r["model"]: r for r in board["rows"]}
    assert rows["model-b"]["runs"] == 2
    values = {m: [c and (c["value"], c["best"]) for c in r["cells"]] for m, r in rows.items()}
    # model-b's newest run fills 0-shot nsmc (65, not the older 99); korsts comes from its older run
    assert values["model-a"] == [(40.0, False), (60.0, False), (72.0, True)]
    assert values["model-b"] == [(50.0, True), (65.0, True), (71.0, False)]
    cell = rows["model-a"]["cells"][2]
    detail = board["details"][cell["key"]]
    assert detail["seeds"]["1"]["acc"] == 74.0 and detail["run"]["id"] == "a" * 12 and detail["n"] == 50
    only4 = leaderboard([_record("a" * 12, 2.0, a), _record("b" * 12, 3.0, b)], shots=4)
    assert [(c["shots"], c["task"]) for c in only4["columns"]] == [(4, "nsmc")]
    assert [r["cells"][0]["best"] for r in only4["rows"]] == [True, False]


def test_page_renders_table_with_bold_best(evals_api):
    evals_api.post("/api/v1/evals/results", json=results_doc("model-a", {"nsmc": {0: [60.0]}}))
    evals_api.post("/api/v1/evals/results", json=results_doc("model-b", {"nsmc": {0: [65.5]}}))
    html = evals_api.get("/evals").text
    assert "<strong>65.50 ± 1.00</strong>" in html and "60.00 ± 1.00" in html
    assert "<strong>60.00" not in html
    assert 'href="/evals?model=model-a#runs"' in html
    assert evals_api.get("/evals", params={"shots": "4"}).status_code == 200  # unknown shots: every column
    runs = evals_api.get("/evals", params={"model": "model-a"}).text.split('id="runs"')[1].split("</section>")[0]
    assert "model-a" in runs and "model-b" not in runs


def test_page_escapes_model_names(evals_api):
    evals_api.post("/api/v1/evals/results", json=results_doc("<img src=x onerror=alert(1)>", {"nsmc": {0: [1.0]}}))
    html = evals_api.get("/evals").text
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_empty_page(evals_api):
    html = evals_api.get("/evals").text
    assert 'id="no-results"' in html and "haneul eval publish" in html
