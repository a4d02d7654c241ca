"""FAB and FAB-T: exact on linear models, the box kept, eps and restarts."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import fab
from keras_adv.attacks._fab import project
from tests.conftest import linear_model

D = 10


def hyperplane(seed=0):
    """A one-unit linear model z = w . x + b, z centred on the box."""
    rng = np.random.RandomState(seed)
    w = rng.normal(size=(D,)).astype("float32")
    b = np.float32(-0.5 * w.sum())
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([w[:, None], np.array([b])])
    x = rng.rand(64, D).astype("float32") * 0.6 + 0.2
    return model, w, b, x


def norm_of(d, norm):
    return np.linalg.norm(d, axis=1) if norm == "l2" else np.abs(d).max(1)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_linear_two_class_model_gives_the_exact_minimum(norm):
    model, w, b, x = hyperplane()
    z = x @ w + b
    y = (z > 0).astype(int)
    adv = fab(model, x, y, norm=norm, steps=100, seed=0).numpy()
    assert np.all(((adv @ w + b) > 0).astype(int) != y)  # all fooled
    assert adv.min() >= 0.0 and adv.max() <= 1.0         # the box kept
    # The exact minimum: the projection onto the hyperplane (L2) and the
    # L-inf-closest point |z| / ||w||_1 (the box does not bind here).
    exact = np.abs(z) / (np.linalg.norm(w) if norm == "l2"
                         else np.abs(w).sum())
    ratio = norm_of(adv - x, norm) / exact
    assert ratio.min() >= 1.0 - 1e-4   # never below the minimum
    assert ratio.max() <= 1.05         # within 5% (measured: 1.0053)
    if norm == "l2":  # and along the normal of the hyperplane
        d = (adv - x) / np.linalg.norm(adv - x, axis=1, keepdims=True)
        cos = np.abs(d @ (w / np.linalg.norm(w)))
        assert cos.min() > 0.9999


def test_box_binds_and_is_kept():
    # Points near a corner: the unconstrained projection leaves the box.
    model, w, b, _ = hyperplane(seed=1)
    x = np.where(w > 0, 0.02, 0.98)[None].astype("float32").repeat(4, 0)
    x[:, :3] = 0.5
    y = ((x @ w + b) > 0).astype(int)
    adv = fab(model, x, y, norm="l2", steps=100).numpy()
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    fooled = ((adv @ w + b) > 0).astype(int) != y
    d = project(tf.constant(x), tf.constant(np.tile(w, (4, 1))),
                tf.constant(-(x @ w + b)), "l2", (0.0, 1.0)).numpy()
    exact = np.linalg.norm(d, axis=1)
    got = norm_of(adv - x, "l2")
    assert np.all(fooled)
    assert np.all(got >= exact * (1 - 1e-4)) and np.all(got <= exact * 1.05)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_project_is_feasible_and_minimal(norm):
    rng = np.random.RandomState(2)
    p = rng.rand(16, 7).astype("float32")
    w = rng.normal(size=(16, 7)).astype("float32")
    c = rng.normal(size=16).astype("float32") * 0.3
    d = project(tf.constant(p), tf.constant(w), tf.constant(c), norm,
                (0.0, 1.0)).numpy()
    reachable = np.abs(c) <= np.where(np.sign(c)[:, None] * w > 0,
                                      1 - p, p).__mul__(np.abs(w)).sum(1)
    np.testing.assert_allclose((w * d).sum(1)[reachable], c[reachable],
                               atol=1e-5)
    assert np.all(p + d >= -1e-6) and np.all(p + d <= 1 + 1e-6)
    # No random feasible point on the hyperplane is shorter.
    for _ in range(200):
        r = rng.normal(size=(16, 7)).astype("float32")
        r -= ((w * r).sum(1) - c)[:, None] * w / (w * w).sum(1, keepdims=True)
        ok = reachable & np.all((p + r >= 0) & (p + r <= 1), axis=1)
        assert np.all(norm_of(d, norm)[ok] <= norm_of(r, norm)[ok] + 1e-5)
    # Without a box: the closed forms.
    free = project(tf.constant(p), tf.constant(w), tf.constant(c), norm,
                   None).numpy()
    if norm == "l2":
        expected = c[:, None] * w / (w * w).sum(1, keepdims=True)
    else:
        expected = (c / np.abs(w).sum(1))[:, None] * np.sign(w)
    np.testing.assert_allclose(free, expected, atol=1e-5)


def test_multiclass_untargeted_and_fab_t_break_and_respect_eps():
    model = linear_model(in_dim=D, classes=5, seed=3)[0]
    x = np.random.RandomState(4).rand(32, D).astype("float32")
    pred = np.argmax(model(x), 1)
    adv = fab(model, x, norm="linf", steps=50, seed=0).numpy()
    assert np.all(np.argmax(model(adv), 1) != pred)
    minimal = np.abs(adv - x).max(1)
    eps = float(np.median(minimal))
    for targeted in (False, True):
        adv = fab(model, x, pred, norm="linf", eps=eps, steps=50, seed=0,
                  targeted=targeted, target_classes=4, restarts=2).numpy()
        moved = np.abs(adv - x).max(1)
        broken = np.argmax(model(adv), 1) != pred
        assert np.all(moved[broken] <= eps + 1e-6)
        np.testing.assert_array_equal(adv[~broken], x[~broken])  # x kept
        assert broken.mean() >= 0.45  # about half are within the median
    same = fab(model, x, pred, norm="linf", eps=eps, steps=50, seed=0,
               targeted=True, restarts=2).numpy()
    np.testing.assert_array_equal(same, adv)  # seeded and repeatable
    batched = fab(model, x, pred, norm="linf", eps=eps, steps=50, seed=0,
                  targeted=True, restarts=2, batch_size=8).numpy()
    assert (np.argmax(model(batched), 1) != pred).mean() >= 0.45


@pytest.mark.parametrize("kwargs,match", [
    (dict(norm="l3"), r"Received: norm='l3'"),
    (dict(eps=-0.1), r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
    (dict(steps=0), r"steps must be >= 1\. Received: steps=0"),
    (dict(eta=0.9), r"eta must be a number >= 1\. Received: eta=0\.9"),
    (dict(beta=1.5), r"Received: beta=1\.5"),
    (dict(target_classes=0), r"Received: target_classes=0"),
    (dict(batch_size=0), r"Received: batch_size=0"),
])
def test_bad_arguments(kwargs, match):
    model = linear_model(in_dim=D, classes=3)[0]
    x = np.full((2, D), 0.5, "float32")
    with pytest.raises(ValueError, match=match):
        fab(model, x, **kwargs)


def test_non_finite_model_raises():
    def nan_model(x):
        return tf.fill([tf.shape(x)[0], 3], np.nan) + tf.reduce_sum(x, 1,
                                                                    True)
    with pytest.raises(ValueError, match="model gave non-finite"):
        fab(nan_model, np.full((2, D), 0.5, "float32"), np.zeros(2, int))


def test_docstring_example_runs():
    from tests.conftest import run_examples

    run_examples("keras_adv.attacks._fab")
