"""The example studies: their files validate, `haneul rec train` is stop-and-go, and tiny HGP studies
(TPE + ASHA, and PBT with forks) run to the end on a live server."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from haneul.errors import InvalidInput
from haneul.platform.testing import LiveServer, wait_for
from haneul.rec.data import build_data
from haneul.rec.train import CHECKPOINT_NAME, Checkpointing, TrainConfig, TrainingPaused, fit
from haneul.tune.spec import StudySpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tune"


def planted(circles: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``circles`` friend circles of 10 users; each circle's users take 6 of the circle's own 8 items."""
    rng = np.random.default_rng(seed)
    users, items, a, b = [], [], [], []
    for u in range(circles * 10):
        circle = u // 10
        for it in rng.choice(np.arange(circle * 8, circle * 8 + 8), 6, replace=False):
            users.append(f"u{u}")
            items.append(f"i{it}")
        for v in range(circle * 10, u):
            a.append(f"u{u}")
            b.append(f"u{v}")
    return np.array(users), np.array(items), np.array(a), np.array(b)


def planted_data(circles: int = 3):
    users, items, a, b = planted(circles)
    return build_data(users, items, social=(a, b), name="planted")


class MemoryCheckpoints:
    """Checkpoints kept in memory, through torch.save / torch.load as the platform stores them."""

    def __init__(self, pause_after: int | None = None) -> None:
        self.saved: dict[str, bytes] = {}
        self.saves: list[int] = []
        self.pause_after = pause_after
        self.epochs_seen = 0

    def hooks(self, save_every: int = 0) -> Checkpointing:
        return Checkpointing(load=self.load, save=self.save, paused=self.paused, save_every=save_every)

    def save(self, name: str, state: Any) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        self.saved[name] = buf.getvalue()
        self.saves.append(state["epoch"])

    def load(self) -> Any:
        import torch

        if not self.saved:
            return None
        return torch.load(io.BytesIO(self.saved[CHECKPOINT_NAME]), weights_only=False)

    def paused(self) -> bool:
        self.epochs_seen += 1
        return self.pause_after is not None and self.epochs_seen == self.pause_after


# ---------------------------------------------------------------------------------------- study files
def test_the_example_study_files_validate_and_name_what_the_code_reports() -> None:
    hgp = StudySpec.load(EXAMPLES / "hgp_lastfm.yaml")
    assert (hgp.algorithm.sampler, hgp.algorithm.pruner) == ("tpe", "asha")
    assert hgp.objective.metric == "valid_recall_10" and hgp.objective.direction == "maximize"
    assert set(hgp.space) == {"lr", "dim", "alpha", "reg", "k", "batch_size"} and hgp.budget.trials == 40
    assert type(hgp.pruner()).__name__ == "SuccessiveHalvingPruner" and type(hgp.sampler()).__name__ == "TPESampler"
    command, _ = hgp.render({"lr": 0.01, "dim": 32, "alpha": 0.1, "reg": 1e-4, "k": 2, "batch_size": 2048})
    assert command[:3] == ["haneul", "rec", "train"] and "--lr=0.01" in command and "--eval-every" in command
    assert command[command.index("--batch-size") + 1] == "2048" and "--batch_size=2048" not in command
    # the study's folder is the data folder, so the snapshot holds lastfm/ (when the data is there)
    assert Path(hgp.cwd or "").name == "social"

    pbt = StudySpec.load(EXAMPLES / "hgp_lastfm_pbt.yaml")
    assert pbt.algorithm.sampler == "pbt" and pbt.pbt is not None and pbt.pbt.population == 4
    save_every = int(pbt.command[pbt.command.index("--save-every") + 1])
    assert pbt.pbt.interval % save_every == 0  # a fork always finds a checkpoint at the boundary
    assert "dim" not in pbt.space and "k" not in pbt.space  # exploring them would change the model's shape

    nsmc = StudySpec.load(EXAMPLES / "nsmc.yaml")
    assert nsmc.objective.metric == "dev_acc" and nsmc.objective.direction == "maximize"
    assert Path(nsmc.cwd or "").name == "nsmc_competition" and (Path(nsmc.cwd or "") / "train.py").is_file()
    command, _ = nsmc.render({"max_ngram": 3, "c": 2.0})
    assert command == ["python", "train.py", "--data", "data/train", "--max-ngram", "3", "--c", "2.0"]

    # the HGP-vs-LightGCN pair: the same budget, so they compare the models and not the tuning effort
    lightgcn, groups = StudySpec.load(EXAMPLES / "lightgcn_lastfm.yaml"), StudySpec.load(EXAMPLES / "hgp_lastfm_groups.yaml")
    assert lightgcn.budget == groups.budget and lightgcn.algorithm == groups.algorithm
    assert lightgcn.objective == groups.objective == hgp.objective
    assert "--model" in lightgcn.command and lightgcn.command[lightgcn.command.index("--model") + 1] == "lightgcn"
    assert {"resolution", "alpha", "k"} <= set(groups.space)


