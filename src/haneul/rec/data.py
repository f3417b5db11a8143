"""Interaction and social data for social recommendation: loaders, id maps, splits, negatives.

Reads RecBole atomic files (``.inter`` user-item interactions with optional rating/timestamp,
``.net`` user-user links, ``.item`` item features, optional ``.group`` group-user membership), gzip
or plain, and plain CSV/Parquet edge lists. Everything is turned into dense integer ids held in
numpy arrays so the graph code never touches Python objects per edge. Implements the data side of
HGP (Kim et al., RecSys 2019, Sec. 2: the group-user-item tripartite graph) and the evaluation
protocols used to compare with it: a per-user random 8:1:1 split (RecBole's ``RS`` with
``group_by=user``), leave-last-out by timestamp, and sampled negatives for AUC/F1.
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from haneul.errors import InvalidInput, NotFound


class RecDataWarning(UserWarning):
    """Input rows were dropped (duplicates, self-loops, unknown ids); the count is in the message."""


@dataclass
class SocialData:
    """A social recommendation data set with dense ids.

    ``user`` / ``item`` are parallel arrays of interactions (ints in ``[0, n_users)`` /
    ``[0, n_items)``), ``social`` an ``(E, 2)`` array of undirected user-user links stored once with
    ``a < b``, ``groups`` an optional ``(M, 2)`` array of ``(group, user)`` memberships.
    """

    user_ids: np.ndarray  # raw id (str) of each dense user index
    item_ids: np.ndarray
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray | None = None
    rating: np.ndarray | None = None
    social: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    groups: np.ndarray | None = None
    item_tokens: list[list[str]] | None = None
    stats: dict[str, int] = field(default_factory=dict)
    name: str = "data"

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.user)

    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids.tolist())}

    def item_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.item_ids.tolist())}

    def describe(self) -> dict[str, int]:
        out = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "social_links": len(self.social),
            # users the social side of a model cannot reach, however the groups are built
            "users_without_friends": int((np.bincount(self.social.ravel(), minlength=self.n_users) == 0).sum()),
        }
        if self.groups is not None:
            out["groups"] = int(self.groups[:, 0].max()) + 1 if len(self.groups) else 0
            out["group_memberships"] = len(self.groups)
        return out | self.stats


@dataclass
class Split:
    """Index arrays into a :class:`SocialData`'s interactions."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    protocol: str = "random"


# --------------------------------------------------------------------------------------------------
# reading files


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by caller


def read_atomic(path: str | Path) -> dict[str, np.ndarray]:
    """Read one RecBole atomic file into ``{field_name: array of str}`` (types are dropped)."""
    import csv

    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise NotFound(f"atomic file {path} does not exist; pass the folder holding <name>.inter")
    with _open_text(path) as fh:
        header = fh.readline().rstrip("\n\r")
    if not header:
        raise InvalidInput(f"{path} is empty; an atomic file starts with a 'name:type' header line")
    names = [h.split(":")[0].strip() for h in header.split("\t")]
    frame = pd.read_csv(
        path, sep="\t", header=0, names=names, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
        engine="c", on_bad_lines="warn",
    )
    return {n: frame[n].to_numpy(dtype=object) for n in names}


