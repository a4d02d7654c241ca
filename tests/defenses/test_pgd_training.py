"""PGDTraining: the step size it resolves and its eps inside a traced
function."""

import numpy as np
import tensorflow as tf

from keras_adv import defenses
from tests.conftest import ce_input_gradient


def test_one_step_without_start_is_the_fgsm_point(linear_batch):
    """With one step the default step size is eps itself (not 2.5 eps)."""
    model, w, b, x, _, y, _ = linear_batch
    d = defenses.PGDTraining(eps=0.05, steps=1, random_start=False)
    expected = x + 0.05 * np.sign(ce_input_gradient(x, y, w, b))
    np.testing.assert_allclose(d.perturb(model, x, y).numpy(), expected,
                               atol=1e-6)


def test_perturb_inside_tf_function_with_variable_eps(linear_batch):
    model, _, _, x, _, y, _ = linear_batch
    eps = tf.Variable(0.2)
    d = defenses.PGDTraining(eps=0.2, steps=3, step_size=0.05)
    fn = tf.function(lambda x, y: d.perturb(model, x, y, eps=eps))
    a = fn(tf.constant(x), tf.constant(y)).numpy()
    eps.assign(0.05)
    b = fn(tf.constant(x), tf.constant(y)).numpy()
    assert np.abs(a - x).max() > 0.1
    assert np.abs(b - x).max() <= 0.05 + 1e-6
    assert fn.experimental_get_tracing_count() == 1