# ---------------------------------------------------------------------------------------- stop-and-go
def small_config(**over: Any) -> TrainConfig:
    return TrainConfig(**{"model": "hgp", "epochs": 6, "batch_size": 64, "lr": 0.05, "dim": 8, "eval_every": 2,
                          "threads": 1, **over})


def test_a_paused_run_resumes_to_exactly_the_metrics_of_an_uninterrupted_one() -> None:
    data = planted_data()
    whole = fit(data, small_config(), report=False)

    store = MemoryCheckpoints(pause_after=3)
    with pytest.raises(TrainingPaused) as paused:
        fit(data, small_config(), report=False, checkpointing=store.hooks())
    assert paused.value.epoch == 3 and store.saves == [3]
    resumed = fit(data, small_config(), report=False, checkpointing=store.hooks())

    assert resumed.metrics == whole.metrics
    assert resumed.best_epoch == whole.best_epoch
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    np.testing.assert_array_equal(resumed.model.user_emb, whole.model.user_emb)


def test_save_every_saves_before_the_last_epoch_and_a_finished_run_is_not_resaved() -> None:
    store = MemoryCheckpoints()
    fit(planted_data(), small_config(), report=False, checkpointing=store.hooks(save_every=2))
    assert store.saves == [2, 4]  # not 6: nothing goes on from the last epoch


def test_a_fork_goes_on_from_its_parent_with_its_own_lr_and_refuses_another_shape() -> None:
    data = planted_data()
    parent = MemoryCheckpoints(pause_after=2)
    with pytest.raises(TrainingPaused):
        fit(data, small_config(), report=False, checkpointing=parent.hooks())

    seen: list[float] = []

    def progress(epoch: int, row: dict[str, float]) -> None:
        seen.append(epoch)

    child = fit(data, small_config(lr=0.01), report=False, progress=progress, checkpointing=parent.hooks())
    assert seen == [3, 4, 5, 6] and [r["epoch"] for r in child.history] == [1, 2, 3, 4, 5, 6]
    whole = fit(data, small_config(), report=False)
    losses = [r["loss"] for r in child.history]
    assert losses[:2] == [r["loss"] for r in whole.history][:2]  # the parent's epochs, carried over
    assert all(a != b for a, b in zip(losses[2:], [r["loss"] for r in whole.history][2:], strict=True))  # new lr

    with pytest.raises(InvalidInput, match=r"keep model, dim and features .*dim=8"):
        fit(data, small_config(dim=16), report=False, checkpointing=parent.hooks())
    with pytest.raises(InvalidInput, match="not a haneul.rec.train/1 training state"):
        fit(data, small_config(), report=False, checkpointing=Checkpointing(
            load=lambda: {"step": 3}, save=lambda name, state: None, paused=lambda: False))


# ---------------------------------------------------------------------------------------- live studies
def finished(http: Any, name: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = http.get(f"/api/v1/tune/studies/{name}").json()
        return s if s["status"] != "running" else None

    return wait_for(done, timeout=timeout, interval=0.5)


def write_planted(folder: Path, circles: int) -> Path:
    users, items, a, b = planted(circles)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inter.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items, strict=True)))
    (folder / "social.csv").write_text("a,b\n" + "".join(f"{x},{y}\n" for x, y in zip(a, b, strict=True)))
    return folder


def rec_command(data_args: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "haneul", "rec", "train", *data_args, "--model", "hgp", "--threads", "1",
            "--out", "model", *extra]


@pytest.mark.slow
def test_a_tiny_hgp_study_runs_to_the_end_with_asha(tune_server: LiveServer, shared_data: Path | None,
                                                    tmp_path: Path) -> None:
    lastfm = shared_data / "social" / "lastfm" if shared_data is not None else None
    if lastfm is not None and lastfm.is_dir():
        data_args = ["--data", str(lastfm)]
    else:  # the study is the same on the planted circles; the real data is checked in tests/rec
        folder = write_planted(tmp_path / "planted", circles=20)
        data_args = ["--data", str(folder / "inter.csv"), "--social", str(folder / "social.csv"),
                     "--batch-size", "64"]
    raw = StudySpec.load(EXAMPLES / "hgp_lastfm.yaml").to_dict()
    raw.update(name="hgp-tiny", cwd=str(tmp_path),
               command=rec_command(data_args, "--epochs", "3", "--eval-every", "1"))
    raw["space"]["dim"] = {"type": "int", "low": 8, "high": 16, "step": 8}
    del raw["space"]["batch_size"]  # the command above sets the tiny data's own
    raw["budget"] |= {"trials": 4, "concurrent": 2}
    raw["algorithm"]["pruner_args"] = {"min_resource": 1, "reduction_factor": 2}
    with tune_server.http() as http:
        res = http.post("/api/v1/tune/studies", json={"spec": raw})
        assert res.status_code == 201, res.text
        study = finished(http, "hgp-tiny")
        trials = http.get("/api/v1/tune/studies/hgp-tiny/trials").json()
        assert study["status"] == "done", (study, trials)
        assert len(trials) == 4 and {t["state"] for t in trials} <= {"complete", "pruned"}, trials
        complete = [t for t in trials if t["state"] == "complete"]
        assert complete and all(t["last_step"] == 3 for t in complete)
        for t in trials:  # a pruned trial stopped at a rung, before the last epoch
            assert t["state"] == "complete" or (t["last_step"] or 0) < 3
        best = http.get("/api/v1/tune/studies/hgp-tiny/best").json()
        assert 0.0 < best["value"] <= 1.0
        # use: best, so the value is the best validation Recall@10 the trial reported
        curves = {c["number"]: c for c in http.get("/api/v1/tune/studies/hgp-tiny/intermediate").json()}
        assert best["value"] == pytest.approx(max(curves[best["number"]]["values"]))


