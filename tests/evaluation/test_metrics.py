"""The metrics without eps (evaluation/metrics.py), exact on linear models:
loss sensitivity and the input gradient by hand, DeepFool's empirical
robustness against the distance to a linear boundary."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.evaluation import empirical_robustness, loss_sensitivity
from keras_adv.evaluation.metrics import input_gradient
from tests.conftest import ce_input_gradient, linear_model, one_line_each_way


def test_loss_sensitivity_is_the_mean_gradient_norm_by_hand():
    model, w, b = linear_model()
    x = np.random.default_rng(0).random((10, 6)).astype("float32")
    y = np.arange(10) % 4
    grad = ce_input_gradient(x.astype(np.float64), y, w, b)
    np.testing.assert_allclose(input_gradient(model, x, y), grad, rtol=1e-4,
                               atol=1e-6)
    expected = np.linalg.norm(grad, axis=1).mean()
    assert loss_sensitivity(model, x, y, batch_size=3) == pytest.approx(
        expected, rel=1e-4)
    # One-hot labels and a softmax output read the same.
    soft, _, _ = linear_model(softmax=True)
    assert loss_sensitivity(soft, x, np.eye(4)[y]) == pytest.approx(
        expected, rel=1e-4)


def test_empirical_robustness_of_a_linear_binary_model():
    """Two classes, one boundary: DeepFool's L2 step is the distance
    |w.x + b| / ||w|| (times 1 + overshoot), so rho is known exactly."""
    model, w, b = linear_model(classes=2)
    x = np.random.default_rng(1).random((8, 6)).astype("float32") * 0.2 + 0.4
    margin = x @ (w[:, 1] - w[:, 0]) + (b[1] - b[0])
    dist = np.abs(margin) / np.linalg.norm(w[:, 1] - w[:, 0])
    rho = 1.02 * dist / np.linalg.norm(x, axis=1)
    er = empirical_robustness(model, x, clip=None, overshoot=0.02)
    assert (er.evaluated, er.failed) == (8, 0)
    assert er.median == pytest.approx(np.median(rho), rel=1e-3)
    assert er.mean == pytest.approx(np.mean(rho), rel=1e-3)


def test_labels_are_checked_against_the_class_count_of_a_callable():
    model, _, _ = linear_model()
    calls = []

    def plain(x):
        calls.append(1)
        return model(x)

    x = np.full((4, 6), 0.5, "float32")
    with pytest.raises(ValueError, match=r"classes in \[0, 4\)\. Received: "
                       r"y with values in \[0, 7\]"):
        loss_sensitivity(plain, x, np.array([0, 1, 2, 7]))
    assert calls == [1]  # one forward pass reads the class count
    with pytest.raises(ValueError, match=r"Received: y with values"):
        empirical_robustness(model, x, tf.constant([0, 1, 2, 9]))


@pytest.mark.parametrize("fn, done", [
    (empirical_robustness, "attacked"), (loss_sensitivity, "differentiated"),
], ids=["empirical_robustness", "loss_sensitivity"])
def test_progress_counts_the_examples_on_stderr(capsys, fn, done):
    model, _, _ = linear_model(classes=2)
    x = np.random.default_rng(1).random((8, 6)).astype("float32") * 0.2 + 0.4
    y = model(x).numpy().argmax(-1)
    quiet, shown = one_line_each_way(
        lambda progress: fn(model, x, y, batch_size=3, progress=progress),
        capsys, f"{fn.__name__}: {done} 8/8 examples (")
    assert shown == quiet