def read_edges(path: str | Path, columns: tuple[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV/TSV/Parquet edge list; return its first two columns (or ``columns``) as str arrays."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise NotFound(f"edge list {path} does not exist; check the path")
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif name.endswith((".csv", ".tsv", ".txt")):
        sep = "\t" if name.endswith(".tsv") else None
        frame = pd.read_csv(path, sep=sep, engine="python", dtype=str)
    else:
        raise InvalidInput(f"edge list {path}: unknown format; use .csv, .tsv, .txt or .parquet (optionally .gz)")
    if columns is None:
        if frame.shape[1] < 2:
            raise InvalidInput(f"edge list {path} has {frame.shape[1]} column(s); it needs two (source, target)")
        columns = (str(frame.columns[0]), str(frame.columns[1]))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"edge list {path} has no column {missing[0]!r}; columns are {list(frame.columns)}")
    return (frame[columns[0]].astype(str).to_numpy(dtype=object), frame[columns[1]].astype(str).to_numpy(dtype=object))


def _find(folder: Path, stem: str | None, suffix: str) -> Path | None:
    pattern = f"{stem}{suffix}" if stem else f"*{suffix}"
    for candidate in [*sorted(folder.glob(pattern)), *sorted(folder.glob(pattern + ".gz"))]:
        return candidate
    return None


def _pick(fields: dict[str, np.ndarray], *hints: str, exclude: tuple[str, ...] = ()) -> str | None:
    for hint in hints:
        for name in fields:
            if name not in exclude and hint in name:
                return name
    return None


def load_recbole(path: str | Path, name: str | None = None, groups: str | Path | None = None) -> SocialData:
    """Load ``<name>.inter`` (+ ``.net``, ``.item``, ``.group`` when present) from a folder.

    ``path`` is the folder (the data set name defaults to the single ``*.inter`` file's stem) or a
    path to the ``.inter`` file. ``groups`` may name a separate group-user edge list (CSV/Parquet)
    that overrides any ``.group`` file.
    """
    path = Path(path)
    if path.is_file():
        folder, name = path.parent, path.name.removesuffix(".gz").removesuffix(".inter")
    else:
        folder = path
        if not folder.is_dir():
            raise NotFound(f"data folder {folder} does not exist; pass a folder holding <name>.inter(.gz)")
        if name is None:
            inters = sorted({p.name.removesuffix(".gz").removesuffix(".inter") for p in folder.glob("*.inter*")})
            if not inters:
                raise NotFound(f"no .inter file in {folder}; RecBole atomic data needs <name>.inter(.gz)")
            if len(inters) > 1:
                raise InvalidInput(f"{folder} holds several .inter files {inters}; pass name= to pick one")
            name = inters[0]
    inter_path = _find(folder, name, ".inter")
    if inter_path is None:
        raise NotFound(f"no {name}.inter(.gz) in {folder}; check the data set name")
    inter = read_atomic(inter_path)
    ufield = _pick(inter, "user")
    ifield = _pick(inter, "item", "artist", "movie", "_id", exclude=(ufield or "",))
    if ufield is None or ifield is None:
        raise InvalidInput(f"{inter_path}: cannot tell the user and item columns in {list(inter)}; name them user_id / item_id")
    tfield = _pick(inter, "timestamp", "time")
    rfield = _pick(inter, "rating", "count", exclude=(ufield, ifield))
    net = None
    net_path = _find(folder, name, ".net")
    if net_path is not None:
        net_fields = read_atomic(net_path)
        keys = list(net_fields)
        net = (net_fields[keys[0]], net_fields[keys[1]])
    item_tokens = None
    item_path = _find(folder, name, ".item")
    if item_path is not None:
        item_fields = read_atomic(item_path)
        item_tokens = _item_tokens(item_fields, ifield)
    group_edges = None
    if groups is not None:
        group_edges = read_edges(groups)
    else:
        group_path = _find(folder, name, ".group")
        if group_path is not None:
            gf = read_atomic(group_path)
            gkey = _pick(gf, "group") or list(gf)[0]
            ukey = _pick(gf, "user", exclude=(gkey,)) or list(gf)[1]
            group_edges = (gf[gkey], gf[ukey])
    return build_data(
        inter[ufield],
        inter[ifield],
        timestamp=inter[tfield].astype(np.float64) if tfield else None,
        rating=inter[rfield].astype(np.float64) if rfield else None,
        social=net,
        groups=group_edges,
        item_tokens=item_tokens,
        name=name,
    )


def _item_tokens(fields: dict[str, np.ndarray], ifield: str) -> dict[str, list[str]]:
    key = ifield if ifield in fields else list(fields)[0]
    # URLs are unique per item and carry no shared signal, so only the text-like columns count
    text = [k for k in fields if k != key and "url" not in k.lower()]
    out: dict[str, list[str]] = {}
    for row, raw in enumerate(fields[key].tolist()):
        toks: list[str] = []
        for k in text:
            toks.extend(f"{k}={t.lower()}" for t in str(fields[k][row]).split() if t)
        out[raw] = toks
    return out


def load_edge_lists(
    interactions: str | Path,
    social: str | Path | None = None,
    groups: str | Path | None = None,
    name: str = "data",
) -> SocialData:
    """Build a data set from CSV/Parquet edge lists: user-item, optional user-user and group-user."""
    u, i = read_edges(interactions)
    net = read_edges(social) if social is not None else None
    grp = read_edges(groups) if groups is not None else None
    return build_data(u, i, social=net, groups=grp, name=name)


def build_data(
    users: np.ndarray,
    items: np.ndarray,
    *,
    timestamp: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    social: tuple[np.ndarray, np.ndarray] | None = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    item_tokens: dict[str, list[str]] | None = None,
    name: str = "data",
) -> SocialData:
    """Map raw ids to dense ones and clean the edges.

    Duplicate interactions (the first is kept), duplicate and self-loop social links, and social or
    group links naming users that never interact are dropped, each with a :class:`RecDataWarning`
    giving the count; the counts also land in ``SocialData.stats``.
    """
    users = np.asarray(users).astype(str)
    items = np.asarray(items).astype(str)
    if len(users) == 0:
        raise InvalidInput(f"data set {name!r} has no interactions; the .inter file needs at least one row")
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    stats: dict[str, int] = {}
    key = u.astype(np.int64) * len(item_ids) + i
    _, first = np.unique(key, return_index=True)
    if len(first) < len(key):
        stats["duplicate_interactions"] = len(key) - len(first)
        warnings.warn(f"{name}: dropped {stats['duplicate_interactions']} duplicate user-item interactions", RecDataWarning, stacklevel=2)
        keep = np.sort(first)
        u, i = u[keep], i[keep]
        timestamp = timestamp[keep] if timestamp is not None else None
        rating = rating[keep] if rating is not None else None
    soc = np.zeros((0, 2), dtype=np.int64)
    if social is not None:
        soc = _map_pairs(social[0], social[1], user_ids, user_ids, name, "social", stats)
        loops = soc[:, 0] == soc[:, 1]
        if loops.any():
            stats["social_self_loops"] = int(loops.sum())
            warnings.warn(f"{name}: dropped {stats['social_self_loops']} self-loop social links", RecDataWarning, stacklevel=2)
            soc = soc[~loops]
        # repeating the same directed row is a data error; listing both a->b and b->a is the usual
        # way to store an undirected link, so the two merge silently
        directed = np.unique(soc, axis=0) if len(soc) else soc
        if len(directed) < len(soc):
            stats["duplicate_social_links"] = len(soc) - len(directed)
            warnings.warn(f"{name}: dropped {stats['duplicate_social_links']} duplicate social links", RecDataWarning, stacklevel=2)
        soc = np.unique(np.sort(directed, axis=1), axis=0) if len(directed) else directed
        soc = soc.astype(np.int64)
    grp = None
    if groups is not None:
        gids = np.unique(np.asarray(groups[0]).astype(str))
        grp = _map_pairs(groups[0], groups[1], gids, user_ids, name, "group", stats)
        grp = np.unique(grp, axis=0) if len(grp) else grp
        # renumber so every group that survived has a dense id
        _, dense = np.unique(grp[:, 0], return_inverse=True)
        grp = np.stack([dense, grp[:, 1]], axis=1).astype(np.int64)
    tokens = None
    if item_tokens is not None:
        tokens = [item_tokens.get(raw, []) for raw in item_ids.tolist()]
    return SocialData(
        user_ids=user_ids.astype(object),
        item_ids=item_ids.astype(object),
        user=u.astype(np.int64),
        item=i.astype(np.int64),
        timestamp=timestamp,
        rating=rating,
        social=soc,
        groups=grp,
        item_tokens=tokens,
        stats=stats,
        name=name,
    )


def _map_pairs(
    a: np.ndarray, b: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray, name: str, what: str, stats: dict[str, int]
) -> np.ndarray:
    """Map raw id pairs to dense ids through the sorted id arrays; drop pairs with unknown ids."""
    ia = _lookup(np.asarray(a).astype(str), ids_a)
    ib = _lookup(np.asarray(b).astype(str), ids_b)
    ok = (ia >= 0) & (ib >= 0)
    if not ok.all():
        unknown = set(np.asarray(a).astype(str)[ia < 0].tolist()) if what == "social" else set()
        unknown |= set(np.asarray(b).astype(str)[ib < 0].tolist())
        stats[f"{what}_links_unknown_users"] = int((~ok).sum())
        warnings.warn(
            f"{name}: dropped {int((~ok).sum())} {what} links naming {len(unknown)} user id(s) absent from the interactions",
            RecDataWarning,
            stacklevel=3,
        )
    return np.stack([ia[ok], ib[ok]], axis=1).astype(np.int64) if ok.any() else np.zeros((0, 2), dtype=np.int64)


def _lookup(raw: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Dense index of each raw id in ``sorted_ids`` (from ``np.unique``), -1 when absent."""
    if len(sorted_ids) == 0:
        return np.full(len(raw), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, raw), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == raw, pos, -1).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# splits


def split_random(data: SocialData, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Per-user random split (RecBole ``RS`` with ``group_by=user``).

    Each user's interactions are shuffled; ``floor(r * n)`` go to valid and test, and a user whose
    share would round to zero still gives one interaction to valid/test while keeping at least one
    for training. Raises :class:`InvalidInput` when a split ends up empty.
    """
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1.0) > 1e-6:
        raise InvalidInput(f"split ratios {ratios} must be three non-negative numbers summing to 1, e.g. (0.8, 0.1, 0.1)")
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(data.n_interactions), data.user))
    return _assign_by_rank(data, order, ratios, "random")


