from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from haneul.cli.main import app, main
from haneul.platform.testing import as_admin


@pytest.fixture()
def toy_dir(tmp_path):
    """20 users in two friend circles; circle A likes items 0-9, circle B items 10-19."""
    rng = np.random.default_rng(0)
    rows, links = [], []
    for u in range(20):
        lo = 0 if u < 10 else 10
        for it in rng.choice(np.arange(lo, lo + 10), 6, replace=False):
            rows.append(f"u{u}\ti{it}\n")
        if u % 10:
            links.append(f"u{u}\tu{u - 1 if u % 10 > 1 else lo // 1}\n")
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "toy.inter").write_text("user_id:token\titem_id:token\n" + "".join(rows))
    (folder / "toy.net").write_text("source_id:token\ttarget_id:token\n" + "".join(links))
    return folder


def run(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("model", ["hgp", "pop"])
def test_train_eval_recommend_round_trip(toy_dir, model):
    out = run("rec", "train", "--data", str(toy_dir), "--model", model, "--epochs", "4", "--eval-every", "2",
              "--dim", "8", "--batch-size", "64", "--name", "toy", "--json")
    trained = json.loads(out.strip().splitlines()[-1])
    assert trained["model"] == model and 0.0 <= trained["auc"] <= 1.0
    if model == "hgp":
        assert trained["groups"] >= 2 and trained["group_edges"] <= 20
        assert trained["users_without_friends"] == 0 and 0.0 <= trained["social_edges_inside_groups"] <= 1.0
        assert 0.0 <= trained["fusion_social"] <= 1.0 and 1 <= trained["best_epoch"] <= trained["epochs_run"] <= 4
    evaluated = json.loads(run("rec", "eval", "toy", "--data", str(toy_dir), "--json").strip())
    assert evaluated["recall@10"] == pytest.approx(trained["recall@10"])
    rec = json.loads(run("rec", "recommend", "u3", "-k", "5", "--model", "toy", "--json"))
    assert rec["source"] == "model" and len(rec["items"]) == 5 and rec["reason"] == ""
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rec["items"])
    # every item u3 already has (held-out ones included) is left out
    seen = {line.split("\t")[1].strip() for line in (toy_dir / "toy.inter").read_text().splitlines()[1:]
            if line.startswith("u3\t")}
    assert len(seen) == 6 and not seen & {r["item"] for r in rec["items"]}
    table = run("rec", "recommend", "u3", "--model", "toy")
    assert "top 10 for user u3" in table


def test_cold_start_uses_the_friends_groups(toy_dir):
    from haneul.rec.bundle import load_model, recommend

    run("rec", "train", "--data", str(toy_dir), "--model", "pop", "--name", "cold", "--json")
    rec = recommend("stranger", k=5, model="cold", friends=["u12", "nobody"])
    assert rec.source == "cold-start-groups" and "1 known friend" in rec.reason
    assert all(int(i[1:]) >= 10 for i in rec.items)  # circle B's items only
    alone = recommend("stranger", k=3, model="cold")
    assert alone.source == "cold-start-popular" and "no friends given" in alone.reason
    unknown = recommend("stranger", k=3, model="cold", friends=["ghost", "nobody"])
    assert unknown.source == "cold-start-popular" and "none of the 2 friend(s) is known" in unknown.reason
    # the CLI says so on stderr, and the JSON carries the reason
    result = CliRunner().invoke(app, ["rec", "recommend", "stranger", "--friends", "ghost", "--model", "cold", "--json"])
    assert result.exit_code == 0 and "warning: unknown user and none of the 1 friend(s) is known" in result.stderr
    assert json.loads(result.stdout)["reason"].startswith("unknown user")
    model = load_model("cold")
    assert model.recommend("stranger", 3).items == model.item_ids[np.argsort(-model.popularity, kind="mergesort")[:3]].tolist()


def test_user_mistakes_are_one_line_errors(toy_dir, tmp_path, capsys):
    for argv, needle in [
        (["rec", "recommend", "u1", "--model", "missing"], "no trained model 'missing'"),
        (["rec", "train", "--data", str(tmp_path / "nowhere")], "does not exist"),
        (["rec", "train", "--data", str(toy_dir), "--model", "gcn"], "choose one of hgp, lightgcn, bpr, pop, social"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and needle in err and "\n" not in err


def test_rest_route_serves_recommendations(toy_dir):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    from haneul.errors import HaneulError
    from haneul.rec.api import create_router
    from haneul.rec.bundle import models_dir

    run("rec", "train", "--data", str(toy_dir), "--model", "bpr", "--epochs", "2", "--dim", "8", "--name", "web", "--json")
    server = FastAPI()
    server.include_router(create_router(models_dir()))

    @server.exception_handler(HaneulError)
    def _handle(request, exc: HaneulError):
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    client = TestClient(server)
    body = client.get("/api/v1/rec/web/recommend/u0", params={"k": 3}).json()
    assert body["model"] == "web" and body["source"] == "model" and [r["rank"] for r in body["items"]] == [1, 2, 3]
    cold = client.get("/api/v1/rec/web/recommend/newbie", params={"friends": "u1,u2"}).json()
    assert cold["source"] == "cold-start-groups"
    missing = client.get("/api/v1/rec/nope/recommend/u0")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_router_and_cli_import_without_torch():
    code = (
        "import sys; from haneul.rec.api import create_router; create_router('.'); import haneul.cli.rec; "
        "import haneul.rec; from haneul.rec import RecModel; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_command_and_option_is_documented():
    import typer

    from haneul.cli.rec import app as rec_app

    group = typer.main.get_command(rec_app)
    assert set(group.commands) == {"train", "eval", "recommend"}
    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name}"


def test_server_serves_models_of_its_own_home(toy_dir, tmp_path):
    """create_app(Settings(home=X)) answers from X's models, not from the environment's HANEUL_HOME."""
    from fastapi.testclient import TestClient

    from haneul.platform.server import create_app
    from haneul.rec.bundle import models_dir
    from haneul.settings import Settings

    home = tmp_path / "server-home"
    run("rec", "train", "--data", str(toy_dir), "--model", "pop", "--epochs", "1", "--name", "mine",
        "--out", str(models_dir(home) / "mine"), "--json")
    run("rec", "train", "--data", str(toy_dir), "--model", "pop", "--epochs", "1", "--name", "envs", "--json")
    assert (models_dir() / "envs" / "meta.json").exists()
    with TestClient(create_app(Settings(home=home, capacity_cpus=1), server_url="http://testserver")) as client:
        as_admin(client)
        mine = client.get("/api/v1/rec/mine/recommend/u0", params={"k": 2})
        assert mine.status_code == 200 and len(mine.json()["items"]) == 2
        assert client.get("/api/v1/rec/envs/recommend/u0").status_code == 404


def test_rec_study_files_tune_options_that_rec_train_has():
    from pathlib import Path

    import typer

    from haneul.cli.rec import app as rec_app
    from haneul.tune.spec import StudySpec

    options = {opt.lstrip("-") for p in typer.main.get_command(rec_app).commands["train"].params for opt in p.opts}
    examples = Path(__file__).resolve().parents[2] / "examples" / "tune"
    hgp, lightgcn = (StudySpec.load(examples / f"{name}.yaml") for name in ("hgp_lastfm_groups", "lightgcn_lastfm"))
    assert set(hgp.space) <= options and set(lightgcn.space) <= options
    # the pair compares models, not tuning effort: same budget, sampler, pruner and objective
    assert hgp.budget == lightgcn.budget and hgp.algorithm == lightgcn.algorithm and hgp.objective == lightgcn.objective
