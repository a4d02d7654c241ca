"""models/compiled.py: what `compile` resolves (the per-example loss, the
metrics following the loss) and the `State` it fills."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import compiled
from tests.models.conftest import linear_adv_model


def test_user_metric_instances_are_not_shared(batch):
    x, y = batch
    acc = keras.metrics.SparseCategoricalAccuracy(name="acc")
    model, _, _ = linear_adv_model(defenses.PGDTraining(eps=0.3, steps=3),
                                    metrics=[acc])
    logs = model.fit(x, y, epochs=1, batch_size=16, verbose=0).history
    assert set(logs) == {"loss", "adv_loss", "acc", "adv_acc"}
    assert logs["adv_acc"][0] < logs["acc"][0]


@pytest.mark.parametrize("loss,kind", [
    ("binary_crossentropy", "binary"),
    (keras.losses.CategoricalCrossentropy(), "categorical"),
    (keras.losses.SparseCategoricalCrossentropy(), "sparse"),
    ("mse", "sparse"),
])
def test_accuracy_follows_the_loss(loss, kind):
    assert compiled.loss_kind(loss) == kind
    metric = compiled.make_metric("accuracy", kind, compiled.ADV_PREFIX)
    assert metric.name == "adv_accuracy"
    want = {"binary": keras.metrics.BinaryAccuracy,
            "categorical": keras.metrics.CategoricalAccuracy,
            "sparse": keras.metrics.SparseCategoricalAccuracy}[kind]
    assert type(metric) is want


def _state(loss, metrics=("accuracy",)):
    state = compiled.State()
    state.set_defense(defenses.PGDTraining(eps=0.3, steps=2))
    state.resolve(loss, None, list(metrics), None)
    return state


def test_task_loss_weighted_mean_and_sum_equal_numpy():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "float32")
    y = np.array([0, 0, 1])
    w = np.array([1.0, 2.0, 0.5], "float32")
    z = logits - logits.max(1, keepdims=True)
    ce = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(3), y]
    mean = _state(keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    assert float(mean.task_loss(y, logits, w)) == pytest.approx(
        np.sum(ce * w) / 3, rel=1e-6)
    total = _state(keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="sum"))
    assert float(total.task_loss(y, logits, w)) == pytest.approx(
        np.sum(ce * w), rel=1e-6)


def test_state_records_and_reports_what_was_measured():
    state = _state("sparse_categorical_crossentropy")
    assert sorted(state.unmeasured()) == ["adv_accuracy", "adv_loss"]
    probs = tf.constant([[0.9, 0.1], [0.2, 0.8]])
    state.record_losses({"loss": 2.0, "adv_loss": 4.0}, batch=2)
    state.record_clean(tf.constant([0, 0]), probs)
    state.record_adversarial(tf.constant([1, 1]), probs)
    assert state.unmeasured() == []
    logs = state.logs(("loss", "adv_loss"), adversarial=True)
    assert {k: float(v) for k, v in logs.items()} == {
        "loss": 2.0, "adv_loss": 4.0, "accuracy": 0.5, "adv_accuracy": 0.5}
    state.eps_scale.assign(0.5)
    assert float(state.eps()) == pytest.approx(0.15)


def test_compile_arguments_are_checked():
    with pytest.raises(ValueError, match=r"Received: loss=None"):
        compiled.per_example_loss(None)
    with pytest.raises(ValueError, match=r"Received: metrics='accuracy'"):
        compiled.metric_list("accuracy", "metrics")
