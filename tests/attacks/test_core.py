"""The pieces shared by the gradient attacks: `prepare`, the objective and
its input gradient, the input-gradient check and the compiled-loop cache."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import ascent, core
from tests.conftest import ce_input_gradient, linear_model, softmax, uniform_batch


def _prepare(model, x, y, **kw):
    settings = dict(clip=(0.0, 1.0), targeted=False, from_logits=None,
                    loss="ce")
    return core.prepare(model, x, y, **{**settings, **kw})


@pytest.mark.parametrize("value", ["False", 0, 1, None])
def test_prepare_refuses_a_non_bool_targeted(value):
    model, _, _ = linear_model()
    x, y = uniform_batch(0, 5, 0.0, 1.0)
    with pytest.raises(TypeError, match="targeted must be a bool. Received"):
        _prepare(model, x, y, targeted=value)


def test_prepare_without_y_attacks_the_predictions():
    model, w, b = linear_model()
    x, _ = uniform_batch(0, 5, 0.0, 1.0)
    _, labels, source = _prepare(model, x, None)
    pred = np.argmax(x @ w + b, axis=-1)
    np.testing.assert_array_equal(labels.numpy(), pred)
    np.testing.assert_array_equal(source.numpy(), pred)


def test_prepare_targeted_needs_y_unless_y_holds_true_labels():
    model, w, b = linear_model()
    x, y = uniform_batch(0, 5, 0.0, 1.0)
    with pytest.raises(ValueError, match="Received: y=None with targeted"):
        _prepare(model, x, None, targeted=True)
    # APGD-T and FAB-T pick their targets: y=None means the predictions.
    _, labels, _ = _prepare(model, x, None, targeted=True, true_labels=True)
    np.testing.assert_array_equal(labels.numpy(),
                                  np.argmax(x @ w + b, axis=-1))


def test_prepare_one_hot_labels_become_sparse():
    model, _, _ = linear_model()
    x, y = uniform_batch(0, 5, 0.0, 1.0)
    _, labels, _ = _prepare(model, x, np.eye(4, dtype="float32")[y])
    np.testing.assert_array_equal(labels.numpy(), y)


def test_prepare_refuses_dlr_with_too_few_classes():
    model, _, _ = linear_model(classes=3)
    x, y = uniform_batch(0, 5, 0.0, 1.0)
    with pytest.raises(ValueError, match="needs at least 4 classes"):
        _prepare(model, x, y % 3, targeted=True, loss="dlr")


def test_objective_and_gradient_of_linear_model_is_exact():
    # CE objective -log softmax(z)_y of z = x w + b: its input gradient is
    # (softmax(z) - onehot(y)) w^T.
    model, w, b = linear_model()
    x, y = uniform_batch(0, 5, 0.0, 1.0)
    obj, logits, grad = core.objective_and_gradient(
        model, tf.constant(x), tf.constant(y, tf.int32), loss="ce",
        targeted=False, source=None, from_logits=None, in_dtype=tf.float32)
    z = x @ w + b
    p = softmax(z)
    np.testing.assert_allclose(logits.numpy(), z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(obj.numpy(), -np.log(p[np.arange(5), y]),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad.numpy(), ce_input_gradient(x, y, w, b),
                               rtol=1e-4, atol=1e-5)


def test_check_input_gradient_refuses_a_constant_model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.layers[0].kernel.assign(np.zeros((6, 4), "float32"))
    x, _ = uniform_batch(0, 5, 0.0, 1.0)
    with pytest.raises(ValueError, match="input gradient is zero"):
        core.check_input_gradient(model, x, tf.float32, None, "FAB")
    model.layers[0].kernel.assign(np.ones((6, 4), "float32"))
    core.check_input_gradient(model, x, tf.float32, None, "FAB")


def _double(model, x, *, scale):
    return ascent.check_finite(model(x) * scale, "outputs")


def test_compiled_is_cached_per_model_and_configuration():
    model, _, _ = linear_model()
    first = core.compiled(model, _double, input_rank=2, scale=2.0)
    assert core.compiled(model, _double, input_rank=2, scale=2.0) is first
    assert core.compiled(model, _double, input_rank=2, scale=3.0) is not first
    x, _ = uniform_batch(0, 5, 0.0, 1.0)
    np.testing.assert_allclose(first(tf.constant(x)).numpy(),
                               2.0 * model(x).numpy(), rtol=1e-6)


def test_run_relaxed_traces_once_for_any_batch():
    model, _, _ = linear_model()
    fn = core.compiled(model, _double, input_rank=2, scale=1.5)
    x, _ = uniform_batch(0, 8, 0.0, 1.0)
    for n in (8, 3, 5):
        out = core.run_relaxed(fn, tf.constant(x[:n]))
        assert out.shape == (n, 4)
    assert fn.experimental_get_tracing_count() == 1


def test_guarded_loop_reports_non_finite_outputs_as_value_error():
    model, _, _ = linear_model()
    fn = core.compiled(model, _double, input_rank=2, scale=np.inf)
    with pytest.raises(ValueError, match="^model gave non-finite outputs"):
        fn(tf.constant(uniform_batch(0, 5, 0.0, 1.0)[0]))
