"""Competitions end to end against a live server: `haneul submit` runs the session's code in submit mode
on the hidden test inputs and the dataset's eval script on the predictions; leaderboards rank the best
score of each team; the bad inputs each fail in one line; daily limits answer 429; another team's
sessions and submissions stay hidden. The worked example (examples/nsmc_competition) is walked by two
users of two teams on a tiny NSMC-format fixture."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_helpers import BIN, LiveServer, start_server, wait_for

from haneul.platform.leaderboard import parse_score

PY = sys.executable
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nsmc_competition"

# predicts k * x for each input x; BEHAVIOUR (a session env var) makes infer misbehave on purpose
MODEL = textwrap.dedent("""
    import json, os, time
    import haneul

    state = {}

    def save(folder):
        with open(os.path.join(folder, "k.json"), "w") as fh:
            json.dump(state, fh)

    def load(folder):
        with open(os.path.join(folder, "k.json")) as fh:
            state.update(json.load(fh))

    def infer(xs):
        how = os.environ.get("BEHAVIOUR", "good")
        if how == "raise":
            raise ValueError(f"cannot predict {xs[0]}")
        if how == "short":
            return [state["k"] * x for x in xs[:3]]
        if how == "sleep":
            time.sleep(60)
        if how == "snoop":
            folder = os.path.dirname(os.environ["HANEUL_SUBMIT_INPUTS"])
            seen = {"inputs": sorted(os.listdir(folder)), "env": sorted(k for k in os.environ if "TOKEN" in k),
                    "home": os.environ["HANEUL_HOME"]}
            with open(os.environ["SNOOP_FILE"], "w") as fh:
                json.dump(seen, fh)
        return [state["k"] * x for x in xs]

    if os.environ.get("BEHAVIOUR") == "noinfer":
        haneul.bind(save=save, load=load)
    else:
        haneul.bind(save=save, load=load, infer=infer)
    state["k"] = int(os.environ.get("K", "2"))
    haneul.save("w")
    print("trained k =", state["k"])
""")

# accuracy of predictions against labels; the labels of inputs 1..5 are 2, 4, 6, 8, 11
EVAL = textwrap.dedent("""
    import argparse, json
    p = argparse.ArgumentParser()
    p.add_argument("--prediction")
    p.add_argument("--label")
    a = p.parse_args()
    preds = [json.loads(line) for line in open(a.prediction)]
    labels = [int(line) for line in open(a.label)]
    print("scoring", len(preds))
    print(json.dumps({"acc": sum(p == y for p, y in zip(preds, labels)) / len(labels)}))
""")
EVAL_CRASH = "import sys\nprint('reading labels', file=sys.stderr)\nraise KeyError('no column named label')\n"
EVAL_HANG = "import time\ntime.sleep(60)\n"
EVAL_NO_SCORE = "print('all done, looks good')\n"
EVAL_MEMORY = "x = bytearray(3 << 30)\nprint(1.0)\n"


def cli(server: LiveServer, *args: str, token: str | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = server.env()
    if token is not None:
        env["HANEUL_API_TOKEN"] = token
    return subprocess.run([str(BIN / "haneul"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    return lines[-1]


def competition(root: Path, eval_script: str = EVAL) -> Path:
    """A tiny competition: inputs 1..5 in test_data, their labels in test_label."""
    (root / "train").mkdir(parents=True)
    (root / "train" / "about.txt").write_text("predict 2x\n")
    (root / "test").mkdir()
    (root / "test" / "test_data").write_text("".join(f"{x}\n" for x in range(1, 6)))
    (root / "test" / "test_label").write_text("2\n4\n6\n8\n11\n")
    (root / "eval.py").write_text(eval_script)
    return root


def push(server: LiveServer, name: str, root: Path, *extra: str, token: str | None = None) -> None:
    ok(cli(server, "dataset", "push", name, str(root / "train"), "--test", str(root / "test"),
           "--eval", str(root / "eval.py"), "--metric", "acc", "--public", *extra, token=token))


def run(server: LiveServer, folder: Path, *env: str, dataset: str | None = "lb", token: str | None = None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(MODEL)
    args = [arg for pair in env for arg in ("--env", pair)]
    if dataset:
        args += ["--dataset", dataset]
    out = ok(cli(server, "run", "-f", *args, "--", "python", "train.py", cwd=folder, token=token))
    assert "trained k" in out
    return int(json.loads(ok(cli(server, "ps", "--json", token=token)))["items"][0]["id"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    limits = {"HANEUL_SUBMIT_EVAL_TIMEOUT_S": "3", "HANEUL_SUBMIT_DAILY_LIMIT": "4",
              "HANEUL_SUBMIT_EVAL_MEMORY": "1G", "HANEUL_SUBMIT_INFER_TIMEOUT_S": "8"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in limits.items():
            mp.setenv(key, value)
        live = start_server(tmp_path_factory.mktemp("leaderboard-home"))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def boards(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Competitions lb (and one per broken eval script), sessions with k = 2 and k = 3."""
    root = tmp_path_factory.mktemp("comp")
    push(server, "lb", competition(root / "lb"))
    for name, script in (("lb-crash", EVAL_CRASH), ("lb-hang", EVAL_HANG), ("lb-noscore", EVAL_NO_SCORE),
                         ("lb-memory", EVAL_MEMORY), ("lb-quota", EVAL), ("lb-infer", EVAL)):
        push(server, name, competition(root / name, script))
    ok(cli(server, "dataset", "push", "lb-noeval", str(root / "lb" / "train")))
    return {"k2": run(server, root / "k2", "K=2"), "k3": run(server, root / "k3", "K=3")}


