"""TRADES: the objective against NumPy and its gradient path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses, ops
from keras_adv.defenses import adversarial_loss
from tests.conftest import softmax
from tests.defenses.unlabeled import ce_np, kl_np


def test_trades_loss_equals_numpy(linear_batch):
    model, w, b, x, x_adv, y, sw = linear_batch
    d = defenses.TRADES(eps=0.2, beta=5.0)
    r = adversarial_loss(model, x, y, d, x_adv=x_adv, sample_weight=sw)
    p, q = softmax(x @ w + b), softmax(x_adv @ w + b)
    clean = np.mean(sw * ce_np(p, y))
    kl = np.mean(sw * kl_np(p, q))
    assert float(r.terms["clean_loss"]) == pytest.approx(clean, rel=1e-5)
    assert float(r.terms["kl_loss"]) == pytest.approx(kl, rel=1e-4)
    assert float(r.loss) == pytest.approx(clean + 5.0 * kl, rel=1e-5)


def test_trades_kl_gradient_flows_through_clean_branch(linear_batch):
    """As in the authors' code, the KL term is differentiated through p(x)
    as well as p(x'): the weight gradient differs from the one with p(x)
    held fixed."""
    model, _, _, x, x_adv, y, _ = linear_batch
    d = defenses.TRADES(eps=0.2, beta=3.0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape(persistent=True) as tape:
        r = adversarial_loss(model, x, y, d, x_adv=x_adv)
        z, z_adv = model(x), model(x_adv)
        fixed = ce(y, z) + 3.0 * tf.reduce_mean(ops.kl_divergence(
            tf.stop_gradient(z), z_adv))
        full = ce(y, z) + 3.0 * tf.reduce_mean(ops.kl_divergence(
            z, z_adv))
    w = model.trainable_weights[0]
    g, g_fixed, g_full = (tape.gradient(t, w).numpy() for t in (r.loss, fixed,
                                                                full))
    np.testing.assert_allclose(g, g_full, rtol=1e-5, atol=1e-7)
    assert np.abs(g - g_fixed).max() > 1e-4
