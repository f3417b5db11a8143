from __future__ import annotations

import warnings

import numpy as np
import pytest

from haneul.rec.data import load_recbole, split_random
from haneul.rec.graph import detect_groups


@pytest.fixture()
def social_dir(shared_data):
    if shared_data is None or not (shared_data / "social").exists():
        pytest.skip("shared data (social/) not available")
    return shared_data / "social"


def test_lastfm_loads_with_the_documented_sizes_and_groups_cut_edges(social_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_recbole(social_dir / "lastfm")
    assert (d.n_users, d.n_items, d.n_interactions) == (1892, 17632, 92834)
    assert len(d.social) == 12717  # 25,434 directed pairs = 12,717 undirected links
    groups = detect_groups(d.social, d.n_users, "leiden", seed=0)
    assert groups.reduction > 0.5 and groups.modularity > 0.3
    s = split_random(d, seed=0)
    assert abs(len(s.train) / d.n_interactions - 0.8) < 0.02


def test_filmtrust_net_ids_outside_the_ratings_are_counted(social_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_recbole(social_dir / "filmtrust")
    assert d.n_users == 1508 and d.n_items == 2071
    # the FilmTrust trust file names 134 users who rated nothing, and repeats 3 ratings
    assert d.stats["social_links_unknown_users"] == 221 and d.stats["duplicate_interactions"] == 3
    assert any("221 social links naming 134 user id(s)" in str(w.message) for w in caught)
    assert np.all(d.social[:, 0] < d.social[:, 1])
