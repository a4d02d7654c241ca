"""validation/data.py: inputs, labels, boxes and images, through the
attacks and directly."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv import validation
from keras_adv.attacks import fgsm, pgd
from tests.validation.conftest import X, Y


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


def test_labels_from_every_encoding():
    assert validation.check_labels(np.eye(3)[[2, 0]], 2, 3).numpy().tolist() \
        == [2, 0]
    assert validation.check_labels([[1], [0]], 2, 3).numpy().tolist() == [1, 0]
    labels, k, one_hot = validation.check_label_array(np.eye(4)[[3, 1]], 2)
    assert labels.tolist() == [3, 1] and (k, one_hot) == (4, True)
    with pytest.raises(ValueError, match=r"^y must be < num_classes=3\. "
                       r"Received: y with label 3$"):
        validation.check_label_array([0, 3], 2, 3)


def test_data_box_and_images():
    assert validation.data_box(np.zeros(2, "uint8")) == (0.0, 255.0)
    assert validation.data_box(np.zeros(2, "float32")) == (0.0, 1.0)
    assert validation.data_box(None, None) is None
    with pytest.raises(ValueError, match=r"^images must lie in the data box "
                       r"\[0, 255\]\. Received: images with values in "
                       r"\[300, 300\]"):
        validation.check_images(np.full((1, 2, 2, 1), 300, "int32"),
                                "images", clip="auto")
    with pytest.raises(ValueError, match=r"rank 4\)\. Received: x of shape "
                       r"\(2, 2\)"):
        validation.check_images(np.zeros((2, 2)))


def test_input_shape_against_the_model(model):
    validation.check_input_shape(model, X)
    with pytest.raises(ValueError, match=r"x must match the input shape of "
                       r"the model \(None, 6\)\. Received: x with shape "
                       r"\(4, 5\)$"):
        validation.check_input_shape(model, np.zeros((4, 5), "float32"))
