"""Keras callbacks for adversarial training: robust validation accuracy and a
guard against catastrophic overfitting of single-step training."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import pgd


def _batches(data, batch_size, num_examples):
    """Yields (x, y) NumPy batches from a pair of arrays or a tf.data.Dataset
    of (x, y[, sample_weight]) batches, up to `num_examples` examples."""
    seen = 0
    if isinstance(data, tf.data.Dataset):
        source = (keras.utils.unpack_x_y_sample_weight(b)[:2]
                  for b in data.as_numpy_iterator())
    else:
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise ValueError(
                "data must be a tuple (x, y) of arrays or a tf.data.Dataset "
                f"of (x, y) batches. Received: data={type(data).__name__}"
            )
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                "data must hold the same, nonzero number of inputs and "
                f"labels. Received: {len(x)} inputs and {len(y)} labels"
            )
        source = ((x[i: i + batch_size], y[i: i + batch_size])
                  for i in range(0, len(x), batch_size))
    for xb, yb in source:
        if num_examples is not None:
            if seen >= num_examples:
                return
            xb, yb = xb[: num_examples - seen], yb[: num_examples - seen]
        seen += len(xb)
        yield xb, yb


def robust_accuracy(model, data, *, attack=None, eps=None, steps=20,
                    step_size=None, norm=None, clip=None, restarts=1,
                    batch_size=256, num_examples=None, seed=None):
    """Robust accuracy of `model` under PGD (or `attack`): the fraction of
    examples classified correctly both on the clean input and on its
    adversarial example (`keras_adv.ops.robust_hits`, the rule
    `evaluate_robustness` counts with). An example misclassified on clean
    input never counts, even where the attack moves it to the right class,
    and neither does one with NaN or inf outputs, clean or adversarial (a
    float has no room for a warning; `evaluate_robustness` counts a
    non-finite adversarial output apart and says so in its report).

    Budget, norm and box default to those of `model.defense` for a
    `keras_adv.models.AdversarialModel`.

    Args:
        model: a Keras model returning logits or softmax outputs.
        data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` batches.
        attack: optional `fn(model, x, y) -> x_adv`; replaces PGD.
        eps: L-inf/L2 budget (default: `model.defense.eps`).
        steps, step_size, restarts, seed: PGD settings (see
            `keras_adv.attacks.pgd`).
        norm: `"linf"` or `"l2"` (default: the defense's, else `"linf"`).
        clip: input box (default: the defense's, else `(0, 1)`).
        batch_size: examples per attack call (for array data).
        num_examples: use at most this many examples.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: no eps and no defense to take it from, or bad data.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(16, 4).astype("float32")
    >>> y = np.arange(16) % 3
    >>> 0.0 <= robust_accuracy(model, (x, y), eps=0.1, steps=3) <= 1.0
    True
    """
    defense = getattr(model, "defense", None)
    if attack is None:
        if eps is None:
            if defense is None:
                raise ValueError(
                    "eps is required for a model without a defense. "
                    "Received: eps=None"
                )
            eps = defense.eps
        if norm is None:
            norm = defense.norm if defense is not None else "linf"
        if clip is None:
            clip = defense.clip if defense is not None else (0.0, 1.0)
        validation.check_number("eps", eps)
    correct = total = 0
    for xb, yb in _batches(data, batch_size, num_examples):
        if attack is None:
            x_adv = pgd(model, xb, yb, eps=eps, steps=steps,
                        step_size=step_size, norm=norm, clip=clip,
                        restarts=restarts, seed=seed)
        else:
            x_adv = attack(model, xb, yb)
        adv = ops.model_logits(model, x_adv)
        labels = validation.check_labels(yb, len(xb), adv.shape[-1])
        hits = ops.robust_hits(labels, ops.model_logits(model, xb), adv)
        correct += int(np.sum(hits.numpy()))
        total += len(xb)
    if total == 0:
        raise ValueError("data must contain at least one example. Received: "
                         "empty data")
    return correct / total


class RobustValidation(keras.callbacks.Callback):
    """Logs robust validation accuracy at the end of every epoch.

    Runs PGD (by default: 20 steps at the defense's eps, norm and box) on
    validation data and writes the robust accuracy (`robust_accuracy`:
    correct on the clean and on the adversarial input) into the epoch logs
    under `name` (`val_adv_accuracy`), so that `History`, `ProgbarLogger`,
    `TensorBoard`, `ModelCheckpoint(monitor="val_adv_accuracy")` and
    `EarlyStopping` see it.
    Place it before `TensorBoard` and checkpoints in the callbacks list.
    An epoch it skips (`freq`) has no `name` in its logs, as Keras leaves
    out `val_*` between validations: never a value it did not measure.

    Args:
        data: the validation data, `(x, y)` arrays or a `tf.data.Dataset`
            of `(x, y)` batches.
        name: the log key.
        freq: run every `freq` epochs.
        **attack_kwargs: passed to `robust_accuracy` (`eps`, `steps`,
            `step_size`, `norm`, `clip`, `restarts`, `attack`,
            `batch_size`, `num_examples`, `seed`).

    Raises:
        ValueError: `freq` < 1.

    Example:

    ```python
    model.fit(train_ds, epochs=10, callbacks=[
        keras_adv.callbacks.RobustValidation((x_val, y_val), steps=20),
        keras.callbacks.TensorBoard("logs/"),
    ])
    ```
    """

    def __init__(self, data, *, name="val_adv_accuracy", freq=1,
                 **attack_kwargs):
        super().__init__()
        self.data = data
        self.name = name
        self.freq = validation.check_int("freq", freq)
        self.attack_kwargs = attack_kwargs

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.freq:
            return
        acc = robust_accuracy(self.model, self.data,
                              **self.attack_kwargs)
        if logs is not None:
            logs[self.name] = acc


class CatastrophicOverfittingGuard(keras.callbacks.Callback):
    """Stops single-step training when its PGD accuracy collapses.

    Wong, Rice and Kolter (2020): after catastrophic overfitting, FGSM-based
    training keeps high FGSM accuracy while PGD accuracy falls to about 0
    within an epoch. At the end of each epoch this callback runs PGD (5 steps
    by default) on a held batch (a training batch, as in the paper); when the
    robust accuracy is more than `max_drop` below the best seen so far, it
    stops training and, with `restore_best_weights`, restores the weights of
    the best epoch. The accuracy is logged as `name`.

    Args:
        data: the held batch, `(x, y)` arrays (or a tf.data.Dataset).
        max_drop: allowed drop below the best robust accuracy, in [0, 1]
            (0.2 = 20 points).
        restore_best_weights: restore the best weights when stopping.
        name: log key for the held batch's robust accuracy.
        verbose: print a line when stopping.
        **attack_kwargs: passed to `robust_accuracy` (`eps`, `steps` (5 by
            default), `step_size`, `norm`, `clip`, `attack`, `seed`, ...).

    Attributes:
        stopped_epoch: the epoch at which training stopped, or None.
        best_epoch: the epoch of the best robust accuracy.
        best: the best robust accuracy.

    Raises:
        ValueError: `max_drop` outside [0, 1].

    Example:

    ```python
    guard = keras_adv.callbacks.CatastrophicOverfittingGuard(
        (x_train[:512], y_train[:512]))
    model.fit(x_train, y_train, epochs=30, callbacks=[guard])
    ```
    """

    def __init__(self, data, *, max_drop=0.2, restore_best_weights=True,
                 name="guard_adv_accuracy", verbose=1, **attack_kwargs):
        super().__init__()
        max_drop_ok = isinstance(max_drop, (int, float)) and not isinstance(
            max_drop, bool) and 0.0 <= max_drop <= 1.0
        if not max_drop_ok:
            raise ValueError(
                f"max_drop must be a number in [0, 1]. Received: "
                f"max_drop={max_drop!r}"
            )
        self.data = data
        self.max_drop = float(max_drop)
        self.restore_best_weights = bool(restore_best_weights)
        self.name = name
        self.verbose = verbose
        attack_kwargs.setdefault("steps", 5)
        self.attack_kwargs = attack_kwargs

    def on_train_begin(self, logs=None):
        self.best = -1.0
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        acc = robust_accuracy(self.model, self.data, **self.attack_kwargs)
        if logs is not None:
            logs[self.name] = acc
        if acc > self.best:
            self.best, self.best_epoch = acc, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.best - acc > self.max_drop:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: robust accuracy on the held batch "
                    f"fell to {acc:.3f} from {self.best:.3f} (epoch "
                    f"{self.best_epoch + 1}): catastrophic overfitting; "
                    "stopping"
                    + (" and restoring the best weights."
                       if self.restore_best_weights else ".")
                )

