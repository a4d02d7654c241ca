"""`adversarial_loss`: the function form for custom training loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.defenses import adversarial_loss
from tests.conftest import linear_model


def test_function_form_custom_training_loop_matches_fit(linear_batch):
    """An SGD loop over adversarial_loss gives fit's weights (FGSM-AT is
    deterministic)."""
    _, _, _, x, _, y, _ = linear_batch
    d = defenses.FGSMTraining(eps=0.1)
    loop_model, _, _ = linear_model()
    opt = keras.optimizers.SGD(0.3)

    @tf.function
    def step(xb, yb):
        x_adv = d.perturb(loop_model, xb, yb)
        with tf.GradientTape() as tape:
            r = adversarial_loss(loop_model, xb, yb, d, x_adv=x_adv)
        grads = tape.gradient(r.loss, loop_model.trainable_weights)
        opt.apply(grads, loop_model.trainable_weights)
        return r.loss

    for i in range(0, 12, 4):
        step(tf.constant(x[i:i + 4]), tf.constant(y[i:i + 4]))
    from keras_adv.models import AdversarialModel

    fit_model = AdversarialModel(linear_model()[0], defense=d)
    fit_model.compile(optimizer=keras.optimizers.SGD(0.3),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    fit_model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(loop_model.get_weights()[0],
                               fit_model.get_weights()[0], rtol=1e-5,
                               atol=1e-6)


def test_function_form_one_hot_and_eps_override(linear_batch):
    model, _, _, x, _, y, _ = linear_batch
    d = defenses.FGSMTraining(eps=0.3, clean_weight=0.0)
    sparse = adversarial_loss(model, x, y, d, eps=0.1)
    onehot = adversarial_loss(model, x, np.eye(4, dtype="float32")[y], d,
                              eps=0.1)
    assert float(sparse.loss) == pytest.approx(float(onehot.loss), rel=1e-6)
    full = adversarial_loss(model, x, y, d)
    assert float(full.loss) > float(sparse.loss)
    zero = adversarial_loss(model, x, y, d, eps=0.0)
    assert float(zero.terms["adv_loss"]) == pytest.approx(
        float(zero.terms["clean_loss"]), rel=1e-6)


def test_function_form_bad_inputs(linear_batch):
    model, _, _, x, _, y, _ = linear_batch
    with pytest.raises(ValueError, match=r"Received: defense='trades'"):
        adversarial_loss(model, x, y, "trades")
    with pytest.raises(ValueError, match=r"Received: defense=FreeTraining"):
        adversarial_loss(model, x, y, defenses.FreeTraining(eps=0.1))
    with pytest.raises(ValueError, match=r"Received: eps=-1"):
        adversarial_loss(model, x, y, defenses.PGDTraining(eps=0.1), eps=-1)
