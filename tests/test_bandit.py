import numpy as np
import pytest

from models.bandit import ucb_bonus, ucb_select
from models.selection import SourcePool, select_sources


def test_bonus_formulas():
    counts = np.array([1.0, 4.0])
    np.testing.assert_allclose(ucb_bonus(counts, t=10, horizon=50), np.sqrt(2 * np.log(10) / counts))
    np.testing.assert_allclose(ucb_bonus(counts, t=10, horizon=50, rule="paper"), np.sqrt(2 * np.log(50)) / counts)
    with pytest.raises(ValueError, match="unknown UCB bonus"):
        ucb_bonus(counts, 1, 1, rule="nope")


def test_ucb1_finds_the_best_bernoulli_arm():
    rng = np.random.default_rng(0)
    means = np.array([0.2, 0.5, 0.7, 0.4])
    horizon = 3000
    counts, sums = np.zeros(4), np.zeros(4)
    for t in range(1, horizon + 1):
        arm = ucb_select(np.divide(sums, counts, out=np.zeros(4), where=counts > 0), counts, t, horizon)
        counts[arm] += 1
        sums[arm] += rng.random() < means[arm]
    assert np.argmax(counts) == 2
    assert counts[2] > 0.7 * horizon
    # every arm is tried: no arm is starved of its first pull
    assert counts.min() >= 1


def _pools(rng, densities, n=400):
    """Pools whose weak labels and representations make overlap points easy to find."""
    pools = []
    for d in densities:
        n_overlap = int(d * n)
        truth = np.r_[np.full(n_overlap, 2), rng.choice([0, 1], n - n_overlap)]
        rng.shuffle(truth)
        p = np.where(truth == 1, 0.5, 0.95)
        reps = np.c_[(truth != 1) * 1.0, (truth != 0) * 1.0] + rng.normal(0, 0.05, (n, 2))
        pools.append(SourcePool(np.c_[1 - p, p], reps, true_density=d))
    return pools


def test_selection_prefers_the_densest_source_and_reports_regret():
    rng = np.random.default_rng(0)
    pools = _pools(rng, [0.05, 0.2, 0.6])
    result = select_sources(pools, "ucb1", rounds=15, pull_size=20, seed=0)
    taken = [len(t) for t in result.taken]
    assert sum(taken) == 15 * 20
    assert np.argmax(taken) == 2
    last = result.trace[-1]
    assert last["estimated_density"][2] == pytest.approx(0.6, abs=0.15)
    oracle = select_sources(pools, "oracle", rounds=15, pull_size=20, seed=0)
    assert oracle.trace[-1]["cumulative_regret"] == 0
    assert 0 < last["cumulative_regret"] < select_sources(pools, "random", 15, 20, seed=0).trace[-1]["cumulative_regret"]


def test_budget_beyond_a_pool_is_refused():
    pools = _pools(np.random.default_rng(0), [0.1, 0.2], n=50)
    with pytest.raises(ValueError, match="exceeds the pool of source 0"):
        select_sources(pools, "ucb1", rounds=3, pull_size=20, seed=0)


def test_all_takes_every_point():
    pools = _pools(np.random.default_rng(0), [0.1, 0.2], n=50)
    result = select_sources(pools, "all", rounds=1, pull_size=1, seed=0)
    assert [len(t) for t in result.taken] == [50, 50] and result.trace == []
