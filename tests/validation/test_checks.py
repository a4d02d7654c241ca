"""Every bad input raises a ValueError that names the argument and value."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import fgsm, pgd
from tests.conftest import linear_model

X = np.full((4, 6), 0.5, "float32")
Y = np.array([0, 1, 2, 3])


@pytest.fixture(scope="module")
def model():
    return linear_model()[0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps=-0.1), r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
        (dict(eps=float("nan")), r"Received: eps=nan"),
        (dict(eps=float("inf")), r"Received: eps=inf"),
        (dict(eps="big"), r"eps must be a number\. Received: eps='big'"),
        (dict(eps=[0.1, 0.2]), r"eps must be a scalar"),
        (dict(eps=0.1, norm="l3"), r"norm must be one of .* Received: norm='l3'"),
        (dict(eps=0.1, loss="hinge"), r"Received: loss='hinge'"),
        (dict(eps=0.1, steps=0), r"steps must be >= 1\. Received: steps=0"),
        (dict(eps=0.1, steps=2.5), r"steps must be an integer\. Received: steps=2\.5"),
        (dict(eps=0.1, restarts=0), r"Received: restarts=0"),
        (dict(eps=0.1, step_size=0.0), r"Received: step_size=0\.0"),
        (dict(eps=0.1, momentum=-1.0), r"Received: momentum=-1\.0"),
        (dict(eps=0.1, clip=(1.0, 0.0)), r"Received: clip=\(1\.0, 0\.0\)"),
        (dict(eps=0.1, clip=5), r"Received: clip=5"),
        (dict(eps=0.1, seed="a"), r"Received: seed='a'"),
        (dict(eps=0.1, eot_samples=0), r"Received: eot_samples=0"),
        (dict(eps=0.1, from_logits="yes"), r"Received: from_logits='yes'"),
    ],
)
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pgd(model, X, Y, **kwargs)


@pytest.mark.parametrize(
    "y,match",
    [
        (np.array([0, 1, 2]), r"y must have one label per example of x \(4\)"),
        (
            np.array([0, 1, 2, 4]),
            r"classes in \[0, 4\)\. Received: y with values in \[0, 4\]",
        ),
        (np.array([0, 1, -1, 2]), r"Received: y with values in \[-1, 2\]"),
        (np.zeros((4, 3)), r"one-hot \(batch, 4\)\. Received: y with shape \(4, 3\)"),
        (np.zeros((4, 2, 2)), r"Received: y with shape \(4, 2, 2\)"),
        (np.array([0.5, 1, 2, 3]), r"integer class indices"),
    ],
)
def test_bad_labels(model, y, match):
    with pytest.raises(ValueError, match=match):
        pgd(model, X, y, eps=0.1)
    with pytest.raises(ValueError, match=match):
        fgsm(model, X, y, eps=0.1)


@pytest.mark.parametrize(
    "x,match",
    [
        (np.full((4, 6), 1.5, "float32"), r"x must lie inside clip=\(0\.0, 1\.0\)"),
        (np.array([[np.nan] * 6] * 4, "float32"), r"x must not contain NaN or inf"),
        (np.full((4, 6), np.inf, "float32"), r"x must not contain NaN or inf"),
        (
            np.ones((4, 6), "int32"),
            r"Integer inputs \(such as token ids\) cannot be perturbed: pass "
            r"perturb_layer=.*Received: x with dtype int32",
        ),
        (np.ones((6,), "float32"), r"x must be batched"),
        (np.ones((0, 6), "float32"), r"at least one example"),
    ],
)
def test_bad_x(model, x, match):
    with pytest.raises(ValueError, match=match):
        pgd(model, x, eps=0.1)


def test_x_outside_box_allowed_with_clip_none(model):
    out = pgd(model, np.full((4, 6), 1.5, "float32"), eps=0.1, clip=None)
    assert out.shape == (4, 6)


def test_targeted_without_labels(model):
    with pytest.raises(ValueError, match=r"Received: y=None with targeted=True"):
        pgd(model, X, eps=0.1, targeted=True)


def test_dlr_needs_three_classes():
    two_class, _, _ = linear_model(classes=2)
    with pytest.raises(ValueError, match=r"needs at least 3 classes"):
        pgd(two_class, X, eps=0.1, loss="dlr")


def test_model_without_gradient(model):
    def hard(inputs):
        return tf.one_hot(tf.argmax(model(inputs), axis=-1), 4)

    with pytest.raises(ValueError, match=r"no gradient with respect to its input"):
        pgd(hard, X, Y, eps=0.1)


def test_model_not_callable():
    with pytest.raises(ValueError, match=r"model must be callable"):
        pgd("model.keras", X, eps=0.1)


def test_inputs_untouched(model):
    x = X.copy()
    pgd(model, x, Y, eps=0.3, seed=0)
    np.testing.assert_array_equal(x, X)


def test_graph_mode_label_range_asserts(model):
    @tf.function
    def attack(y):
        return pgd(model, tf.constant(X), y, eps=0.1, steps=2, seed=0)

    with pytest.raises(tf.errors.InvalidArgumentError, match="classes"):
        attack(tf.constant([0, 1, 2, 9]))
