"""Defense tensor helpers: the labeled-row task loss, the budget and step of
a perturbation, frozen batch statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.defenses import (
    VAT,
    DataSparsity,
    PGDTraining,
    tensors,
)
from tests.conftest import softmax
from tests.defenses.unlabeled import task_loss


def test_labeled_task_loss_is_the_mean_over_labeled_examples():
    z = np.random.RandomState(0).randn(6, 4).astype("float32")
    y = np.array([2, -1, 0, -1, -1, 3])
    got = float(keras_adv.defenses.tensors.labeled_task_loss(task_loss, y, z))
    keep = y >= 0
    log_p = np.log(softmax(z.astype(np.float64)))
    expected = -np.mean(log_p[keep, y[keep]])
    assert got == pytest.approx(expected, rel=1e-6)
    # No labeled example: exactly zero, with a zero (not NaN) gradient.
    zt = tf.Variable(z)
    with tf.GradientTape() as tape:
        none = keras_adv.defenses.tensors.labeled_task_loss(
            task_loss, -np.ones(6, int), zt)
    assert float(none) == 0.0
    assert np.all(tape.gradient(none, zt).numpy() == 0.0)


def test_budget_scales_an_explicit_step_with_the_warmup_eps():
    explicit = PGDTraining(eps=0.3, step_size=0.01)
    eps, alpha = tensors.budget(explicit, 0.15, 0.25)
    assert float(eps) == pytest.approx(0.15)
    assert float(alpha) == pytest.approx(0.005)
    eps, alpha = tensors.budget(PGDTraining(eps=0.3), None, 0.25)
    assert float(eps) == pytest.approx(0.3)
    assert float(alpha) == pytest.approx(0.075)
    assert float(tensors.budget(PGDTraining(eps=0.0), 0.0, 0.25)[1]) == 0.0
    with pytest.raises(ValueError, match=r"Received: eps=-1"):
        tensors.budget(explicit, -1, 0.25)


def _bn_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(8),
        keras.layers.BatchNormalization(momentum=0.5),
        keras.layers.ReLU(), keras.layers.Dense(4)])


@pytest.mark.parametrize("defense", [
    VAT(eps=1.0), DataSparsity(noise_std=0.1, weight=10.0)],
    ids=["vat", "data_sparsity"])
def test_perturbed_passes_do_not_update_batchnorm(defense):
    x = np.random.RandomState(6).rand(16, 6).astype("float32") * 3
    y = np.arange(16) % 4
    m1, m2 = _bn_model(), _bn_model()
    m2.set_weights(m1.get_weights())
    x_adv = defense.perturb(m1, x, y)

    @tf.function
    def step():
        return defense.loss(m1, x, y, x_adv, task_loss=task_loss).loss

    assert np.isfinite(float(step()))
    m2(x, training=True)  # the clean pass only
    bn1, bn2 = m1.layers[1], m2.layers[1]
    np.testing.assert_allclose(bn1.moving_mean.numpy(),
                               bn2.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn1.moving_variance.numpy(),
                               bn2.moving_variance.numpy(), rtol=1e-6)
    assert not np.allclose(bn1.moving_mean.numpy(), 0.0)
