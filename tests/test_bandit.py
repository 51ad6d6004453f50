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
        # Confident points spread a little: one shared confidence would put them all on the
        # paper detector's HARD side (its threshold is the first value after the break).
        p = np.where(truth == 1, 0.5, rng.uniform(0.9, 0.99, n))
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


# --- every policy on Bernoulli arms ------------------------------------------------------

from models.bandit import epsilon_greedy_select, thompson_select  # noqa: E402
from models.selection import collected_after  # noqa: E402


def _play(policy: str, means: np.ndarray, horizon: int, seed: int) -> np.ndarray:
    """Pull counts of each arm after ``horizon`` Bernoulli plays of ``policy``."""
    rng = np.random.default_rng(seed)
    k = len(means)
    counts, sums = np.zeros(k), np.zeros(k)
    for t in range(1, horizon + 1):
        avg = np.divide(sums, counts, out=np.zeros(k), where=counts > 0)
        if policy == "ucb1":
            arm = ucb_select(avg, counts, t, horizon, "ucb1")
        elif policy == "paper_ucb":
            arm = ucb_select(avg, counts, t, horizon, "paper")
        elif policy == "thompson":
            arm = thompson_select(sums, counts, rng)
        else:
            arm = epsilon_greedy_select(avg, counts, 0.1, rng)
        counts[arm] += 1
        sums[arm] += rng.random() < means[arm]
    return counts


@pytest.mark.parametrize("policy", ["ucb1", "paper_ucb", "thompson", "epsilon_greedy"])
def test_each_policy_finds_the_best_arm_with_bounded_regret(policy):
    means = np.array([0.2, 0.5, 0.7, 0.4])
    horizon = 2000
    for seed in range(3):
        counts = _play(policy, means, horizon, seed)
        regret = float(np.sum(counts * (means.max() - means)))
        assert np.argmax(counts) == 2
        # UCB1's bound: sum over worse arms of 8 ln T / gap, plus (1 + pi^2/3) gaps.
        gaps = means.max() - means[means < means.max()]
        ucb_bound = float(np.sum(8 * np.log(horizon) / gaps + (1 + np.pi**2 / 3) * gaps))
        # epsilon-greedy keeps exploring: epsilon * T * mean gap is its linear floor.
        bound = ucb_bound + (0.1 * horizon * np.mean(means.max() - means) if policy == "epsilon_greedy" else 0)
        assert regret < bound, (policy, seed, regret, bound)
        assert regret < 0.1 * horizon * (means.max() - means.min())  # far below a uniform policy's


def test_thompson_prefers_the_posterior_with_more_successes():
    rng = np.random.default_rng(0)
    picks = [thompson_select(np.array([10.0, 90.0]), np.array([100.0, 100.0]), rng) for _ in range(200)]
    assert np.mean(picks) > 0.99


def test_collected_after_follows_the_arm_sequence():
    np.testing.assert_array_equal(collected_after(np.array([0, 2, 2, 1]), 3, 10), [[10, 0, 0], [10, 0, 10], [10, 0, 20], [10, 10, 20]])


@pytest.mark.parametrize("policy", ["thompson", "epsilon_greedy", "paper_ucb"])
def test_selection_loop_runs_every_policy_with_each_detector(policy):
    pools = _pools(np.random.default_rng(0), [0.05, 0.2, 0.6])
    for detector in ("paper", "mixture_energy"):
        result = select_sources(pools, policy, rounds=12, pull_size=20, seed=0, detector=detector)
        assert [row["round"] for row in result.trace] == list(range(1, 13))
        assert sum(len(t) for t in result.taken) == 12 * 20


def test_counting_pulls_explores_more_than_counting_points():
    """A pull is pull_size observations; counting it as one widens UCB1's bonus sqrt(pull_size)-fold."""
    pools = _pools(np.random.default_rng(0), [0.05, 0.2, 0.6], n=800)
    by_points = select_sources(pools, "ucb1", rounds=30, pull_size=20, seed=0, detector="mixture_energy")
    by_pulls = select_sources(pools, "ucb1", rounds=30, pull_size=20, seed=0, detector="mixture_energy", unit="pulls")
    assert len(by_points.taken[2]) > len(by_pulls.taken[2])
    assert by_points.trace[-1]["cumulative_regret"] < by_pulls.trace[-1]["cumulative_regret"]


@pytest.mark.parametrize("unit", ["points", "pulls"])
def test_paper_ucb_is_the_authors_bonus_over_rounds_and_pulls(unit):
    """Each round after the first pull of every arm picks argmax ô_k + sqrt(2 ln T) / N_k,
    T the rounds and N_k the pulls of arm k (the densities ô from the previous round's
    trace), however `unit` is set."""
    pools = _pools(np.random.default_rng(0), [0.05, 0.2, 0.6], n=800)
    rounds = 20
    result = select_sources(pools, "paper_ucb", rounds=rounds, pull_size=20, seed=0, detector="mixture_energy", unit=unit)
    arms = [row["arm"] for row in result.trace]
    assert arms[:3] == [0, 1, 2]
    pulls = np.bincount(arms[:3], minlength=3).astype(float)
    for t in range(3, rounds):
        estimates = np.array(result.trace[t - 1]["estimated_density"])
        assert arms[t] == int(np.argmax(estimates + np.sqrt(2 * np.log(rounds)) / pulls)), t
        pulls[arms[t]] += 1
    # A bonus of 2.45 / N_k against densities below 1 keeps every arm in play.
    assert min(len(t) for t in result.taken) >= 4 * 20
