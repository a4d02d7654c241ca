"""FastTraining: FGSM of 1.25 eps from a uniform start."""

import keras
import numpy as np

from keras_adv import defenses
from tests.conftest import ce_input_gradient


def test_step_of_1_25_eps_overrides_the_random_start(linear_batch):
    """From u in [-eps, eps], a step of 1.25 eps along the gradient sign
    lands on that sign's side, at least 0.25 eps from x, inside the ball."""
    model, w, b, x, _, y, _ = linear_batch
    keras.utils.set_random_seed(3)
    delta = defenses.FastTraining(eps=0.08).perturb(model, x, y).numpy() - x
    g = ce_input_gradient(x, y, w, b)
    np.testing.assert_array_equal(np.sign(delta), np.sign(g))
    assert np.abs(delta).min() >= 0.25 * 0.08 - 1e-6
    assert np.abs(delta).max() <= 0.08 + 1e-6
    assert np.abs(delta).std() > 0.005  # the start is random, not a corner
