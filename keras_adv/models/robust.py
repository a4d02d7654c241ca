"""`AdversarialModel.evaluate(adversarial=...)`: the clean test step, and
the robust evaluation in a Keras model of its own so that Keras keeps one
traced test function per attack beside the model's clean one.

The robust evaluation logs the compiled metrics on the attacked batch
(`adv_accuracy`, ...: Keras metrics of the adversarial predictions alone)
and `robust_accuracy`, the examples right on the clean and on the attacked
input (`ops.robust_hits`, the rule of `evaluate_robustness`)."""

import keras
import tensorflow as tf

from keras_adv import _keras_compat, ops
from keras_adv.defenses import tensors


def check_attack(adversarial):
    """Raises unless `adversarial` is a bool or a callable attack.

    Example: `check_attack(True)`.
    """
    if adversarial is not False and adversarial is not True and (
            not callable(adversarial)):
        raise ValueError(
            "adversarial must be True, False or a callable attack(model, "
            f"x, y). Received: adversarial={adversarial!r}")


def evaluator(model, state, view, attack):
    """The `RobustEvaluation` of `model` (its compiled `state` and its
    `views.View`) under `attack`, made once per attack and kept in the
    state (so repeated robust evaluations do not retrace).

    Example: `evaluator(model, state, view, True).evaluate(x, y)`.
    """
    kept_attack, kept = state.robust
    if kept is None or kept_attack is not attack:
        with model.distribute_strategy.scope():
            kept = RobustEvaluation(_Target(model, state, view, attack))
        state.robust = (attack, kept)
    return kept


def clean_test(model, state, data):
    """The clean part of a test step of `model` on `data = (x, y,
    sample_weight)`: the loss and the clean metrics (labeled rows only for
    a defense that takes unlabeled ones); returns the batch used, the logs
    and the model's outputs on that batch.

    Example: `(x, y, w), logs, y_pred = clean_test(model, state,
    (x, y, None))`.
    """
    x, y, sample_weight = data
    if y is not None and model.defense.uses_unlabeled:
        # Semi-supervised data: evaluate the labeled examples only.
        x, y, sample_weight = tensors.labeled_rows(
            tensors.labeled_mask(y), x, y, sample_weight)
    y_pred = model(x, training=False)
    if y is not None:
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred,
                                  sample_weight=sample_weight, training=False)
        state.record_losses({"loss": loss}, batch=batch_size(x))
        model.compute_metrics(x, y, y_pred, sample_weight)
    logs = state.logs(("loss",), adversarial=False)
    return (x, y, sample_weight), logs, y_pred


def test_step(target, data, robust):
    """Clean and adversarial loss and metrics of `target.model` for one
    batch, and its robust hits added to `robust` (a `keras.metrics.Mean`):
    `target.attack` is `True` (the defense's own `attack`) or a callable
    `attack(model, x, y)`.

    Example: called by `RobustEvaluation.test_step`.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError("evaluate(adversarial=...) needs labels. Received: "
                         "data without y")
    model, state = target.model, target.state
    (x, y, sample_weight), logs, y_pred = clean_test(
        model, state, (x, y, sample_weight))
    attacked, x_in, defense = target.view.target(model, x, model.defense)
    attack = defense.attack if target.attack is True else target.attack
    y_adv = attacked(attack(attacked, x_in, y), training=False)
    state.record_losses(
        {"adv_loss": state.task_loss(y, y_adv, sample_weight)},
        batch=batch_size(x))
    state.record_adversarial(y, y_adv, sample_weight)
    robust.update_state(tf.cast(ops.robust_hits(
        y, ops.to_logits(y_pred), ops.to_logits(y_adv)), tf.float32))
    return {**logs, **state.logs(("adv_loss",), adversarial=True),
            **_keras_compat.per_replica_logs({robust.name: robust.result()})}


def batch_size(x):
    """The batch size of `x` (a tensor or a structure of them), as a tensor.

    Example: `batch_size(x)`.
    """
    return tf.shape(keras.tree.flatten(x)[0])[0]


class _Target:
    """The model a `RobustEvaluation` evaluates, its compiled state, its
    view and the attack, held out of Keras tracking (the evaluator must not
    own, save or export the model)."""

    def __init__(self, model, state, view, attack):
        self.model = model
        self.state = state
        self.view = view
        self.attack = attack


class RobustEvaluation(_keras_compat.MultiWorkerFitFixes, keras.Model):
    """Runs `AdversarialModel.evaluate(adversarial=attack)`: a Keras model
    whose test step is the robust one of the adversarial model and whose
    metrics are the adversarial model's and its own `robust_accuracy`.

    Example: `RobustEvaluation(_Target(model, state, view, True)).evaluate(
    x, y)` (made by `evaluator`).
    """

    def __init__(self, target):
        super().__init__()
        self._target = target
        self.robust_accuracy = keras.metrics.Mean(name="robust_accuracy")
        self.built = True
        self.compile(optimizer="sgd")

    def call(self, inputs, training=None):
        return self._target.model(inputs, training=training)

    def test_step(self, data):
        return test_step(self._target, data, self.robust_accuracy)

    @property
    def metrics(self):
        return self._target.model.metrics + [self.robust_accuracy]