def submit(server: LiveServer, sid: int, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return cli(server, "submit", str(sid), *args, "--json", token=token)


# -------------------------------------------------------------------------------------- fast tests


def test_parse_score_reads_json_or_a_bare_number() -> None:
    assert parse_score('{"acc": 0.75}', "acc") == 0.75
    assert parse_score("0.5", "acc") == 0.5
    assert parse_score('{"f1": 0.75}', "acc") == "printed {\"f1\": 0.75} without the metric 'acc'"
    assert parse_score("done", "acc") == "printed no score"
    assert parse_score("true", "acc") == "printed no score"
    assert parse_score("NaN", "acc") == "printed the score nan, which is not a finite number"
    assert parse_score('{"acc": 1e999}', "acc") == "printed the score inf, which is not a finite number"


def test_submit_scores_the_checkpoint_and_the_leaderboard_ranks_teams(server: LiveServer,
                                                                      boards: dict[str, int]) -> None:
    done = json.loads(ok(submit(server, boards["k2"])))
    # k = 2 predicts 2, 4, 6, 8, 10 against labels 2, 4, 6, 8, 11: four of five
    assert done["status"] == "done" and done["score"] == pytest.approx(0.8)
    assert done["dataset"] == "lb" and done["version"] == 1 and done["checkpoint"] == "w" and done["inputs"] == 5
    assert done["infer_s"] > 0 and done["eval_s"] > 0 and done["counts"] is True
    assert "predicted 5 inputs" in "\n".join(done["infer_log"])
    assert done["eval_log"][0] == "scoring 5"  # the organiser (here the admin) sees the eval script's output
    worse = json.loads(ok(submit(server, boards["k3"], "--dataset", "lb:1")))
    assert worse["score"] == 0.0
    board = json.loads(ok(cli(server, "leaderboard", "lb", "--json")))
    assert [(e["rank"], e["team"], e["score"], e["submissions"]) for e in board["entries"]] == [(1, "local", 0.8, 2)]
    assert board["entries"][0]["session_id"] == boards["k2"]
    table = ok(cli(server, "leaderboard", "lb"))
    assert "local" in table and "0.8000" in table
    listed = json.loads(ok(cli(server, "submissions", "--dataset", "lb", "--json")))
    assert [s["id"] for s in listed] == [worse["id"], done["id"]]
    with server.http() as http:
        boards_list = {b["dataset"]: b for b in http.get("/api/v1/leaderboards").json()}
        assert boards_list["lb"]["leader"] == "local" and boards_list["lb"]["best"] == 0.8
        assert "lb-noeval" not in boards_list
        page = http.get("/leaderboards")
        assert page.status_code == 200 and 'data-dataset="lb"' in page.text and "0.8000" in page.text


def test_the_submit_process_sees_only_the_inputs_and_no_token(server: LiveServer, boards: dict[str, int],
                                                               tmp_path: Path) -> None:
    snoop = tmp_path / "seen.json"
    sid = run(server, tmp_path / "snoop", "BEHAVIOUR=snoop", f"SNOOP_FILE={snoop}")
    assert not snoop.exists()  # training never called infer
    json.loads(ok(submit(server, sid)))
    seen = json.loads(snoop.read_text())
    assert seen["inputs"] == ["test_data"] and seen["env"] == []
    assert not seen["home"].startswith(str(server.home / "dataset-eval"))


@pytest.mark.parametrize(("behaviour", "message"), [
    ("raise", "infer raised ValueError: cannot predict 1"),
    ("short", "infer returned 3 predictions for 5 inputs"),
])
def test_infer_that_raises_or_miscounts_fails_the_submission(server: LiveServer, boards: dict[str, int],
                                                            tmp_path: Path, behaviour: str, message: str) -> None:
    sid = run(server, tmp_path / behaviour, f"BEHAVIOUR={behaviour}")
    done = submit(server, sid, "--dataset", "lb-infer")
    line = error_line(done)
    assert line.startswith("error: submission ") and " failed: " in line and message in line
    failed = json.loads(ok(cli(server, "submissions", "--json")))[0]
    assert failed["status"] == "failed" and failed["counts"] is True and message in failed["error"]


def test_infer_past_its_time_limit_is_stopped(server: LiveServer, boards: dict[str, int], tmp_path: Path) -> None:
    sid = run(server, tmp_path / "sleep", "BEHAVIOUR=sleep")
    line = error_line(submit(server, sid, "--dataset", "lb-memory"))
    assert line.endswith("infer ran past 8 s (HANEUL_SUBMIT_INFER_TIMEOUT_S) and was stopped"), line


def test_a_session_without_infer_fails_with_the_deploy_message(server: LiveServer, boards: dict[str, int],
                                                               tmp_path: Path) -> None:
    sid = run(server, tmp_path / "noinfer", "BEHAVIOUR=noinfer")
    line = error_line(submit(server, sid, "--dataset", "lb-infer"))
    assert f"session {sid}'s code never called haneul.bind(infer=...); bind load and infer before training" in line


@pytest.mark.parametrize(("dataset", "message"), [
    ("lb-crash", "eval.py failed (exit code 1): KeyError: 'no column named label'"),
    ("lb-hang", "eval.py ran past 3 s"),
    ("lb-noscore", 'eval.py printed no score: its last line must be JSON like {"acc": 0.8} or a number'),
    ("lb-memory", "eval.py failed (exit code 1): MemoryError"),
])
def test_broken_eval_scripts_fail_in_one_line_and_the_server_keeps_serving(
        server: LiveServer, boards: dict[str, int], dataset: str, message: str) -> None:
    line = error_line(submit(server, boards["k2"], "--dataset", dataset))
    assert line.endswith(message), line
    with server.http() as http:
        assert http.get("/api/v1/health").status_code == 200
        board = http.get(f"/api/v1/datasets/{dataset}/leaderboard").json()
        assert board["entries"] == []


def test_bad_submissions_are_refused_before_anything_runs(server: LiveServer, boards: dict[str, int],
                                                         tmp_path: Path) -> None:
    no_eval = error_line(submit(server, boards["k2"], "--dataset", "lb-noeval"))
    assert "dataset lb-noeval:1 has no eval script, so it takes no submissions" in no_eval
    with server.http() as http:
        res = http.post("/api/v1/submissions", json={"session": boards["k2"], "dataset": "lb-noeval"})
        assert res.status_code == 400
        assert http.post("/api/v1/submissions", json={"session": 999999}).status_code == 404
        missing = http.post("/api/v1/submissions", json={"session": boards["k2"], "checkpoint": "nope"})
        assert missing.status_code == 404 and "has no checkpoint 'nope'" in missing.json()["error"]["message"]
        assert http.post("/api/v1/submissions", json={"session": boards["k2"], "dataset": "nope"}).status_code == 404
        assert http.get("/api/v1/datasets/lb-noeval/leaderboard").status_code == 400
        assert http.get("/api/v1/submissions/999999").status_code == 404
        before = len(http.get("/api/v1/submissions").json())
    plain = run(server, tmp_path / "plain", dataset=None)
    assert f"session {plain} ran with no dataset" in error_line(submit(server, plain))
    with server.http() as http:
        assert len(http.get("/api/v1/submissions").json()) == before


def test_past_the_daily_limit_is_429_saying_when_it_refills(server: LiveServer, boards: dict[str, int]) -> None:
    for _ in range(4):  # HANEUL_SUBMIT_DAILY_LIMIT=4 on this server
        assert json.loads(ok(submit(server, boards["k2"], "--dataset", "lb-quota", "--no-wait")))["status"] in (
            "queued", "running", "done")
    line = error_line(submit(server, boards["k2"], "--dataset", "lb-quota"))
    assert "team local has used its 4 submissions to lb-quota in the last 24 hours; the next one frees up at" in line
    with server.http() as http:
        res = http.post("/api/v1/submissions", json={"session": boards["k2"], "dataset": "lb-quota"})
        assert res.status_code == 429 and res.json()["error"]["code"] == "too_many_requests"
        # another competition has its own count
        assert http.post("/api/v1/submissions", json={"session": boards["k2"], "dataset": "lb"}).status_code == 201
        wait_for(lambda: all(s["status"] not in ("queued", "running") for s in http.get("/api/v1/submissions").json()),
                 timeout=60)


def test_a_server_stopping_mid_evaluation_ends_it_as_an_error_that_does_not_count(tmp_path: Path) -> None:
    live = start_server(tmp_path / "home")
    try:
        push(live, "lb", competition(tmp_path / "lb"))
        sid = run(live, tmp_path / "sleep", "BEHAVIOUR=sleep")
        queued = json.loads(ok(submit(live, sid, "--no-wait")))
        with live.http() as http:
            wait_for(lambda: http.get(f"/api/v1/submissions/{queued['id']}").json()["status"] == "running")
        live.stop()
        live = start_server(tmp_path / "home", live.port)
        with live.http() as http:
            after = http.get(f"/api/v1/submissions/{queued['id']}").json()
        assert after["status"] == "error" and after["counts"] is False
        assert after["error"] == "the server stopped during the evaluation; submit again (it did not count)"
    finally:
        live.stop()


# -------------------------------------------------------------------------------------- two teams


def _user(http: httpx.Client, name: str, team: str, role: str = "member") -> str:
    res = http.post("/api/v1/users", json={"name": name, "team": team, "role": role, "password": f"{name}-password"})
    assert res.status_code == 201, res.text
    return str(http.post(f"/api/v1/users/{name}/tokens", json={"name": "test"}).json()["token"])


@pytest.fixture(scope="module")
def two_teams(server: LiveServer, boards: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Users a (team red) and b (team blue), each with a session on lb and one submission."""
    with server.http() as http:
        for team in ("red", "blue"):
            assert http.post("/api/v1/teams", json={"name": team}).status_code == 201
        tokens = {"a": _user(http, "a", "red"), "b": _user(http, "b", "blue")}
        viewer = _user(http, "v", "red", "viewer")
    root = tmp_path_factory.mktemp("teams")
    sessions = {who: run(server, root / who, f"K={2 if who == 'a' else 3}", token=tokens[who]) for who in tokens}
    subs = {who: json.loads(ok(submit(server, sessions[who], token=tokens[who]))) for who in tokens}
    return {"tokens": tokens, "sessions": sessions, "subs": subs, "viewer": viewer}


def test_another_teams_session_and_submission_are_404(server: LiveServer, two_teams: dict[str, Any]) -> None:
    a_sid, a_sub = two_teams["sessions"]["a"], two_teams["subs"]["a"]["id"]
    b = {"Authorization": f"Bearer {two_teams['tokens']['b']}"}
    with httpx.Client(base_url=server.url, headers=b) as http:
        res = http.post("/api/v1/submissions", json={"session": a_sid})
        assert res.status_code == 404 and res.json()["error"]["message"] == f"session {a_sid} not found"
        assert http.get(f"/api/v1/submissions/{a_sub}").status_code == 404
        assert all(s["team"] == "blue" for s in http.get("/api/v1/submissions").json())
        history = http.get("/api/v1/datasets/lb/submissions").json()["items"]
        others = [s for s in history if not s["mine"]]
        assert others and all(set(s) == {"team", "score", "status", "created_at", "ended_at", "mine"} for s in others)
        board = http.get("/api/v1/datasets/lb/leaderboard").json()["entries"]
        red = next(e for e in board if e["team"] == "red")
        assert "session_id" not in red and "submission_id" not in red
        assert "eval_log" not in http.get(f"/api/v1/submissions/{two_teams['subs']['b']['id']}").json()
    line = error_line(cli(server, "submit", str(a_sid), token=two_teams["tokens"]["b"]))
    assert line.endswith(f"session {a_sid} not found")
    # a viewer of red reads red's submissions but may not submit
    v = {"Authorization": f"Bearer {two_teams['viewer']}"}
    with httpx.Client(base_url=server.url, headers=v) as http:
        assert http.get(f"/api/v1/submissions/{a_sub}").json()["score"] == 0.8
        assert http.post("/api/v1/submissions", json={"session": a_sid}).status_code == 403


@pytest.mark.browser
def test_the_dataset_page_shows_every_teams_best_but_only_your_own_details(
        server: LiveServer, two_teams: dict[str, Any], page) -> None:  # type: ignore[no-untyped-def]
    a_sid, b_sid = two_teams["sessions"]["a"], two_teams["sessions"]["b"]
    page.goto(f"{server.url}/datasets/lb?token={two_teams['tokens']['b']}")
    page.wait_for_selector("#leaderboard tr[data-team=red]")
    page.wait_for_selector("#leaderboard tr[data-team=blue]")
    rows = page.locator("#leaderboard tbody tr")
    shown = {rows.nth(i).get_attribute("data-team"): rows.nth(i).locator("td.score").text_content()
             for i in range(rows.count())}
    assert shown["red"] == "0.8000" and shown["blue"] == "0.0000"  # red (k = 2) 4 of 5, blue (k = 3) none
    assert page.locator("#leaderboard tr.mine").get_attribute("data-team") == "blue"
    page.wait_for_selector(f"#my-submissions a[href='/sessions/{b_sid}']")
    html = page.content()
    assert f"/sessions/{a_sid}" not in html and "red" not in page.locator("#my-submissions").text_content()
    page.wait_for_selector("#leaderboard-chart .main-svg")
    assert page.locator("#leaderboard-chart .legendtext").count() >= 2


# -------------------------------------------------------------------------------------- the worked example


NSMC_ROWS = [
    ("정말 재미있고 감동적인 영화", 1), ("최고의 영화 강력 추천", 1), ("배우들 연기가 정말 좋았다", 1),
    ("재미있다 또 보고 싶다", 1), ("감동 그 자체 최고", 1), ("너무 좋았어요 추천합니다", 1),
    ("지루하고 재미없다", 0), ("최악의 영화 시간 낭비", 0), ("연기가 어색하고 별로", 0),
    ("돈 아깝다 보지 마세요", 0), ("스토리가 엉망이고 지루함", 0), ("재미없고 최악", 0),
]


def write_nsmc(path: Path, copies: int = 5) -> Path:
    """A tiny NSMC-format file: the header line, then id, document and label, tab-separated."""
    lines = ["id\tdocument\tlabel"]
    for i in range(copies):
        lines += [f"{i * 100 + n}\t{doc}{'!' * (i % 3)}\t{label}" for n, (doc, label) in enumerate(NSMC_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_prepare_writes_train_and_hidden_test_parts(tmp_path: Path) -> None:
    source = write_nsmc(tmp_path / "ratings.txt")
    subprocess.run([PY, str(EXAMPLE / "prepare.py"), str(source), str(tmp_path / "out")], check=True,
                   capture_output=True)
    train = (tmp_path / "out" / "train" / "train.tsv").read_text(encoding="utf-8").splitlines()
    data = (tmp_path / "out" / "test" / "test_data").read_text(encoding="utf-8").splitlines()
    labels = (tmp_path / "out" / "test" / "test_label").read_text().split()
    assert train[0] == "id\tdocument\tlabel" and len(train) - 1 == 48 and len(data) == len(labels) == 12
    assert all(isinstance(json.loads(line), str) for line in data) and set(labels) <= {"0", "1"}
    # every row lands in exactly one part
    docs = {line.split("\t")[1] for line in train[1:]} | {json.loads(line) for line in data}
    assert len(docs) == len({f"{doc}{'!' * (i % 3)}" for i in range(5) for doc, _ in NSMC_ROWS})
    scored = subprocess.run([PY, str(EXAMPLE / "eval.py"), "--prediction", str(tmp_path / "out" / "test" /
                                                                                  "test_label"),
                             "--label", str(tmp_path / "out" / "test" / "test_label")],
                            capture_output=True, text=True, check=True)
    assert json.loads(scored.stdout.strip().splitlines()[-1]) == {"acc": 1.0}


@pytest.mark.slow
def test_two_teams_walk_through_the_nsmc_competition(live_server: LiveServer, tmp_path: Path) -> None:
    live = live_server
    # the admin makes two teams and a user in each
    ok(cli(live, "team", "add", "red"))
    ok(cli(live, "team", "add", "blue"))
    tokens = {who: ok(cli(live, "user", "add", who, "--team", team, "--token")).strip()
              for who, team in (("alice", "red"), ("bob", "blue"))}
    # the organiser (the admin) prepares the data and pushes the public competition
    data = tmp_path / "data"
    ok(subprocess.run([PY, str(EXAMPLE / "prepare.py"), str(write_nsmc(tmp_path / "nsmc.txt", 8)), str(data)],
                      capture_output=True, text=True))
    ok(cli(live, "dataset", "push", "nsmc-comp", str(data / "train"), "--test", str(data / "test"),
           "--eval", str(EXAMPLE / "eval.py"), "--metric", "acc", "--public"))
    # each user trains twice and submits both
    scores: dict[str, list[float]] = {}
    sessions: dict[str, list[int]] = {}
    for who, ngrams in (("alice", ("1", "3")), ("bob", ("2", "1"))):
        for n in ngrams:
            out = ok(cli(live, "run", "-f", "--dataset", "nsmc-comp", "--", "python", "train.py", "--max-ngram", n,
                         cwd=EXAMPLE, token=tokens[who]))
            assert "dev acc" in out
            sid = int(json.loads(ok(cli(live, "ps", "--json", token=tokens[who])))["items"][0]["id"])
            sessions.setdefault(who, []).append(sid)
            sub = json.loads(ok(cli(live, "submit", str(sid), "--json", token=tokens[who])))
            assert sub["status"] == "done" and sub["team"] == ("red" if who == "alice" else "blue")
            scores.setdefault(who, []).append(sub["score"])
    board = json.loads(ok(cli(live, "leaderboard", "nsmc-comp", "--json", token=tokens["bob"])))
    expected = sorted([("red", max(scores["alice"])), ("blue", max(scores["bob"]))], key=lambda t: -t[1])
    assert [(e["team"], e["score"]) for e in board["entries"]] == expected or \
        expected[0][1] == expected[1][1]  # a tie ranks the earlier submission first
    assert [e["submissions"] for e in board["entries"]] == [2, 2]
    assert "nsmc-comp" in ok(cli(live, "submissions", "--dataset", "nsmc-comp", token=tokens["alice"]))
    # bob sees none of alice's sessions, logs, checkpoints or submissions
    a_sid = sessions["alice"][0]
    for args in (("logs", str(a_sid)), ("checkpoints", str(a_sid)), ("submit", str(a_sid))):
        assert error_line(cli(live, *args, token=tokens["bob"])).endswith(f"session {a_sid} not found"), args
    bobs = json.loads(ok(cli(live, "submissions", "--json", token=tokens["bob"])))
    assert {s["team"] for s in bobs} == {"blue"} and len(bobs) == 2
    alices = json.loads(ok(cli(live, "submissions", "--json", token=tokens["alice"])))
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {tokens['bob']}"}) as http:
        assert http.get(f"/api/v1/sessions/{a_sid}").status_code == 404
        assert http.get(f"/api/v1/submissions/{alices[0]['id']}").status_code == 404