@pytest.mark.slow
def test_pbt_forks_rec_training_from_a_better_members_checkpoint(tune_server: LiveServer, tmp_path: Path) -> None:
    folder = write_planted(tmp_path / "planted", circles=60)
    raw = StudySpec.load(EXAMPLES / "hgp_lastfm_pbt.yaml").to_dict()
    raw.update(name="pbt-tiny", cwd=str(tmp_path), command=rec_command(
        ["--data", str(folder / "inter.csv"), "--social", str(folder / "social.csv"), "--batch-size", "64"],
        "--epochs", "10", "--eval-every", "1", "--save-every", "2", "--dim", "8"))
    raw["pbt"] |= {"population": 2, "interval": 2, "quantile": 0.5}
    raw["budget"] |= {"trials": 4, "concurrent": 2}
    with tune_server.http() as http:
        res = http.post("/api/v1/tune/studies", json={"spec": raw})
        assert res.status_code == 201, res.text
        study = finished(http, "pbt-tiny")
        trials = http.get("/api/v1/tune/studies/pbt-tiny/trials").json()
        assert study["status"] == "done", (study, trials)
        by_number = {t["number"]: t for t in trials}
        children = [t for t in trials if t["parent_trial"] is not None]
        assert children, trials
        for child in children:
            parent = by_number[child["parent_trial"]]
            session = http.get(f"/api/v1/sessions/{child['session_id']}").json()
            assert session["parent_id"] == parent["session_id"]
            assert session["parent_checkpoint"] == CHECKPOINT_NAME
            # the fork went on from its parent's epoch: its first reported step is past the first interval
            curve = next(c for c in http.get("/api/v1/tune/studies/pbt-tiny/intermediate").json()
                         if c["number"] == child["number"])
            assert curve["steps"] and curve["steps"][0] > 2, curve
        assert any(t["state"] == "replaced" for t in trials)


@pytest.mark.slow
def test_rec_train_paused_in_a_session_resumes_to_the_uninterrupted_metrics(tune_server: LiveServer,
                                                                            tmp_path: Path) -> None:
    from haneul.platform.client import Client

    folder = write_planted(tmp_path / "planted", circles=60)
    command = rec_command(["--data", str(folder / "inter.csv"), "--social", str(folder / "social.csv"),
                           "--batch-size", "64"], "--epochs", "8", "--eval-every", "1", "--dim", "8")
    client = Client(tune_server.url, token=tune_server.token)
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        reference = client.create_session(command=command, cwd=str(tmp_path / "a"))["id"]
        sid = client.create_session(command=command, cwd=str(tmp_path / "b"))["id"]

        def points(session: int) -> int:
            return next((k["count"] for k in client.metric_keys(session) if k["key"] == "loss"), 0)

        def status(session: int, *wanted: str) -> dict[str, Any] | None:
            s = client.get_session(session)
            return s if s["status"] in wanted else None

        wait_for(lambda: points(sid) >= 2, timeout=120, interval=0.2)
        client.pause_session(sid)
        paused = wait_for(lambda: status(sid, "paused"), timeout=60)
        assert paused["exit_code"] == 0
        at = len(client.metric_history(sid, "loss")["steps"])
        assert 2 <= at < 8 and [c["name"] for c in client.list_checkpoints(sid)] == [CHECKPOINT_NAME]
        client.resume_session(sid)
        assert wait_for(lambda: status(sid, "done"), timeout=120)["runs"] == 2
        wait_for(lambda: status(reference, "done"), timeout=120)
        for key in ("loss", "valid_recall_10", "test_recall_10", "test_ndcg_10", "test_auc"):
            got, ref = client.metric_history(sid, key), client.metric_history(reference, key)
            assert got["steps"] == ref["steps"] and got["values"] == ref["values"], key
    finally:
        client.close()
