import numpy as np

from models.synthetic import EASY, HARD, OVERLAP, draw_theta, overlap_density, sample_mixture, scale_counts


def _draw(seed=0, counts=None):
    rng = np.random.default_rng(seed)
    theta = draw_theta(rng, 20, 20)
    return theta, sample_mixture(rng, theta, 20, counts or {"easy": 300, "hard": 200, "overlap": 100}, 5.0)


def test_counts_and_zeroed_blocks():
    _, m = _draw()
    assert len(m) == 600
    assert np.bincount(m.group, minlength=3).tolist() == [300, 200, 100]
    assert np.all(m.x[m.group == EASY, 20:] == 0) and np.any(m.x[m.group == EASY, :20] != 0)
    assert np.all(m.x[m.group == HARD, :20] == 0) and np.any(m.x[m.group == HARD, 20:] != 0)
    assert np.all(m.x[m.group == OVERLAP] != 0)
    np.testing.assert_array_equal(m.x_weak, m.x[:, :20])


def test_class_means_follow_theta_with_the_label_sign():
    theta, m = _draw(counts={"easy": 0, "hard": 0, "overlap": 20000})
    mean_pos = m.x[m.label == 1].mean(axis=0)
    mean_neg = m.x[m.label == 0].mean(axis=0)
    np.testing.assert_allclose(mean_pos, theta, atol=0.08)
    np.testing.assert_allclose(mean_neg, -theta, atol=0.08)
    assert abs(m.x[m.label == 1].var(axis=0).mean() - 5.0) < 0.2
    assert 0.45 < m.label.mean() < 0.55


def test_same_seed_same_data_and_different_seed_differs():
    _, a = _draw(1)
    _, b = _draw(1)
    _, c = _draw(2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_density_and_scaling():
    assert overlap_density({"easy": 100, "hard": 100, "overlap": 50}) == 0.2
    assert scale_counts({"easy": 100, "hard": 10, "overlap": 1}, 2.5) == {"easy": 250, "hard": 25, "overlap": 2}
