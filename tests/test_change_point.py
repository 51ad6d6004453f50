from fractions import Fraction

import numpy as np
import pytest
import ruptures

from models.change_point import single_change_point, split_candidates, threshold_after_change_point


def test_finds_a_clean_step():
    signal = np.r_[np.zeros(30), np.ones(70)]
    assert single_change_point(signal) == 30
    # sorted: 5 × 0.1 then 10 × 0.9; the break is at index 5, whose value is the threshold
    assert threshold_after_change_point(np.r_[np.full(10, 0.9), np.full(5, 0.1)]) == pytest.approx(0.9)


@pytest.mark.parametrize("jump", [1, 5])
@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_ruptures_binseg(seed, jump):
    rng = np.random.default_rng(seed)
    signal = np.sort(np.r_[rng.normal(0, 1, rng.integers(10, 80)), rng.normal(2.5, 1, rng.integers(10, 80))])
    expected = ruptures.Binseg(model="l2", min_size=2, jump=jump).fit(signal).predict(n_bkps=1)[0]
    assert single_change_point(signal, jump=jump) == expected


def test_jump_five_is_what_the_paper_script_gets():
    """ruptures.Binseg's defaults (the authors' script passes none) are min_size=2, jump=5:
    only multiples of 5 are candidate splits, so a break at 12 is reported at 10."""
    signal = np.r_[np.zeros(12), np.ones(28)]
    assert single_change_point(signal, jump=1) == 12
    assert single_change_point(signal, jump=5) == 10 == ruptures.Binseg(model="l2").fit(signal).predict(n_bkps=1)[0]
    assert split_candidates(12, 2, 5).tolist() == [5, 10]
    assert split_candidates(6, 2, 5).tolist() == []


@pytest.mark.parametrize(
    "signal, first, last",
    [
        # splits 4 and 6 each leave one segment of zeros and one of [1, 1, 0, 0, 0, 0]: cost 4/3 both
        ([0, 0, 0, 0, 1, 1, 0, 0, 0, 0], 4, 6),
        ([0, 0, 1, 1, 0, 0], 2, 4),
        ([2, 2, 2, 0, 0, 0, 2, 2, 2], 3, 6),
        ([0.5] * 12, 2, 10),  # a constant signal: every split costs 0
    ],
)
def test_an_exact_cost_tie_goes_to_the_last_split_as_in_ruptures(signal, first, last):
    signal = np.array(signal, dtype=float)
    assert single_change_point(signal) == last != first
    assert ruptures.Binseg(model="l2", min_size=2, jump=1).fit(signal).predict(n_bkps=1)[0] == last


@pytest.mark.parametrize("seed", range(40))
def test_is_the_last_of_the_exactly_cheapest_splits(seed):
    """Integer signals, costs in exact rational arithmetic: the answer is the last split of
    minimal cost (ruptures' own floats sometimes break such mathematical ties otherwise)."""
    rng = np.random.default_rng(seed)
    jump = (1, 5)[seed % 2]
    signal = np.sort(rng.integers(0, 3, rng.integers(8, 40)))
    values = [Fraction(int(v)) for v in signal]

    def cost(part):
        mean = sum(part) / len(part)
        return sum((v - mean) ** 2 for v in part)

    costs = {int(b): cost(values[:b]) + cost(values[b:]) for b in split_candidates(len(values), 2, jump)}
    best = min(costs.values())
    assert single_change_point(signal.astype(float), jump=jump) == max(b for b, c in costs.items() if c == best)


def test_batch_matches_one_by_one():
    rng = np.random.default_rng(0)
    batch = np.sort(rng.normal(size=(5, 50)) + (rng.random((5, 50)) > 0.5) * 3, axis=1)
    assert list(single_change_point(batch)) == [single_change_point(row) for row in batch]


def test_too_short_signal_is_refused():
    with pytest.raises(ValueError, match="needs more than 3 points"):
        single_change_point(np.arange(3.0))
    with pytest.raises(ValueError, match="jump=5 needs more than 6 points"):
        single_change_point(np.arange(6.0), jump=5)
