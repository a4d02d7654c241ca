"""Stochastic Activation Pruning: the exact sampling law and its plumbing."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import ops
from keras_adv.layers import StochasticActivationPruning as SAP
from keras_adv.layers.sap import drawn_at_least_once

H = np.array([[0.0, 0.1, -0.2, 0.3, 1.0, 2.4]], "float32")


def _keep_prob(h, r):
    p = np.abs(h) / np.abs(h).sum(axis=-1, keepdims=True)
    return 1.0 - (1.0 - p) ** r


def _samples(layer, h, n):
    batch = np.repeat(h, n, axis=0)
    return layer(batch).numpy()


def test_unbiased_mean():
    out = _samples(SAP(seed=0), H, 20000)
    np.testing.assert_allclose(out.mean(axis=0), H[0], atol=0.03)


def test_keep_frequencies_match_law():
    r = 6  # frac=1.0 and 6 activations
    out = _samples(SAP(seed=1), H, 20000)
    freq = (out != 0).mean(axis=0)
    want = _keep_prob(H, r)[0]
    # binomial standard error is at most 0.0036 for 20000 samples
    np.testing.assert_allclose(freq, want, atol=0.015)
    assert freq[0] == 0.0  # zero activations are never kept


@pytest.mark.parametrize("frac", [0.5, 2.0])
def test_frac_sets_the_number_of_draws(frac):
    r = math.ceil(frac * 6)
    out = _samples(SAP(frac=frac, seed=2), H, 20000)
    np.testing.assert_allclose((out != 0).mean(axis=0),
                               _keep_prob(H, r)[0], atol=0.015)


def test_kept_values_scaled_exactly():
    out = _samples(SAP(seed=3), H, 200)
    q = _keep_prob(H, 6)[0]
    scale = np.divide(1.0, q, out=np.zeros_like(q), where=q > 0)
    kept = out != 0
    want = np.broadcast_to(H * scale, out.shape)
    np.testing.assert_allclose(out[kept], want[kept], rtol=1e-5)


def test_zero_input_gives_zeros():
    layer = SAP(seed=0)
    x = np.zeros((3, 4, 4, 2), "float32")
    out = layer(x).numpy()
    assert np.array_equal(out, x) and np.isfinite(out).all()
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        y = tf.reduce_sum(layer(xt))
    assert np.isfinite(tape.gradient(y, xt).numpy()).all()


def test_gradient_is_mask_times_upstream():
    layer = SAP(seed=4)
    x = tf.constant(np.random.RandomState(0).rand(2, 3, 5).astype("float32"))
    upstream = tf.constant(np.random.RandomState(1).rand(2, 3, 5).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * upstream)
    grad = tape.gradient(loss, x).numpy()
    mask = out.numpy() / x.numpy()  # the (constant) mask applied this call
    np.testing.assert_allclose(grad, mask * upstream.numpy(), rtol=1e-5)


def test_any_rank_and_dtype():
    for shape in [(2, 5), (2, 3, 4), (2, 3, 4, 5)]:
        x = np.random.RandomState(0).rand(*shape).astype("float32")
        assert SAP(seed=0)(x).shape == shape
    out = SAP(seed=0, dtype="bfloat16")(tf.constant(H, tf.bfloat16))
    assert out.dtype == tf.bfloat16 and np.isfinite(tf.cast(out, "float32")).all()


def test_training_mode():
    x = np.random.RandomState(0).rand(4, 8).astype("float32")
    np.testing.assert_array_equal(SAP(seed=0)(x, training=True), x)
    assert not np.array_equal(SAP(seed=0, active_in_training=True)(x, training=True), x)


def test_seeded_runs_reproducible_and_stochastic():
    x = np.random.RandomState(0).rand(4, 50).astype("float32")
    a, b = SAP(seed=5), SAP(seed=5)
    first = a(x).numpy()
    np.testing.assert_array_equal(first, b(x).numpy())
    assert not np.array_equal(first, a(x).numpy())  # a new mask per call


def test_inside_tf_function_changes_per_call():
    layer = SAP(seed=6)
    f = tf.function(lambda t: layer(t))
    x = tf.constant(np.random.RandomState(0).rand(4, 50).astype("float32"))
    assert not np.array_equal(f(x).numpy(), f(x).numpy())


@pytest.mark.parametrize("frac", [0, -1.0, float("nan"), "a"])
def test_bad_frac(frac):
    with pytest.raises(ValueError, match="frac"):
        SAP(frac=frac)


def test_config_round_trip():
    layer = SAP(frac=0.5, seed=3, active_in_training=True, name="sap")
    clone = SAP.from_config(layer.get_config())
    assert (clone.frac, clone.seed, clone.active_in_training) == (0.5, 3, True)


def test_save_load_export_stay_stochastic(tmp_path):
    model = keras.Sequential([
        keras.Input((20,)), keras.layers.Dense(16, activation="relu"),
        SAP(seed=0), keras.layers.Dense(3),
    ])
    x = np.random.RandomState(0).rand(8, 20).astype("float32")
    path = str(tmp_path / "sap.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[1], SAP)
    assert not np.array_equal(loaded(x).numpy(), loaded(x).numpy())
    export_dir = str(tmp_path / "served")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    a, b = served.serve(tf.constant(x)).numpy(), served.serve(tf.constant(x)).numpy()
    assert not np.array_equal(a, b)
    # still unbiased on average in the served graph
    mean = np.mean([served.serve(tf.constant(x)).numpy() for _ in range(300)], axis=0)
    dense = keras.Sequential(model.layers[:1] + model.layers[2:])
    np.testing.assert_allclose(mean, dense(x).numpy(), atol=0.1)


def test_law_on_a_wide_heavy_tailed_row():
    """3000 activations (30% zeros, Pareto magnitudes): the frequency of
    each activation being kept over 2000 masks matches q_j, in aggregate
    (the expected count of kept activations) and per activation."""
    rng = np.random.RandomState(0)
    n = 3000
    h = (rng.pareto(1.5, n) * (rng.rand(n) < 0.7)).astype("float32")
    p = h / h.sum()
    q = 1 - (1 - p.astype(np.float64)) ** n
    draws = tf.function(lambda t: drawn_at_least_once(t, n, ops.uniform))
    rows = tf.constant(np.tile(p[None], (200, 1)))
    freq = sum(draws(rows).numpy().sum(axis=0) for _ in range(10)) / 2000
    assert freq[p == 0].max() == 0.0
    # kept per mask: mean over 2000 masks, sd of a mask's count < 16
    assert abs(freq.sum() - q.sum()) < 5 * 16 / np.sqrt(2000)
    z = (freq - q) / np.sqrt(q * (1 - q) / 2000 + 1e-12)
    assert abs(z[p > 0].mean()) < 0.2 and np.abs(z[p > 0]).max() < 6


def test_seeded_and_runtime_draws_both_follow_the_law():
    layer = SAP(seed=7)
    with ops.runtime_random():
        out = _samples(layer, H, 20000)
    np.testing.assert_allclose((out != 0).mean(axis=0), _keep_prob(H, 6)[0],
                               atol=0.015)
