from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest

from haneul.errors import InvalidInput, NotFound
from haneul.rec.data import (
    RecDataWarning,
    build_data,
    interaction_keys,
    load_edge_lists,
    load_recbole,
    sample_negatives,
    split_leave_last_out,
    split_random,
)


def write_atomic(tmp_path, name, inter, net=None, item=None, gz=False):
    def put(suffix, text):
        path = tmp_path / f"{name}{suffix}"
        if gz:
            with gzip.open(str(path) + ".gz", "wt") as fh:
                fh.write(text)
        else:
            path.write_text(text)

    put(".inter", inter)
    if net is not None:
        put(".net", net)
    if item is not None:
        put(".item", item)
    return tmp_path


INTER = "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
    f"u{u}\ti{(u * 3 + k) % 7}\t{k}\n" for u in range(4) for k in range(5)
)


@pytest.mark.parametrize("gz", [False, True])
def test_load_recbole_maps_ids_and_reads_net_and_items(tmp_path, gz):
    net = "source_id:token\ttarget_id:token\nu0\tu1\nu1\tu0\nu2\tu3\n"
    item = "item_id:token\tname:token_seq\turl:token\ni0\tRock Band\thttp://x\n"
    write_atomic(tmp_path, "toy", INTER, net, item, gz=gz)
    d = load_recbole(tmp_path)
    assert d.name == "toy" and d.n_users == 4 and d.n_items == 7 and d.n_interactions == 20
    assert d.timestamp is not None and d.timestamp.max() == 4
    # u0-u1 listed both ways is one undirected link, without a warning
    assert d.social.tolist() == [[0, 1], [2, 3]]
    assert "duplicate_social_links" not in d.stats
    assert d.item_tokens[0] == ["name=rock", "name=band"]  # urls are left out
    raw = d.user_ids[d.user].tolist()
    assert raw[:5] == ["u0"] * 5


def test_unknown_net_ids_self_loops_and_duplicates_are_dropped_with_warnings(tmp_path):
    inter = "user_id:token\titem_id:token\nu0\ti0\nu0\ti0\nu1\ti1\nu2\ti0\n"
    net = "source_id:token\ttarget_id:token\nu0\tu1\nu0\tu1\nu1\tu1\nu0\tghost\nzombie\tu2\n"
    write_atomic(tmp_path, "bad", inter, net)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_recbole(tmp_path / "bad.inter")
    messages = " | ".join(str(w.message) for w in caught if issubclass(w.category, RecDataWarning))
    assert "1 duplicate user-item" in messages
    assert "2 social links naming 2 user id(s) absent" in messages
    assert "1 self-loop" in messages
    assert "1 duplicate social links" in messages
    assert d.stats == {
        "duplicate_interactions": 1,
        "social_links_unknown_users": 2,
        "social_self_loops": 1,
        "duplicate_social_links": 1,
    }
    assert d.n_interactions == 3 and d.social.tolist() == [[0, 1]]


def test_missing_and_empty_inputs_raise_one_line_errors(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        load_recbole(tmp_path / "nope")
    with pytest.raises(NotFound, match=r"no \.inter file"):
        load_recbole(tmp_path)
    (tmp_path / "e.inter").write_text("user_id:token\titem_id:token\n")
    with pytest.raises(InvalidInput, match="no interactions"):
        load_recbole(tmp_path)


def test_edge_lists_csv_and_parquet(tmp_path):
    import pandas as pd

    pd.DataFrame({"user": ["a", "a", "b", "c"], "item": ["x", "y", "x", "z"]}).to_csv(tmp_path / "ui.csv", index=False)
    pd.DataFrame({"src": ["a", "b"], "dst": ["b", "c"]}).to_parquet(tmp_path / "uu.parquet")
    pd.DataFrame({"group": ["g1", "g1", "g2"], "user": ["a", "b", "c"]}).to_csv(tmp_path / "gu.csv", index=False)
    d = load_edge_lists(tmp_path / "ui.csv", tmp_path / "uu.parquet", tmp_path / "gu.csv")
    assert d.n_users == 3 and d.n_items == 3
    assert d.social.tolist() == [[0, 1], [1, 2]]
    assert sorted(d.groups.tolist()) == [[0, 0], [0, 1], [1, 2]]
    (tmp_path / "ui.json").write_text("{}")
    with pytest.raises(InvalidInput, match="unknown format"):
        load_edge_lists(tmp_path / "ui.json")


def test_random_split_is_per_user_8_1_1():
    users = np.repeat(np.arange(3), [10, 20, 2])
    items = np.concatenate([np.arange(10), np.arange(20), np.arange(2)])
    d = build_data(users, items)
    s = split_random(d, seed=1)
    per_user = lambda idx: np.bincount(d.user[idx], minlength=3).tolist()  # noqa: E731
    assert per_user(s.train) == [8, 16, 1]
    assert per_user(s.valid) == [1, 2, 0]
    assert per_user(s.test) == [1, 2, 1]
    assert len(np.intersect1d(s.train, s.test)) == 0
    assert sorted(np.r_[s.train, s.valid, s.test].tolist()) == list(range(32))
    # the same seed gives the same split
    assert np.array_equal(split_random(d, seed=1).test, s.test)


def test_leave_last_out_uses_timestamps():
    d = build_data(["a"] * 4 + ["b"] * 2, ["1", "2", "3", "4", "1", "2"], timestamp=np.array([4.0, 1, 3, 2, 5, 6]))
    s = split_leave_last_out(d)
    assert d.item_ids[d.item[s.test]].tolist() == ["1", "2"]  # a's latest is item 1, b's item 2
    assert d.item_ids[d.item[s.valid]].tolist() == ["3"]  # b has only two: no validation row
    with pytest.raises(InvalidInput, match="no timestamp"):
        split_leave_last_out(build_data(["a"], ["1"]))


def test_empty_split_is_an_error():
    d = build_data(["a", "b"], ["1", "2"])  # one interaction per user: nothing to hold out
    with pytest.raises(InvalidInput, match="valid split of data is empty"):
        split_random(d)
    with pytest.raises(InvalidInput, match="ratios"):
        split_random(d, ratios=(0.5, 0.5, 0.5))


def test_negatives_never_hit_known_interactions():
    rng = np.random.default_rng(0)
    n_items = 5
    users = np.repeat(np.arange(50), 4)
    items = np.tile(np.arange(4), 50)  # every user knows items 0-3; only item 4 is negative
    known = interaction_keys(users, items, n_items)
    neg = sample_negatives(users, n_items, known, rng)
    assert set(neg.tolist()) == {4}
