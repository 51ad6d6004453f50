"""Many small fits as one: padding round trips, and batched fits equal scikit-learn's."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.batching import Padding
from models.synthetic import draw_theta, sample_mixture
from models.training import FitSpec, fit_many


def test_padding_round_trips_in_chunks():
    ids = np.array([2, 0, 2, 1, 2, 0])
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    layout = Padding(ids, 4)  # group 3 has no rows
    np.testing.assert_array_equal(layout.counts, [2, 1, 3, 0])
    padded = layout.pad(values)
    assert padded.shape == (4, 3, 2)
    np.testing.assert_array_equal(padded[2], values[[0, 2, 4]])  # original order within a group
    np.testing.assert_array_equal(layout.mask()[1], [1, 0, 0])
    back = np.zeros_like(values)
    layout.unpad(padded[:2], back, 0, 2)
    layout.unpad(layout.pad(values, 2, 4), back, 2, 4)  # a chunk is padded to its own widest group
    np.testing.assert_array_equal(back, values)
    assert layout.pad(values, 0, 2).shape == (2, 2, 2)


def _cells(n_cells, rng):
    xs, ys = [], []
    for c in range(n_cells):
        m = sample_mixture(rng, draw_theta(rng, 5, 5), 5, {"easy": 30, "hard": 30, "overlap": 10 * (c + 1)}, 5.0)
        xs.append(m.x)
        ys.append(m.label)
    return xs, ys


@pytest.mark.parametrize("C", [1.0, 0.01])
def test_fit_many_matches_scikit_learn_logistic_regression(C):
    """Same objective (binary L2 on the logit difference, unpenalised intercept) → same model."""
    rng = np.random.default_rng(0)
    xs, ys = _cells(6, rng)
    x, y = np.concatenate(xs), np.concatenate(ys)
    ids = np.concatenate([np.full(len(v), i) for i, v in enumerate(xs)])
    probs = fit_many(
        FitSpec(C=C, epochs=1, lbfgs_iters=300), x, np.eye(2, dtype=np.float32)[y], ids, x, ids, len(xs), seed=0,
        max_elements=3000,  # forces several chunks
    )
    for i, (xi, yi) in enumerate(zip(xs, ys)):
        reference = LogisticRegression(C=C, tol=1e-8, max_iter=1000).fit(xi, yi).predict_proba(xi)[:, 1]
        np.testing.assert_allclose(probs[ids == i, 1], reference, atol=2e-3)


def test_a_problem_without_rows_gets_uniform_predictions():
    rng = np.random.default_rng(1)
    xs, ys = _cells(2, rng)
    x, y = np.concatenate(xs), np.concatenate(ys)
    ids = np.concatenate([np.full(len(v), i) for i, v in enumerate(xs)])
    keep = ids == 0  # problem 1 keeps nothing
    probs = fit_many(FitSpec(C=1.0, epochs=1, lbfgs_iters=100), x, np.eye(2, dtype=np.float32)[y], ids, x, ids, 2, 0, keep=keep)
    np.testing.assert_allclose(probs[ids == 1], 0.5, atol=1e-4)
    assert np.mean(probs[ids == 0].argmax(1) == ys[0]) > 0.7
