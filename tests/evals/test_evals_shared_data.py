from __future__ import annotations

import pytest

from haneul.evals import get_task


def test_loaders_read_the_shared_korean_data(shared_data):
    if shared_data is None:
        pytest.skip("shared data folder not present")
    nsmc = get_task("nsmc").load(shared_data / "nsmc" / "ratings_test.txt.gz")
    assert len(nsmc) == 50_000 and {e.label for e in nsmc} == {0, 1}
    nli = get_task("kornli").load(shared_data / "kornlu" / "xnli.dev.ko.tsv.gz")
    assert len(nli) == 2_490 and sorted({e.label for e in nli}) == [0, 1, 2]
    sts = get_task("korsts").load(shared_data / "kornlu" / "sts-dev.tsv.gz")
    assert len(sts) == 1_500 and all(0.0 <= e.score <= 5.0 for e in sts)
