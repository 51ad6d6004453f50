import numpy as np
import pytest
import ruptures

from models.change_point import single_change_point, threshold_at_change_point


def test_finds_a_clean_step():
    signal = np.r_[np.zeros(30), np.ones(70)]
    assert single_change_point(signal) == 30
    assert threshold_at_change_point(np.r_[np.full(10, 0.9), np.full(5, 0.1)]) == pytest.approx(0.1)


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_ruptures_binseg(seed):
    rng = np.random.default_rng(seed)
    signal = np.sort(np.r_[rng.normal(0, 1, rng.integers(10, 80)), rng.normal(2.5, 1, rng.integers(10, 80))])
    expected = ruptures.Binseg(model="l2", min_size=2, jump=1).fit(signal).predict(n_bkps=1)[0]
    assert single_change_point(signal) == expected


def test_batch_matches_one_by_one():
    rng = np.random.default_rng(0)
    batch = np.sort(rng.normal(size=(5, 50)) + (rng.random((5, 50)) > 0.5) * 3, axis=1)
    assert list(single_change_point(batch)) == [single_change_point(row) for row in batch]


def test_too_short_signal_is_refused():
    with pytest.raises(ValueError, match="at least 4 points"):
        single_change_point(np.arange(3.0))
