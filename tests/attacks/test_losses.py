"""Attack objectives on fixed logits."""

import numpy as np
import tensorflow as tf

from keras_adv.attacks import attack_objective, dlr, margin

Z = tf.constant([[4.0, 2.0, 1.0, 0.0], [0.0, 3.0, 1.0, -1.0]])
Y = tf.constant([0, 2])


def test_margin():
    np.testing.assert_allclose(margin(Z, Y), [2.0, -2.0])


def test_dlr_untargeted():
    # row 0: -(4 - 2) / (4 - 1); row 1: -(1 - 3) / (3 - 0)
    np.testing.assert_allclose(dlr(Z, Y), [-2 / 3, 2 / 3], rtol=1e-6)


def test_dlr_targeted():
    t = tf.constant([3, 1])
    # row 0: -(4 - 0) / (4 - (1 + 0) / 2); row 1: -(1 - 3) / (3 - (0 - 1) / 2)
    np.testing.assert_allclose(dlr(Z, Y, target=t), [-4 / 3.5, 2 / 3.5],
                               rtol=1e-6)


def test_dlr_scale_invariant():
    np.testing.assert_allclose(dlr(Z * 1000.0 + 7.0, Y), dlr(Z, Y), rtol=1e-5)


def test_objectives_signs():
    ce = attack_objective(Z, Y, loss="ce").numpy()
    want = -np.log(tf.nn.softmax(Z).numpy()[[0, 1], [0, 2]])
    np.testing.assert_allclose(ce, want, rtol=1e-6)
    np.testing.assert_allclose(attack_objective(Z, Y, loss="ce", targeted=True), -ce,
                               rtol=1e-6)
    np.testing.assert_allclose(attack_objective(Z, Y, loss="margin"), [-2.0, 2.0])
    np.testing.assert_allclose(
        attack_objective(Z, Y, loss="margin", targeted=True), [2.0, -2.0])
