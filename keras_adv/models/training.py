"""The pieces of an `AdversarialModel` training step: the batch check, the
`TrainingStep` handed to the defense, the optimizer step across replicas,
the logs of a step, and the eps warm-up callback."""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.defenses import protocol, tensors
from keras_adv.models import robust, views


def check_batch(model, x, y):
    """`(x, y)` of a training batch checked for `model`'s defense (its box,
    -1 labels where it takes unlabeled rows) and declared class count:
    eagerly an error, in a traced step assertions.

    Raises:
        ValueError: no labels, or a bad batch (`validation.check_batch`).

    Example: `x, y = check_batch(model, x, y)` in `train_step`.
    """
    if y is None:
        raise ValueError(
            "Adversarial training needs labels. Received: data without y")
    defense = model.defense
    return validation.check_batch(
        x, y, clip=defense.clip,
        num_classes=ops.num_classes(views.viewed_model(model)),
        unlabeled=defense.uses_unlabeled)


def training_step(model, state, target):
    """The `TrainingStep` of `model` (its compiled `state`) that the defense
    trains through, with `target` as the model it attacks (the model itself
    or a bound view of it).

    Example: `defense.train_step(training_step(model, state, model), x, y)`.
    """
    return protocol.TrainingStep(
        model=target, eps=state.eps(), task_loss=state.task_loss,
        regularization=functools.partial(regularization, model),
        minimize=functools.partial(minimize, model),
        record_adversarial=state.record_adversarial,
        state=state.defense_state)


def regularization(model):
    """The sum of `model.losses` (float32; 0 without any).

    Example: `total = loss + regularization(model)` inside the tape.
    """
    extra = [tf.cast(tf.reduce_sum(v), tf.float32) for v in model.losses]
    return tf.add_n(extra) if extra else tf.constant(0.0)


def minimize(model, tape, loss, sources=()):
    """Applies the weight gradient of `loss` (a per-replica mean) with
    `model.optimizer` and returns the gradients with respect to `sources`.

    Example: `minimize(model, tape, loss)` inside `train_step`.
    """
    weights = model.trainable_weights
    with tape:  # both scalings must be on the tape
        loss = loss / replicas()  # gradients are summed over replicas
        if model.optimizer is not None:
            loss = model.optimizer.scale_loss(loss)  # mixed_float16
    grads = tape.gradient(loss, list(weights) + list(sources))
    if weights:
        model.optimizer.apply(grads[: len(weights)], weights)
    return grads[len(weights):]


def step_logs(model, state, data, result, adv_model):
    """Updates the trackers and metrics of `state` after a step of `model`
    on `data = (x, y, sample_weight)` (a `StepResult`); returns the logs.
    Clean predictions come from an inference-mode call when the defense
    did not compute them, adversarial ones from `adv_model`; with
    unlabeled rows (-1) the metrics count the labeled ones only.

    Example: `return step_logs(model, state, (x, y, None), result, model)`.
    """
    x, y, sample_weight = data
    defense = model.defense
    state.record_losses({"loss": result.loss, **{
        name: result.terms[name] for name in defense.loss_terms}},
        batch=robust.batch_size(x))
    y_pred, y_adv = result.y_pred, None
    if state.clean_metrics and y_pred is None:
        y_pred = model(x, training=False)
    if state.adv_metrics and result.x_adv is not None:
        y_adv = result.y_pred_adv
        if y_adv is None:
            y_adv = adv_model(result.x_adv, training=False)
    if defense.uses_unlabeled:
        y, y_pred, y_adv, sample_weight = tensors.labeled_rows(
            tensors.labeled_mask(y), y, y_pred, y_adv, sample_weight)
    if state.clean_metrics:
        model.compute_metrics(x, y, y_pred, sample_weight)
    if y_adv is not None:
        state.record_adversarial(y, y_adv, sample_weight)
    names = ("loss",) + tuple(defense.loss_terms)
    return state.logs(names, adversarial=bool(state.adv_metrics))


def is_array(value):
    """A NumPy array or an eager tensor (not a dataset or generator).

    Example: `is_array(np.zeros(3))` is True.
    """
    return isinstance(value, np.ndarray) or (
        tf.is_tensor(value) and hasattr(value, "numpy"))


def replicas():
    """Replicas in sync of the current distribution strategy (1 without).

    Example: `replicas()` is 1 outside a strategy.
    """
    return tf.distribute.get_strategy().num_replicas_in_sync


class EpsWarmup(keras.callbacks.Callback):
    """Sets the eps scale of an `AdversarialModel` (`state.eps_scale`)
    before every batch from `defense.eps_at(epoch + batch / steps)` (per
    epoch when the number of steps is unknown); `AdversarialModel.fit` adds
    it, with the model's compiled `State`, when the defense has
    `warmup_epochs > 0`.

    While eps warms up, an `adv_` metric that no training batch of the
    epoch has measured yet (`compiled.State.unmeasured`) is left out of the
    batch and epoch logs, as Keras leaves out `val_*` between validations,
    rather than logged as the 0.0 of an empty mean that History,
    TensorBoard and checkpoints would take for a result.

    Example: `model.fit(x, y, callbacks=[EpsWarmup(state)])`.
    """

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._unmeasured = None  # not read yet this epoch
        self._set(epoch + (0.0 if self._steps() else 1.0))

    def on_train_batch_begin(self, batch, logs=None):
        steps = self._steps()
        if steps:
            self._set(self._epoch + (batch + 1) / steps)

    def on_train_batch_end(self, batch, logs=None):
        # Read after the step; the evaluation at the epoch's end resets
        # the metrics, so the epoch's logs use the last batch's reading. A
        # count never falls back to 0 within an epoch: once every metric
        # is measured, there is nothing more to read until the next one.
        if self._unmeasured is None or self._unmeasured:
            self._unmeasured = self.state.unmeasured()
        self._drop(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._drop(logs)

    def _drop(self, logs):
        for name in getattr(self, "_unmeasured", None) or ():
            if logs is not None:
                logs.pop(name, None)

    def _steps(self):
        return (self.params or {}).get("steps")

    def _set(self, progress):
        d = self.state.defense
        scale = d.eps_at(progress) / d.eps if d.eps > 0 else 1.0
        self.state.eps_scale.assign(min(1.0, max(0.0, scale)))
