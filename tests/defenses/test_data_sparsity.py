"""DataSparsity: the penalty against a finite-difference expectation, its noise
points, bad arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.defenses import (
    DataSparsity,
)
from tests.conftest import linear_model, softmax
from tests.defenses.unlabeled import task_loss


def test_data_sparsity_penalty_matches_finite_difference_expectation():
    """For a small neighbour std, E[((p(a) - p(a + s)) / |s|)^2] averaged
    over classes is |J|_F^2 / (classes * dims) with J the softmax Jacobian:
    checked on many copies of one point."""
    model, w, b = linear_model(in_dim=6, classes=4, seed=9)
    x0 = np.random.RandomState(7).rand(6).astype("float32")
    x = np.repeat(x0[None], 4000, axis=0)
    d = DataSparsity(noise_std=0.0, neighbor_std=1e-3,
                     unlabeled_per_example=0, weight=1.0)
    tf.random.set_seed(0)
    got = float(d.penalty(model, x, None, x).terms["smoothness_loss"])
    p = softmax(x0.astype(np.float64) @ w + b)
    jac = (np.diag(p) - np.outer(p, p)) @ w.T  # (classes, dims)
    expected = np.sum(jac**2) / (4 * 6)
    assert got == pytest.approx(expected, rel=0.08)


def test_data_sparsity_generates_noise_points_and_neighbour_default():
    d = DataSparsity(noise_std=0.05, unlabeled_per_example=2)
    assert d.neighbor_std == pytest.approx(0.005)
    x = np.full((300, 10), 0.5, "float32")
    pts = d.perturb(None, x, None).numpy()
    assert pts.shape == (600, 10)
    assert np.std(pts - 0.5) == pytest.approx(0.05, rel=0.05)


def test_data_sparsity_penalty_zero_for_constant_model():
    model = keras.Sequential([keras.Input((6,)),
                              keras.layers.Dense(4, kernel_initializer="zeros")])
    x = np.random.rand(8, 6).astype("float32")
    d = DataSparsity(noise_std=0.1)
    r = d.loss(model, x, np.arange(8) % 4, d.perturb(model, x, None),
               task_loss=task_loss)
    assert float(r.terms["smoothness_loss"]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bad", [
    dict(noise_std=-0.1), dict(neighbor_std=0.0), dict(weight=float("nan")),
    dict(unlabeled_per_example=-1), dict(neighbors=0),
    dict(noise_std=0.0)])
def test_data_sparsity_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match="Received: "):
        DataSparsity(**bad)
