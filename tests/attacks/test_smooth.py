"""smooth_pgd: the SmoothAdv attack on the Gaussian-smoothed classifier."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import smooth_pgd
from tests.certification.test_certify import DIM, hyperplane_model, points_at
from tests.conftest import linear_model


def _l2(d):
    return np.linalg.norm(d.reshape(len(d), -1), axis=1)


def test_one_step_on_a_hyperplane_moves_straight_at_it():
    # For a linear two-class model the gradient of -log G(x)_y is along -u
    # for class 0 (+u for class 1), whatever the noise: one step of 2 eps
    # projected back onto the ball is exactly x -/+ eps u.
    model, u, b = hyperplane_model()
    x = points_at(u, b, [0.3, -0.4, 1.0])
    y = np.array([0, 1, 0])
    eps = 0.2
    x_adv = smooth_pgd(model, x, y, sigma=0.25, eps=eps, steps=1, samples=16,
                       seed=0, clip=None).numpy()
    sign = np.where(y == 0, -1.0, 1.0)[:, None]
    np.testing.assert_allclose(x_adv, x + sign * eps * u[None, :], atol=1e-5)


def test_own_prediction_is_the_smoothed_one():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [0.3, -0.4])
    got = smooth_pgd(model, x, sigma=0.25, eps=0.2, steps=1, samples=64,
                     seed=0, clip=None).numpy()
    want = smooth_pgd(model, x, [0, 1], sigma=0.25, eps=0.2, steps=1,
                      samples=64, seed=0, clip=None).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.5])
def test_ball_box_shape_dtype_and_eps_zero(eps):
    model, _, _ = linear_model()
    x = np.random.RandomState(0).uniform(size=(16, 6)).astype("float32")
    copy = x.copy()
    x_adv = smooth_pgd(model, x, sigma=0.5, eps=eps, steps=4, samples=3,
                       seed=1).numpy()
    np.testing.assert_array_equal(x, copy)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert np.all(_l2(x_adv - x) <= eps + 1e-5)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    if eps == 0.0:
        np.testing.assert_array_equal(x_adv, x)
    else:
        assert _l2(x_adv - x).max() > 0.5 * eps


def test_same_seed_same_result_and_graph_mode():
    model, _, _ = linear_model()
    x = np.random.RandomState(0).uniform(size=(8, 6)).astype("float32")
    a = smooth_pgd(model, x, sigma=0.5, eps=0.3, steps=3, seed=4).numpy()
    b = smooth_pgd(model, x, sigma=0.5, eps=0.3, steps=3, seed=4).numpy()
    np.testing.assert_array_equal(a, b)

    @tf.function(autograph=False)
    def traced(x):
        return smooth_pgd(model, x, sigma=0.5, eps=0.3, steps=3, seed=4)

    np.testing.assert_allclose(traced(tf.constant(x)).numpy(), a, atol=1e-6)


def test_raises_the_smoothed_loss():
    model, _, _ = linear_model(in_dim=DIM, classes=4, seed=2)
    x = np.random.RandomState(1).uniform(size=(32, DIM)).astype("float32")
    y = np.arange(32) % 4
    noise = 0.25 * np.random.RandomState(2).normal(size=(256,) + x.shape)

    def smoothed_loss(z):
        logits = model.predict((z[None] + noise).reshape(-1, DIM),
                               verbose=0).reshape(256, 32, 4)
        p = keras.ops.convert_to_numpy(keras.ops.softmax(logits)).mean(0)
        return -np.log(p[np.arange(32), y]).mean()

    x_adv = smooth_pgd(model, x, y, sigma=0.25, eps=0.5, steps=10, samples=8,
                       seed=0).numpy()
    assert smoothed_loss(x_adv) > smoothed_loss(x) + 0.1


@pytest.mark.parametrize("name,value", [
    ("sigma", 0.0), ("sigma", float("nan")), ("eps", -1.0),
    ("eps", float("inf")), ("steps", 0), ("samples", 0),
    ("step_size", 0.0), ("clip", (1, 0)), ("seed", 1.5),
])
def test_bad_arguments(name, value):
    model, _, _ = linear_model()
    x = np.zeros((2, 6), "float32")
    kwargs = {"sigma": 0.25, "eps": 0.5, name: value}
    with pytest.raises(ValueError, match=f"Received: {name}="):
        smooth_pgd(model, x, **kwargs)


def test_bad_data():
    model, _, _ = linear_model()
    with pytest.raises(ValueError, match="inside clip"):
        smooth_pgd(model, np.full((2, 6), 2.0, "float32"), sigma=0.25, eps=1)
    with pytest.raises(ValueError, match="classes in"):
        smooth_pgd(model, np.zeros((2, 6), "float32"), [0, 7], sigma=0.25,
                   eps=1)