def split_leave_last_out(data: SocialData) -> Split:
    """Per user: the latest interaction is test, the one before is valid, the rest train."""
    if data.timestamp is None:
        raise InvalidInput(f"{data.name} has no timestamp column; use the random split (--split random) instead")
    order = np.lexsort((np.arange(data.n_interactions), data.timestamp, data.user))
    users = data.user[order]
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[users]
    n = counts[users]
    part = np.zeros(len(order), dtype=np.int8)
    part[(n >= 3) & (rank == n - 2)] = 1
    part[(n >= 2) & (rank == n - 1)] = 2
    return _finish(data, order, part, "leave-last-out")


def _assign_by_rank(data: SocialData, order: np.ndarray, ratios: tuple[float, float, float], protocol: str) -> Split:
    users = data.user[order]
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[users]
    n = counts
    n_valid = np.floor(ratios[1] * n).astype(np.int64)
    n_test = np.floor(ratios[2] * n).astype(np.int64)
    # mirror RecBole: a share that is positive but under one row still gets a row if train keeps >= 2
    for share, ratio in ((n_test, ratios[2]), (n_valid, ratios[1])):
        bump = (share == 0) & (ratio * n > 0) & (n - n_valid - n_test > 1)
        share[bump] += 1
    n_train = n - n_valid - n_test
    part = np.zeros(len(order), dtype=np.int8)
    r = rank
    nt, nv = n_train[users], n_valid[users]
    part[(r >= nt) & (r < nt + nv)] = 1
    part[r >= nt + nv] = 2
    return _finish(data, order, part, protocol)


