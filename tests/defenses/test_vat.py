"""VAT: the power iteration finds the KL Hessian's dominant direction, the
perturbation's norm, the loss on unlabeled rows, bad arguments."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.defenses import (
    VAT,
)
from tests.conftest import linear_model, softmax
from tests.defenses.unlabeled import SCE, task_loss


def _kl_hessian(w, b, x):
    """Hessian in r of KL(p(x) || p(x + r)) at r = 0 for logits x @ w + b:
    w (diag(p) - p p^T) w^T (float64)."""
    p = softmax(x.astype(np.float64) @ w + b)
    return w.astype(np.float64) @ (np.diag(p) - np.outer(p, p)) @ w.T


@pytest.mark.parametrize("xi", [None, 1e-2])
def test_vat_direction_is_dominant_eigenvector_of_kl_hessian(xi):
    model, w, b = linear_model(in_dim=8, classes=5, seed=3)
    x = np.random.RandomState(0).rand(6, 8).astype("float32")
    tf.random.set_seed(0)
    kwargs = {} if xi is None else {"xi": xi}
    d = VAT(eps=1.0, power_iterations=40, **kwargs).direction(model, x).numpy()
    agreement = 0.9999
    for i in range(len(x)):
        values, vectors = np.linalg.eigh(_kl_hessian(w, b, x[i]))
        top = vectors[:, -1]
        assert values[-1] > 1.5 * values[-2]  # a clear dominant direction
        assert abs(float(d[i] @ top)) > agreement
        assert np.linalg.norm(d[i]) == pytest.approx(1.0, abs=1e-5)


def test_one_power_iteration_is_normalised_hessian_times_noise():
    model, w, b = linear_model(in_dim=8, classes=5, seed=4)
    x = np.random.RandomState(1).rand(4, 8).astype("float32")
    tf.random.set_seed(7)
    noise = tf.random.normal(x.shape).numpy()
    tf.random.set_seed(7)
    d = VAT(eps=1.0, xi=1e-3).direction(model, x).numpy()
    for i in range(len(x)):
        expected = _kl_hessian(w, b, x[i]) @ noise[i]
        expected /= np.linalg.norm(expected)
        assert float(d[i] @ expected) > 0.9999


def test_vat_perturbation_has_norm_eps_and_softmax_model_same_direction():
    logits_model, _, _ = linear_model(seed=5)
    softmax_model, _, _ = linear_model(seed=5, softmax=True)
    x = np.random.RandomState(2).rand(5, 6).astype("float32")
    vat = VAT(eps=2.5, power_iterations=20, xi=1e-3)
    tf.random.set_seed(1)
    r1 = vat.perturb(logits_model, x, None).numpy() - x
    tf.random.set_seed(1)
    r2 = vat.perturb(softmax_model, x, None).numpy() - x
    np.testing.assert_allclose(np.linalg.norm(r1, axis=1), 2.5, rtol=1e-4)
    cos = np.sum(r1 * r2, axis=1) / 2.5**2
    assert np.all(np.abs(cos) > 0.999)


def test_vat_loss_does_not_depend_on_unlabeled_rows_labels_or_inputs():
    model, _, _ = linear_model(seed=6)
    rng = np.random.RandomState(3)
    x = rng.rand(8, 6).astype("float32")
    y = np.array([0, 1, -1, 2, -1, -1, 3, -1])
    vat = VAT(eps=1.0, weight=0.0)
    r = vat.loss(model, x, y, x, task_loss=task_loss)
    keep = y >= 0
    expected = float(SCE(y[keep], model(x[keep])))
    assert float(r.terms["clean_loss"]) == pytest.approx(expected, rel=1e-6)
    x2 = x.copy()
    x2[~keep] = rng.rand(int((~keep).sum()), 6)
    r2 = vat.loss(model, x2, y, x2, task_loss=task_loss)
    assert float(r2.loss) == pytest.approx(float(r.loss), rel=1e-6)


@pytest.mark.parametrize("bad", [
    dict(eps=-1.0), dict(eps=float("nan")), dict(eps=1.0, xi=0.0),
    dict(eps=1.0, power_iterations=0), dict(eps=1.0, weight=-1.0),
    dict(eps=1.0, entropy_weight=float("inf")),
    dict(eps=1.0, batch_statistics="yes")])
def test_vat_rejects_bad_arguments(bad):
    name = [k for k in bad if k != "eps"] or ["eps"]
    with pytest.raises(ValueError, match=f"Received: {name[-1]}="):
        VAT(**bad)
