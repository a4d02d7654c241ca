"""PGD: property tests on random inputs and behaviour on a trained CNN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import attack_objective, fgsm, pgd
from tests.conftest import accuracy, linear_model, uniform_batch

NORMS = ["linf", "l2"]


def _norm(d, norm):
    d = d.reshape(len(d), -1)
    return np.abs(d).max(1) if norm == "linf" else np.linalg.norm(d, axis=1)


@pytest.fixture
def rand_data():
    return uniform_batch(3, 32, 0.0, 1.0)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("eps", [0.05, 0.3, 2.0])
def test_stays_in_ball_and_box(rand_data, norm, eps):
    x, y = rand_data
    model, _, _ = linear_model()
    x_adv = pgd(model, x, y, eps=eps, steps=7, norm=norm, seed=1).numpy()
    assert np.all(_norm(x_adv - x, norm) <= eps * (1 + 1e-5) + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype


@pytest.mark.parametrize("norm", NORMS)
def test_no_box_when_clip_none(norm):
    model, _, _ = linear_model()
    x = np.random.RandomState(0).uniform(-3, 3, (8, 6)).astype("float32")
    x_adv = pgd(model, x, eps=1.0, norm=norm, clip=None, seed=0).numpy()
    assert np.all(_norm(x_adv - x, norm) <= 1.0 + 1e-5)
    assert np.abs(x_adv - x).max() > 0.1


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_eps_zero_returns_x(rand_data, norm, momentum):
    x, y = rand_data
    model, _, _ = linear_model()
    out = pgd(model, x, y, eps=0.0, norm=norm, momentum=momentum, seed=0)
    np.testing.assert_array_equal(out.numpy(), x)
    np.testing.assert_array_equal(fgsm(model, x, y, eps=0.0, norm=norm), x)


@pytest.mark.parametrize("norm", NORMS)
def test_same_seed_same_result(rand_data, norm):
    x, y = rand_data
    model, _, _ = linear_model()
    kw = dict(eps=0.2, norm=norm, steps=2, step_size=0.01)  # start matters
    a = pgd(model, x, y, seed=7, **kw).numpy()
    b = pgd(model, x, y, seed=7, **kw).numpy()
    c = pgd(model, x, y, seed=8, **kw).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


@pytest.mark.parametrize("norm", NORMS)
def test_restarts_never_weaker(trained_cnn, cnn_test_batch, norm):
    x, y = cnn_test_batch
    x, y = x[:64], y[:64]
    eps = 0.08 if norm == "linf" else 0.8  # weak enough to leave survivors
    kw = dict(eps=eps, norm=norm, steps=5, seed=3)
    one = pgd(trained_cnn, x, y, restarts=1, **kw)
    many = pgd(trained_cnn, x, y, restarts=4, **kw)

    def score(xa):
        z = trained_cnn(xa, training=False)
        wrong = (np.argmax(z, 1) != y)
        return wrong, attack_objective(z, y).numpy()

    wrong1, loss1 = score(one)
    wrong4, loss4 = score(many)
    assert np.all(wrong4 >= wrong1)  # every success of one run is kept
    same = wrong4 == wrong1
    assert np.all(loss4[same] >= loss1[same] - 1e-4)
    assert 0 < wrong1.mean() < 1  # the comparison is not vacuous


def test_undefended_cnn_collapses_linf(trained_cnn, cnn_test_batch):
    x, y = cnn_test_batch
    assert accuracy(trained_cnn, x, y) == 1.0
    x_adv = pgd(trained_cnn, x, y, eps=0.3, steps=20, norm="linf", seed=0)
    assert accuracy(trained_cnn, x_adv, y) < 0.05


def test_undefended_cnn_collapses_l2(trained_cnn, cnn_test_batch):
    x, y = cnn_test_batch
    x_adv = pgd(trained_cnn, x, y, eps=3.0, steps=40, norm="l2", seed=0)
    assert accuracy(trained_cnn, x_adv, y) < 0.06


@pytest.mark.parametrize("loss", ["ce", "margin", "dlr"])
def test_losses_break_cnn(trained_cnn, cnn_test_batch, loss):
    x, y = cnn_test_batch
    x_adv = pgd(trained_cnn, x, y, eps=0.3, steps=20, loss=loss, seed=0)
    assert accuracy(trained_cnn, x_adv, y) < 0.05


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_targeted_reaches_target(trained_cnn, cnn_test_batch, loss):
    x, y = cnn_test_batch
    target = (y + 1) % 10
    x_adv = pgd(trained_cnn, x, target, eps=0.3, steps=40, targeted=True,
                loss=loss, seed=0)
    pred = np.argmax(trained_cnn.predict(x_adv, verbose=0), axis=1)
    assert np.mean(pred == target) > 0.8


def test_targeted_dlr_lifts_target_over_source(trained_cnn, cnn_test_batch):
    """Targeted DLR (Croce & Hein) maximises z_t - z_source, not the target's
    rank: it lifts the target above the true class, which misclassifies."""
    x, y = cnn_test_batch
    target = (y + 1) % 10
    x_adv = pgd(trained_cnn, x, target, eps=0.3, steps=40, targeted=True,
                loss="dlr", seed=0)
    z = trained_cnn.predict(x_adv, verbose=0)
    rows = np.arange(len(y))
    assert np.mean(z[rows, target] > z[rows, y]) > 0.8
    assert np.mean(np.argmax(z, axis=1) != y) > 0.8


def test_mim_and_bim_are_stronger_than_fgsm(trained_cnn, cnn_test_batch):
    x, y = cnn_test_batch
    eps = 0.1
    acc_fgsm = accuracy(trained_cnn, fgsm(trained_cnn, x, y, eps=eps), y)
    bim = pgd(trained_cnn, x, y, eps=eps, steps=10, random_start=False)
    mim = pgd(trained_cnn, x, y, eps=eps, steps=10, momentum=1.0, seed=0)
    assert accuracy(trained_cnn, bim, y) <= acc_fgsm
    assert accuracy(trained_cnn, mim, y) <= acc_fgsm


def test_bim_is_deterministic_without_seed(rand_data):
    x, y = rand_data
    model, _, _ = linear_model()
    a = pgd(model, x, y, eps=0.1, random_start=False)
    b = pgd(model, x, y, eps=0.1, random_start=False)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs(trained_cnn, cnn_test_batch, dtype):
    x, y = cnn_test_batch
    x_low = tf.cast(x[:64], dtype)
    x_adv = pgd(trained_cnn, x_low, y[:64], eps=0.3, steps=10, seed=0)
    assert x_adv.dtype == x_low.dtype and x_adv.shape == x_low.shape
    diff = tf.cast(x_adv, "float32") - tf.cast(x_low, "float32")
    assert np.all(np.isfinite(diff.numpy()))
    assert float(tf.reduce_max(tf.abs(diff))) <= 0.3 + 2e-3  # one ulp
    assert accuracy(trained_cnn, tf.cast(x_adv, "float32"), y[:64]) < 0.1


def test_inside_tf_function(trained_cnn, cnn_test_batch):
    x, y = cnn_test_batch
    eps = tf.Variable(0.3)

    @tf.function
    def attack(xb, yb):
        return pgd(trained_cnn, xb, yb, eps=eps, steps=10, seed=0)

    graph = attack(tf.constant(x), tf.constant(y)).numpy()
    eager = pgd(trained_cnn, x, y, eps=0.3, steps=10, seed=0).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-6)
    eps.assign(0.0)  # a changed variable takes effect without retracing
    np.testing.assert_array_equal(attack(tf.constant(x), tf.constant(y)), x)


def test_eot_on_deterministic_model_changes_nothing():
    """EOT averages n identical gradients: the result equals plain PGD."""
    model, _, _ = linear_model()
    x = np.full((4, 6), 0.5, "float32")
    a = pgd(model, x, eps=0.1, steps=3, eot_samples=4, seed=0)
    c = pgd(model, x, eps=0.1, steps=3, seed=0)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_eot_uses_the_mean_gradient():
    """A model whose two halves of every batch come from different linear
    models: with eot_samples=2 each example is seen once by each, and every
    step must follow the exact mean of both gradients."""
    model_a, wa, ba = linear_model(seed=0)
    model_b, wb, bb = linear_model(seed=1)

    def two_faced(inputs):
        first = tf.range(tf.shape(inputs)[0]) < tf.shape(inputs)[0] // 2
        return tf.where(first[:, None], model_a(inputs), model_b(inputs))

    rng = np.random.RandomState(2)
    x = rng.uniform(0.3, 0.7, (16, 6)).astype("float32")
    y = rng.randint(0, 4, 16)

    def grad(w, b):
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return (p - np.eye(4)[y]) @ w.T

    mean = (grad(wa, ba) + grad(wb, bb)) / 2
    got = pgd(two_faced, x, y, eps=0.05, steps=1, step_size=0.05,
              random_start=False, eot_samples=2, norm="l2")
    want = x + 0.05 * mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_eot_averages_a_stochastic_layer():
    """Dropout on the input zeroes about half of each sample's gradient;
    averaged over 64 passes (one random mask per copy) the gradient has the
    sign of the clean one almost everywhere."""
    model, w, b = linear_model()
    noisy = keras.Sequential([keras.Input((6,)), keras.layers.Dropout(0.5),
                              model])

    def call(inputs):
        return noisy(inputs, training=True)

    x = np.full((256, 6), 0.5, "float32")
    y = np.argmax(x @ w + b, axis=1)
    true_sign = np.sign(fgsm(model, x, y, eps=0.01).numpy() - x)

    def agreement(n):
        x_adv = pgd(call, x, y, eps=0.01, steps=1, step_size=0.01,
                    random_start=False, eot_samples=n)
        return np.mean(np.sign(x_adv.numpy() - x) == true_sign)

    assert agreement(1) < 0.7
    assert agreement(64) > 0.95


def test_halves_only_for_one_large_batch_without_restarts():
    from keras_adv.attacks import _pgd

    big, small = tf.zeros((_pgd.HALVES_FROM, 4)), tf.zeros((127, 4))
    assert _pgd._half(big, 1, None) == _pgd.HALVES_FROM // 2
    assert _pgd._half(small, 1, None) == 0
    assert _pgd._half(big, 2, None) == 0  # restarts: their own loops
    assert _pgd._half([big, big], 1, None) == 0  # several inputs
    assert _pgd._half(big, 1, lambda parts, rest: parts) == 0


@pytest.mark.parametrize("norm", NORMS)
def test_a_batch_in_halves_meets_the_same_points(trained_cnn, cnn_test_batch,
                                                 monkeypatch, norm):
    # 200 images run as two halves of 100; the same call with the split
    # turned off gives the same points (the starts are drawn for the whole
    # batch), up to the last bits of kernels run on another batch size:
    # at most 1% of the coordinates may differ.
    from keras_adv.attacks import _pgd, core

    x, y = cnn_test_batch
    eps = 0.1 if norm == "linf" else 1.5
    core._CACHE.pop(trained_cnn, None)  # a fresh trace, with the static batch
    halves = pgd(trained_cnn, x, y, eps=eps, norm=norm, steps=10,
                 seed=5).numpy()
    monkeypatch.setattr(_pgd, "HALVES_FROM", 10**9)
    core._CACHE.pop(trained_cnn, None)
    whole = pgd(trained_cnn, x, y, eps=eps, norm=norm, steps=10,
                seed=5).numpy()
    core._CACHE.pop(trained_cnn, None)
    assert np.mean(~np.isclose(halves, whole, atol=1e-5)) < 0.01
    assert _norm(halves - x, norm).max() <= eps + 1e-5
    assert accuracy(trained_cnn, halves, y) == pytest.approx(
        accuracy(trained_cnn, whole, y), abs=0.01)
