"""The pieces of an `AdversarialModel` training step: the optimizer step
across replicas, the logs of a step, and the eps warm-up callback."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv.defenses import tensors
from keras_adv.models import robust


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


def step_logs(model, x, y, sample_weight, result, adv_model=None):
    """Updates the trackers and metrics of `model` after a step (a
    `StepResult`); returns the logs. Clean predictions come from an
    inference-mode call when the defense did not compute them; with
    unlabeled rows (-1) the metrics count the labeled ones only.

    Example: `return step_logs(self, x, y, sample_weight, result)`.
    """
    state, defense = model._state, model.defense
    batch = robust.batch_size(x)
    state.loss_tracker.update_state(result.loss, sample_weight=batch)
    for name in defense.loss_terms:
        state.term_trackers[name].update_state(result.terms[name],
                                               sample_weight=batch)
    y_pred, y_adv = result.y_pred, None
    if state.clean_metrics and y_pred is None:
        y_pred = model(x, training=False)
    if state.adv_metrics and result.x_adv is not None:
        y_adv = result.y_pred_adv
        if y_adv is None:
            y_adv = (adv_model or model)(result.x_adv, training=False)
    y_m, w_m = y, sample_weight
    if defense.uses_unlabeled:
        y_m, y_pred, y_adv, w_m = tensors.labeled_rows(
            tensors.labeled_mask(y), y, y_pred, y_adv, sample_weight)
    if state.clean_metrics:
        model.compute_metrics(x, y_m, y_pred, w_m)
    if y_adv is not None:
        model._record_adversarial(y_m, y_adv, w_m)
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
    """Sets the eps scale of an `AdversarialModel` before every batch from
    `defense.eps_at(epoch + batch / steps)` (per epoch when the number of
    steps is unknown); `AdversarialModel.fit` adds it when the defense has
    `warmup_epochs > 0`.

    While eps warms up, an `adv_` metric that no training batch of the
    epoch has measured yet (`compiled.State.unmeasured`) is left out of the
    batch and epoch logs, as Keras leaves out `val_*` between validations,
    rather than logged as the 0.0 of an empty mean that History,
    TensorBoard and checkpoints would take for a result.

    Example: `model.fit(x, y, callbacks=[EpsWarmup()])`.
    """

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
            self._unmeasured = self.model._state.unmeasured()
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
        d = self.model.defense
        scale = d.eps_at(progress) / d.eps if d.eps > 0 else 1.0
        self.model.set_eps_scale(min(1.0, max(0.0, scale)))
