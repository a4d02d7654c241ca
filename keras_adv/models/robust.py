"""`AdversarialModel.evaluate(adversarial=...)`: the robust evaluation, in a
Keras model of its own so that Keras keeps one traced test function per
attack beside the model's clean one."""

import keras
import tensorflow as tf

from keras_adv import _keras_compat


def check_attack(adversarial):
    """Raises unless `adversarial` is a bool or a callable attack.

    Example: `check_attack(True)`.
    """
    if adversarial is not False and adversarial is not True and (
            not callable(adversarial)):
        raise ValueError(
            "adversarial must be True, False or a callable attack(model, "
            f"x, y). Received: adversarial={adversarial!r}")


def evaluator(model, attack):
    """The `RobustEvaluation` of `model` under `attack`, made once per
    attack and kept in the model's state (so repeated robust evaluations do
    not retrace).

    Example: `evaluator(model, True).evaluate(x, y)`.
    """
    state = model._state
    kept_attack, kept = state.robust
    if kept is None or kept_attack is not attack:
        with model.distribute_strategy.scope():
            kept = RobustEvaluation(model, attack)
        state.robust = (attack, kept)
    return kept


def test_step(model, data, attack):
    """Clean and adversarial loss and metrics of `model` for one batch:
    `attack` is `True` (the defense's own `attack`) or a callable
    `attack(model, x, y)`.

    Example: called by `RobustEvaluation.test_step`.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError("evaluate(adversarial=...) needs labels. Received: "
                         "data without y")
    (x, y, sample_weight), logs = model._clean_test(x, y, sample_weight)
    target, x_in, defense = model, x, model.defense
    bound = model._bind(x)
    if bound is not None:
        target, x_in, defense = bound, bound.parts, model._view_defense()
    if attack is True:
        x_adv = defense.attack(target, x_in, y)
    else:
        x_adv = attack(target, x_in, y)
    y_adv = target(x_adv, training=False)
    state = model._state
    state.term_trackers["adv_loss"].update_state(
        state.task_loss(y, y_adv, sample_weight), sample_weight=batch_size(x))
    model._record_adversarial(y, y_adv, sample_weight)
    return {**logs, **state.logs(("adv_loss",), adversarial=True)}


def batch_size(x):
    """The batch size of `x` (a tensor or a structure of them), as a tensor.

    Example: `batch_size(x)`.
    """
    return tf.shape(keras.tree.flatten(x)[0])[0]


class _Target:
    """The model a `RobustEvaluation` evaluates and its attack, held out of
    Keras tracking (the evaluator must not own, save or export the model)."""

    def __init__(self, model, attack):
        self.model = model
        self.attack = attack


class RobustEvaluation(_keras_compat.MultiWorkerFitFixes, keras.Model):
    """Runs `AdversarialModel.evaluate(adversarial=attack)`: a Keras model
    whose test step is the robust one of the adversarial model and whose
    metrics are the adversarial model's.

    Example: `RobustEvaluation(model, True).evaluate(x, y)`.
    """

    def __init__(self, model, attack):
        super().__init__()
        self._target = _Target(model, attack)
        self.built = True
        self.compile(optimizer="sgd")

    def call(self, inputs, training=None):
        return self._target.model(inputs, training=training)

    def test_step(self, data):
        target = self._target
        return test_step(target.model, data, target.attack)

    @property
    def metrics(self):
        return self._target.model.metrics
