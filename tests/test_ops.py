"""keras_adv.ops: the reader of model outputs, the class count, batched
probabilities, labels, norms and the runtime-safe functions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import ops


def dense(units, activation=None, in_dim=3):
    model = keras.Sequential([keras.Input((in_dim,)),
                              keras.layers.Dense(units, activation=activation)])
    w = np.arange(in_dim * units, dtype="float32").reshape(in_dim, units)
    model.layers[0].set_weights([w / 10.0, np.zeros(units, "float32")])
    return model


def test_num_classes_declared_and_binary():
    assert ops.num_classes(dense(4)) == 4
    assert ops.num_classes(dense(1)) == 2  # one unit: a binary classifier
    assert ops.num_classes(lambda x: tf.zeros((len(x), 5))) is None


def test_num_classes_of_a_callable_from_one_forward_pass():
    calls = []

    def model(x):
        calls.append(len(x))
        return tf.zeros((len(x), 5))

    assert ops.num_classes(model, np.zeros((8, 3), "float32")) == 5
    assert calls == [1]
    one_unit = ops.num_classes(lambda x: tf.zeros((len(x), 1)),
                               np.zeros((2, 3), "float32"))
    assert one_unit == 2


def test_num_classes_refuses_rank_one_outputs():
    with pytest.raises(ValueError, match=r"model must return logits of shape "
                       r"\(batch, classes\)\. Received: model output with "
                       r"shape \(1,\)"):
        ops.num_classes(lambda x: tf.reduce_sum(x, -1),
                        np.zeros((4, 3), "float32"))


def test_probabilities_undo_the_softmax_exactly():
    x = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]], "float32")
    logits = dense(4)(x).numpy().astype(np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(ops.probabilities(dense(4, "softmax"), x,
                                                 batch_size=1), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(ops.probabilities(dense(4), x), expected,
                               rtol=1e-6)


def test_probabilities_of_callables_returning_arrays():
    rows = np.array([[0.25, 0.75], [1.0, 0.0]])
    np.testing.assert_array_equal(
        ops.probabilities(lambda x: rows[:len(x)], np.zeros((2, 3))), rows)
    # one column of a callable is a logit: sigmoid(0) = 0.5, sigmoid(log 3)
    one = ops.probabilities(lambda x: np.array([[0.0], [np.log(3.0)]]),
                            np.zeros((2, 3)))
    np.testing.assert_allclose(one, [[0.5, 0.5], [0.25, 0.75]])


@pytest.mark.parametrize("outputs,needle", [
    (lambda x: np.zeros(len(x)), r"teacher must output one score per class "
     r"\(batch, classes\), or one unit for a binary classifier\. Received: "
     r"outputs with shape \(2,\)"),
    (lambda x: np.full((len(x), 2), np.nan), r"teacher must give finite "
     r"outputs\. Received: outputs with NaN or inf values"),
])
def test_probabilities_refuse_bad_outputs_by_name(outputs, needle):
    with pytest.raises(ValueError, match=needle):
        ops.probabilities(outputs, np.zeros((2, 3)), name="teacher")


def test_sparse_labels_from_every_encoding():
    assert ops.sparse_labels(tf.constant([2, 0])).numpy().tolist() == [2, 0]
    assert ops.sparse_labels(tf.constant([[2], [0]])).numpy().tolist() == [2, 0]
    one_hot = tf.constant([[0.0, 0.0, 1.0], [0.9, 0.1, 0.0]])
    assert ops.sparse_labels(one_hot).numpy().tolist() == [2, 0]


def test_project_and_random_start_stay_in_the_ball():
    delta = tf.constant([[3.0, 4.0], [0.1, -0.2]])
    np.testing.assert_allclose(ops.project(delta, 1.0, "l2").numpy(),
                               [[0.6, 0.8], [0.1, -0.2]], rtol=1e-6)
    np.testing.assert_allclose(ops.project(delta, 0.15, "linf").numpy(),
                               [[0.15, 0.15], [0.1, -0.15]])
    seed = tf.constant([1, 2], tf.int64)
    for norm, measure in (("linf", lambda d: np.abs(d).max(1)),
                          ("l2", lambda d: np.linalg.norm(d, axis=1))):
        start = ops.random_start(tf.constant([64, 5]), 0.3, norm, seed).numpy()
        assert measure(start).max() <= 0.3 + 1e-6 and measure(start).min() > 0


def test_kl_divergence_and_l2_normalize():
    z = tf.constant([[0.0, 0.0]])
    q = tf.constant([[0.0, np.log(3.0)]])  # p = (1/2, 1/2), q = (1/4, 3/4)
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    np.testing.assert_allclose(ops.kl_divergence(z, q).numpy(), [expected],
                               rtol=1e-6)
    unit = ops.l2_normalize(tf.constant([[0.0, 0.0], [1e-30, 0.0]])).numpy()
    np.testing.assert_allclose(unit, [[0.0, 0.0], [1.0, 0.0]])


def test_seed_tensor_fixed_for_an_int_refused_otherwise():
    assert ops.seed_tensor(5).numpy().tolist() == [5, 0]
    with pytest.raises(ValueError, match=r"Received: seed='a'"):
        ops.seed_tensor("a")


def test_runtime_safe_log1p_and_expm1_are_accurate():
    x = np.array([-1.0, -0.5, -1e-3, -1e-7, -1e-12, 0.0], np.float32)
    np.testing.assert_allclose(ops.log1p(tf.constant(x[1:])).numpy(),
                               np.log1p(x[1:].astype(np.float64)), rtol=1e-6)
    assert ops.log1p(tf.constant(x[:1])).numpy()[0] == -np.inf
    y = np.array([-np.inf, -30.0, -1.0, -1e-3, -1e-9, 0.0], np.float32)
    np.testing.assert_allclose(ops.expm1(tf.constant(y)).numpy(),
                               np.expm1(y.astype(np.float64)), rtol=1e-6)


def test_robust_hits_need_the_clean_and_every_adversarial_hit():
    clean = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [np.nan, 0.0],
                      [2.0, 0.0]], np.float32)
    adv = np.array([[0.0, 2.0], [2.0, 0.0], [2.0, 0.0], [2.0, 0.0],
                    [np.inf, 0.0]], np.float32)
    y = np.zeros(5, np.int64)
    # Broken by the attack; wrong clean and "fixed" by it; robust; NaN clean
    # output; inf adversarial output.
    assert ops.robust_hits(y, clean, adv).numpy().tolist() == [
        False, False, True, False, False]
    assert ops.robust_hits(y, clean).numpy().tolist() == [
        True, False, True, False, True]
    one_hot = np.eye(2)[y]
    assert ops.robust_hits(one_hot, clean, adv, clean).numpy().tolist() == [
        False, False, True, False, False]
    graph = tf.function(ops.robust_hits)(tf.constant(y), clean, adv)
    assert graph.numpy().sum() == 1


def test_examples_run():
    from tests.conftest import run_examples

    run_examples("keras_adv.ops")
