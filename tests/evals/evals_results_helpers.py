"""Hand-made runner results documents for the results-page tests."""

from __future__ import annotations

import statistics


def _seed_scores(name: str, value: float, se: float) -> dict[str, float]:
    out = {name: value, f"{name}_se": se}
    if name == "spearman":  # STS cells carry both correlations; Pearson is set 5 points lower
        out.update(pearson=value - 5.0, pearson_se=se)
    return out


def results_doc(model: str, scores: dict[str, dict[int, list[float]]], se: float = 1.0) -> dict:
    """A runner results document: ``scores[task][shots]`` lists the main metric per seed."""
    tasks = {}
    for task, per_shots in scores.items():
        metric, name = ("pearson_spearman", "spearman") if task == "korsts" else ("acc", "acc")
        metrics = [name] + (["pearson"] if name == "spearman" else [])
        shots = {}
        for k, values in per_shots.items():
            seeds = {str(s): _seed_scores(name, v, se) for s, v in enumerate(values)}
            mean = {m: sum(seeds[s][m] for s in seeds) / len(seeds) for m in metrics}
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            shots[str(k)] = {"mean": mean, "se": {m: se for m in metrics},
                             "seed_std": {m: spread for m in metrics}, "seeds": seeds}
        tasks[task] = {"metric": metric, "kind": "choice", "n": 50, "data": f"/data/{task}.tsv",
                       "shots": shots, "reduced_shot_prompts": 0}
    return {"model": model, "config": {"shots": sorted({k for p in scores.values() for k in p}), "seeds": 2,
                                       "limit": 50, "normalization": "none", "calibrate": False},
            "tasks": tasks, "timing": {"scored_items": 100, "seconds": 1.0, "items_per_s": 100.0}}
