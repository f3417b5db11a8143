"""``haneul rec``: train, evaluate and query social recommenders (HGP and baselines)."""

from __future__ import annotations

from pathlib import Path

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, SeedOpt, ThreadsOpt, Typer, out_option

app = Typer(
    help="Social recommendation with HGP (group-user-item graph propagation) and baselines.",
    no_args_is_help=True,
)

DATA_HELP = "Data: a folder (or .inter file) of RecBole atomic files, or a CSV/Parquet user-item edge list."


def _load(data: Path, social: Path | None, groups: Path | None):
    from haneul.rec.data import load_edge_lists, load_recbole

    name = data.name.removesuffix(".gz")
    if data.is_file() and name.endswith((".csv", ".tsv", ".parquet", ".txt")):
        return load_edge_lists(data, social, groups, name=data.stem)
    if social is not None:
        from haneul.errors import InvalidInput

        raise InvalidInput("--social is for CSV/Parquet edge lists; RecBole data reads its links from <name>.net")
    return load_recbole(data, groups=groups)


def _metrics_table(title: str, metrics: dict[str, float]) -> None:
    output.print_table(list(metrics.items()), columns=["metric", "value"], right=["value"], title=title,
                       formats={"value": lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)})


@app.command()
def train(
    data: Path = typer.Option(..., "--data", "-d", help=DATA_HELP),
    model: str = typer.Option("hgp", "--model", help="Model: hgp, lightgcn, bpr, pop or social (HGP on the raw user-user graph)."),
    name: str = typer.Option("default", "--name", help="Save the trained model as NAME under HANEUL_HOME/rec/models."),
    out: Path | None = out_option("Save the model to this folder instead of the named one.", None),
    epochs: int = typer.Option(200, help="Maximum training epochs (one pass over the training interactions each); "
                               "early stopping (--patience) usually ends training sooner."),
    batch_size: int = typer.Option(8192, help="Interactions per optimisation step."),
    lr: float = typer.Option(2e-2, help="Adam learning rate."),
    dim: int = typer.Option(64, help="Embedding size."),
    k: int | None = typer.Option(None, "--k", help="Propagation steps (default 1 for HGP/social with split "
                                 "propagation, 3 for joint propagation and LightGCN layers)."),
    alpha: float = typer.Option(0.1, help="HGP personalised-PageRank teleport probability."),
    loss: str = typer.Option("bpr", help="Loss: bpr (pairwise) or bce (click prediction, the HGP paper's)."),
    reg: float = typer.Option(1e-4, help="L2 weight on the batch's input embeddings."),
    mode: str = typer.Option("full", help="full: propagate the whole graph per step; sampled: only each batch's K-hop sub-graph."),
    split: str = typer.Option("random", help="random (per-user 8:1:1) or leave-last-out (needs timestamps)."),
    community: str = typer.Option("leiden", help="Group construction when the data has no groups: leiden or louvain."),
    resolution: str = typer.Option("1.0", help="Community-detection resolution (higher: more, smaller groups), or "
                                   "'auto': the lowest of 1, 2, 4, 8, 16 whose largest group holds at most 5% of the "
                                   "users with friends."),
    features: int = typer.Option(0, help="Hash .item tokens into this many feature columns for HGP (0: off)."),
    propagation: str = typer.Option("split", help="HGP/social: split (the paper: APPNP on each sub-graph, attention "
                                    "fusion) or joint (one LightGCN-style propagation over users, items and groups)."),
    eval_every: int = typer.Option(1, help="Evaluate on validation every N epochs and keep the best."),
    eval_k: int = typer.Option(10, help="The best epoch and early stopping follow validation Recall@K for this K."),
    patience: int = typer.Option(10, help="Stop after this many validation evaluations without a better "
                                 "Recall@K (0: train all --epochs)."),
    save_every: int = typer.Option(0, help="In a platform session, also save the training state every N epochs "
                                   "(PBT forks it; 0: only when the session is paused)."),
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    social: Path | None = typer.Option(None, help="CSV/Parquet user-user links (with a CSV/Parquet --data)."),
    groups: Path | None = typer.Option(None, help="CSV/Parquet group-user memberships; skips community detection."),
    as_json: JsonOpt = False,
) -> None:
    """Train a model, keep its best validation epoch, report test AUC / F1 / Recall@K / NDCG@K.

    The seed fixes the split, the initialisation and the negative samples. In a platform session
    training is stop-and-go: paused, it saves its state as checkpoint `last` and exits 0; resumed
    (or forked, as PBT does) it goes on from that checkpoint."""
    import warnings

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    import haneul
    from haneul.errors import InvalidInput
    from haneul.rec.bundle import models_dir
    from haneul.rec.train import Checkpointing, TrainConfig, TrainingPaused, fit

    if save_every < 0:
        raise InvalidInput(f"--save-every {save_every} must be 0 (save only when paused) or a number of epochs")
    in_session = haneul.session_id() is not None
    if save_every and not in_session:
        output.note("note: --save-every saves only inside a platform session (haneul run); ignored here")

    config = TrainConfig(
        model=model, epochs=epochs, batch_size=batch_size, lr=lr, dim=dim, k=k, alpha=alpha, loss=loss, reg=reg,
        train_mode=mode, split=split, community=community, resolution=resolution, feature_buckets=features,
        propagation=propagation, eval_every=eval_every, eval_k=eval_k, patience=patience, seed=seed, threads=threads,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = _load(data, social, groups)
    for w in caught:
        output.note(f"warning: {w.message}")
    with output.progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                         TimeElapsedColumn(), disable=as_json, transient=True) as bar:
        task = bar.add_task(f"training {model} on {dataset.name}", total=max(epochs, 1), info="")

        def progress(epoch: int, row: dict[str, float]) -> None:
            info = f"loss {row['loss']:.4f}"
            if config.select_metric in row:
                info += (f"  valid R@{eval_k} {row[config.select_metric]:.4f}  best epoch {int(row['best_epoch'])}")
            bar.update(task, completed=epoch, info=info)

        try:
            result = fit(dataset, config, progress=progress,
                         checkpointing=Checkpointing.session(save_every) if in_session else None)
        except TrainingPaused as paused:
            at = paused.epoch
            output.emit({"model": model, "data": dataset.name, "paused_after_epoch": at}, as_json=as_json,
                        show=lambda: output.say(f"paused after epoch {at} of {epochs}; the checkpoint 'last' "
                                                "holds the state and `haneul resume` goes on from it"))
            return
    target = out if out is not None else models_dir() / name
    result.model.save(target)
    summary = {"model": model, "data": dataset.name, "saved": str(target), "seconds": round(result.seconds, 2),
               **result.metrics}
    if result.f1_trivial:
        output.note("note: test F1 is no better than calling every pair positive (2/3); read AUC instead")
    if result.group_stats is not None:
        summary |= result.group_stats.as_dict()
    if result.groups is not None:
        summary |= {"resolution": result.resolution, "social_edges": result.groups.social_edges,
                    "group_edges": result.groups.group_edges, "edge_reduction": round(result.groups.reduction, 4)}
    summary |= {k: round(v, 4) for k, v in result.fusion.items()}
    output.emit(summary, as_json=as_json, show=lambda: _metrics_table(f"{model} on {dataset.name} (test split)", summary))


