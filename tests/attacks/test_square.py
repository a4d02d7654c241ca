"""Square: stays within eps and the box, needs outputs only, respects the
query budget, and breaks a trained CNN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import square
from tests.conftest import accuracy, linear_model


def _norm(d, norm):
    d = d.reshape(len(d), -1)
    return np.abs(d).max(1) if norm == "linf" else np.linalg.norm(d, axis=1)


class NumpyModel:
    """Wraps a model so that only outputs can be read: the forward pass
    runs in NumPy (no gradient exists) and every queried row is counted."""

    def __init__(self, model):
        self.model = model
        self.rows = 0
        self.calls = 0

    def _forward(self, x):
        self.rows += len(x)
        self.calls += 1
        return self.model.predict_on_batch(x).astype(np.float32)

    def __call__(self, x):
        out = tf.numpy_function(self._forward, [x], tf.float32)
        return tf.reshape(out, [-1, self.model.output_shape[-1]])


@pytest.mark.parametrize("norm,eps", [("linf", 0.15), ("l2", 2.0)])
def test_within_eps_outputs_only_and_budget(trained_cnn, cnn_test_batch,
                                            norm, eps):
    x, y = cnn_test_batch
    x, y = x[:40], y[:40]
    wrapped = NumpyModel(trained_cnn)
    with pytest.raises(ValueError, match="no gradient"):
        from keras_adv.attacks import pgd
        pgd(wrapped, x, y, eps=eps, steps=1)  # gradients really are absent
    wrapped.rows = 0
    adv = square(wrapped, x, y, eps=eps, norm=norm, queries=150,
                 seed=0).numpy()
    assert np.all(_norm(adv - x, norm) <= eps * (1 + 1e-5) + 1e-6)
    assert adv.min() >= 0.0 and adv.max() <= 1.0 and adv.shape == x.shape
    assert wrapped.rows <= 150 * len(x)  # at most `queries` per example
    acc = accuracy(trained_cnn, adv, y)
    assert acc < 0.8  # the batch is 100% correct before the attack


def test_flat_inputs_eps_zero_and_seed():
    model, _, _ = linear_model(in_dim=12)
    x = np.random.RandomState(0).uniform(0, 1, (6, 12)).astype("float32")
    for norm, eps in (("linf", 0.2), ("l2", 0.5)):
        a = square(model, x, eps=eps, norm=norm, queries=30, seed=4).numpy()
        b = square(model, x, eps=eps, norm=norm, queries=30, seed=4).numpy()
        np.testing.assert_array_equal(a, b)
        assert np.all(_norm(a - x, norm) <= eps * (1 + 1e-5) + 1e-6)
    np.testing.assert_array_equal(square(model, x, eps=0.0, queries=10), x)


def test_bad_arguments():
    model, _, _ = linear_model()
    x = np.full((2, 6), 0.5, "float32")
    with pytest.raises(ValueError, match=r"Received: queries=1"):
        square(model, x, eps=0.1, queries=1)
    with pytest.raises(ValueError, match=r"Received: p_init=1\.5"):
        square(model, x, eps=0.1, p_init=1.5)
    with pytest.raises(ValueError, match=r"Received: eps=-1"):
        square(model, x, eps=-1)


def _small_conv(channels, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((12, 12, channels)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(5)])


@pytest.mark.parametrize("channels", [1, 3])
def test_l2_norm_is_eps_without_a_box_and_within_it_with_one(channels):
    # Algorithm 3 keeps ||delta||_2 = eps; the box can only shorten it.
    model = _small_conv(channels)
    rng = np.random.RandomState(1)
    x = rng.rand(16, 12, 12, channels).astype("float32")
    free = square(model, x, eps=1.0, norm="l2", clip=None, queries=60,
                  seed=0).numpy()
    pred = np.argmax(model(x), 1)
    moved = np.any((free != x).reshape(16, -1), 1)
    assert moved.sum() >= 12  # the initial point is always taken
    np.testing.assert_allclose(_norm(free - x, "l2")[moved], 1.0, rtol=1e-5)
    assert np.all(np.argmax(model(free), 1)[~moved] != pred[~moved])
    # Inputs at the box: clipping binds, the norm stays at most eps.
    x[:, ::2] = 0.0
    boxed = square(model, x, eps=3.0, norm="l2", queries=60, seed=0).numpy()
    assert boxed.min() >= 0.0 and boxed.max() <= 1.0
    norms = _norm(boxed - x, "l2")
    assert np.all(norms <= 3.0 * (1 + 1e-5)) and norms.max() > 1.0


def test_l2_fools_at_least_as_many_as_before(trained_cnn, cnn_test_batch):
    # 100 correctly classified test images, eps 1.5, 300 queries. Measured
    # over seeds 0-5: before (the start kept only when it lowered the loss,
    # the last window offset allowed, seed s + 1 drawing seed s's numbers
    # one step later) 31 29 26 28 30 27 fooled, mean 28.5; now 27 27 28 28
    # 30 29, mean 28.2: the same within the seeds' spread on this model
    # (on the PGD-trained one of benchmarks/autoattack.py, 1000 queries:
    # 20.1 -> 21.8 of 189, the reference 22.2; see `_square._window`).
    # One seed must reach the old worst seed.
    x, y = cnn_test_batch
    x, y = x[:100], y[:100]
    adv = square(trained_cnn, x, y, eps=1.5, norm="l2", queries=300,
                 seed=0).numpy()
    assert np.all(_norm(adv - x, "l2") <= 1.5 * (1 + 1e-5))
    fooled = int(np.sum(np.argmax(trained_cnn(adv), 1) != y))
    assert fooled >= 26
