"""FGSM against NumPy on a linear softmax model."""

import numpy as np
import pytest

from keras_adv.attacks import fgsm
from tests.conftest import ce_input_gradient, linear_model, uniform_batch


def _numpy_fgsm(x, y, w, b, eps, norm, targeted=False):
    grad = ce_input_gradient(x, y, w, b)  # d CE / dx
    if targeted:
        grad = -grad
    if norm == "linf":
        step = np.sign(grad)
    else:
        step = grad / np.linalg.norm(grad, axis=1, keepdims=True)
    return np.clip(x + eps * step, 0.0, 1.0)


@pytest.fixture
def data():
    return uniform_batch(1, 16, 0.2, 0.8)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_numpy(data, norm, eps, targeted):
    x, y = data
    model, w, b = linear_model()
    got = fgsm(model, x, y, eps=eps, norm=norm, targeted=targeted).numpy()
    want = _numpy_fgsm(x, y, w, b, eps, norm, targeted)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_fgsm_softmax_model_uses_logits(data):
    x, y = data
    logits_model, w, b = linear_model()
    prob_model, _, _ = linear_model(softmax=True)
    got = fgsm(prob_model, x, y, eps=0.1).numpy()
    np.testing.assert_allclose(got, fgsm(logits_model, x, y, eps=0.1).numpy())
    np.testing.assert_allclose(got, _numpy_fgsm(x, y, w, b, 0.1, "linf"),
                               atol=1e-5)


def test_fgsm_probability_callable_with_from_logits_false(data):
    x, y = data
    logits_model, w, b = linear_model()

    def probs(inputs):  # a plain callable: no Keras softmax mark
        import tensorflow as tf
        return tf.nn.softmax(logits_model(inputs))

    got = fgsm(probs, x, y, eps=0.1, from_logits=False).numpy()
    np.testing.assert_allclose(got, _numpy_fgsm(x, y, w, b, 0.1, "linf"),
                               atol=1e-5)


def test_fgsm_one_hot_labels_equal_sparse(data):
    x, y = data
    model, _, _ = linear_model()
    a = fgsm(model, x, y, eps=0.1).numpy()
    b = fgsm(model, x, np.eye(4)[y], eps=0.1).numpy()
    np.testing.assert_array_equal(a, b)


def test_fgsm_default_labels_are_predictions(data):
    x, _ = data
    model, w, b = linear_model()
    pred = np.argmax(x @ w + b, axis=1)
    np.testing.assert_allclose(
        fgsm(model, x, eps=0.1).numpy(),
        _numpy_fgsm(x, pred, w, b, 0.1, "linf"), atol=1e-5)