@app.command("eval")
def eval_(
    name: str = typer.Argument("default", help="Model name (or folder) saved by `haneul rec train`."),
    data: Path = typer.Option(..., "--data", "-d", help=DATA_HELP + " Must be the data the model was trained on."),
    social: Path | None = typer.Option(None, help="CSV/Parquet user-user links (with a CSV/Parquet --data)."),
    groups: Path | None = typer.Option(None, help="CSV/Parquet group-user memberships."),
    as_json: JsonOpt = False,
) -> None:
    """Re-evaluate a saved model on its test split (the split is rebuilt from the saved seed)."""
    import warnings

    from haneul.errors import InvalidInput
    from haneul.rec.bundle import load_model
    from haneul.rec.train import TrainConfig, evaluate, prepare

    rec = load_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = _load(data, social, groups)
    if dataset.n_users != rec.n_users or dataset.n_items != rec.n_items or list(dataset.user_ids[:5]) != list(rec.user_ids[:5]):
        raise InvalidInput(f"--data {data} is not the data model {name!r} was trained on ({rec.data_name}); pass that data")
    known = {f for f in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**{k: v for k, v in rec.config.items() if k in known})
    metrics = evaluate(rec, prepare(dataset, config), seed=config.seed)
    output.emit({"model": name, **metrics}, as_json=as_json,
                show=lambda: _metrics_table(f"{rec.kind} model {name!r} on {dataset.name} (test split)", metrics))


@app.command()
def recommend(
    user: str = typer.Argument(..., help="User id as it appears in the training data."),
    k: int = typer.Option(10, "-k", "--k", help="How many items."),
    name: str = typer.Option("default", "--model", help="Model name (or folder) saved by `haneul rec train`."),
    friends: str | None = typer.Option(None, help="Comma-separated friends of an unknown user (cold start by their groups)."),
    include_seen: bool = typer.Option(False, help="Also recommend items the user already has."),
    as_json: JsonOpt = False,
) -> None:
    """Top-k items for USER; unknown users get popular items of their friends' groups, else overall."""
    from haneul.rec.bundle import load_model

    rec = load_model(name)
    result = rec.recommend(user, k, friends=[f for f in (friends or "").split(",") if f], exclude_seen=not include_seen)
    if result.source != "model":
        output.note(f"warning: {result.reason}")
    record = result.as_dict()
    columns = ["rank", "item", "score"] + (["confidence"] if result.confidence is not None else [])
    output.emit(record, as_json=as_json, show=lambda: output.print_table(
        record["items"], columns=columns, right=columns[:1] + columns[2:],
        formats={"score": lambda score: f"{score:.4f}", "confidence": lambda c: f"{c:.3f}"},
        title=f"top {k} for user {user} ({result.source})"))
