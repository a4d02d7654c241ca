"""Gradient matching (Witches' Brew) on a tiny model: constraints, labels,
the alignment it optimises, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.poisoning import gradient_matching
from keras_adv.poisoning.gradient_matching import (
    matching_loss,
    target_gradient,
)
from tests.conftest import one_line_each_way


def tiny():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(3)])
    rng = np.random.RandomState(0)
    x = rng.uniform(size=(60, 6, 6, 1)).astype("float32")
    y = np.arange(60) % 3
    return model, x, y


def test_constraints_and_alignment():
    model, x, y = tiny()
    x0, y0 = x.copy(), y.copy()
    xt = np.full((6, 6, 1), 0.5, "float32")
    p = gradient_matching(model, x, y, x_target=xt, adv_class=2, budget=0.1,
                          eps=0.1, steps=40, restarts=2, seed=0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p.y, y0)
    assert len(p.index) == 6 and np.all(y[p.index] == 2)
    assert p.index.dtype == np.int64 and np.all(np.diff(p.index) > 0)
    delta = p.x - x
    assert np.abs(delta).max() <= 0.1 + 1e-6
    assert p.x.min() >= 0 and p.x.max() <= 1
    rest = np.setdiff1d(np.arange(60), p.index)
    np.testing.assert_array_equal(p.x[rest], x[rest])
    tg = target_gradient(model, xt[None], 2)
    labels = tf.constant(y[p.index])
    before = float(matching_loss(model, tf.constant(x[p.index]), labels, tg))
    after = float(matching_loss(model, tf.constant(p.x[p.index]), labels, tg))
    assert after < 0.5 * before


def test_matching_loss_zero_for_same_batch():
    model, x, _ = tiny()
    tg = target_gradient(model, x[:4], 1)
    loss = matching_loss(model, tf.constant(x[:4]), tf.fill([4], 1), tg)
    assert abs(float(loss)) < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    (dict(budget=1.5), "Received: budget=1.5"),
    (dict(budget=0.5), "budget asks for 30 images of class 2 but it has 20"),
    (dict(adv_class=3), "Received: adv_class=3"),
    (dict(eps=-1.0), "Received: eps=-1.0"),
    (dict(steps=0), "Received: steps=0"),
    (dict(restarts=0), "Received: restarts=0"),
    (dict(x_target=np.zeros((5, 5, 1))), "x_target must be an image"),
])
def test_bad_inputs(kwargs, match):
    model, x, y = tiny()
    args = dict(x_target=np.zeros((6, 6, 1)), adv_class=2, budget=0.1,
                eps=0.1, steps=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradient_matching(model, x, y, **args)


def test_progress_counts_the_steps_on_stderr(capsys):
    model, x, y = tiny()
    xt = np.full((6, 6, 1), 0.5, "float32")
    kwargs = dict(x_target=xt, adv_class=2, budget=0.05, eps=0.1, steps=3,
                  restarts=2, seed=0)
    quiet, shown = one_line_each_way(
        lambda progress: gradient_matching(model, x, y, progress=progress,
                                           **kwargs),
        capsys, "gradient_matching: brewed 6/6 steps (")  # the end's line
    np.testing.assert_array_equal(quiet.x, shown.x)