def _finish(data: SocialData, order: np.ndarray, part: np.ndarray, protocol: str) -> Split:
    split = Split(
        train=np.sort(order[part == 0]), valid=np.sort(order[part == 1]), test=np.sort(order[part == 2]), protocol=protocol
    )
    for label in ("train", "valid", "test"):
        if len(getattr(split, label)) == 0:
            raise InvalidInput(
                f"the {label} split of {data.name} is empty ({data.n_interactions} interactions, "
                f"{data.n_users} users); give users more interactions or use a larger data set"
            )
    return split


# --------------------------------------------------------------------------------------------------
# negatives


def sample_negatives(
    users: np.ndarray, n_items: int, known: np.ndarray, rng: np.random.Generator, max_rounds: int = 50
) -> np.ndarray:
    """One item per entry of ``users`` that the user has not interacted with.

    ``known`` is a sorted int64 array of ``user * n_items + item`` keys of every interaction the
    negatives must avoid. Collisions are redrawn in vectorised rounds.
    """
    users = np.asarray(users, dtype=np.int64)
    neg = rng.integers(0, n_items, size=len(users))
    todo = np.arange(len(users))
    for _ in range(max_rounds):
        keys = users[todo] * n_items + neg[todo]
        pos = np.searchsorted(known, keys)
        pos = np.minimum(pos, len(known) - 1)
        hit = known[pos] == keys if len(known) else np.zeros(len(todo), dtype=bool)
        todo = todo[hit]
        if len(todo) == 0:
            break
        neg[todo] = rng.integers(0, n_items, size=len(todo))
    return neg


def interaction_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return np.unique(np.asarray(users, dtype=np.int64) * n_items + np.asarray(items, dtype=np.int64))


__all__ = [
    "RecDataWarning",
    "SocialData",
    "Split",
    "build_data",
    "interaction_keys",
    "load_edge_lists",
    "load_recbole",
    "read_atomic",
    "read_edges",
    "sample_negatives",
    "split_leave_last_out",
    "split_random",
]
