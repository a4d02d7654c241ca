"""Robustness metrics that need no eps: DeepFool's empirical robustness and
the loss sensitivity."""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import deepfool
from keras_adv.attacks.losses import attack_objective
from keras_adv.progress import Progress, show

LONG_ATTACKS = 500  # examples DeepFool attacks in a long run (progress=None)
LONG_GRADIENTS = 5000  # examples of a long loss_sensitivity (progress=None)


class EmpiricalRobustness(NamedTuple):
    """What `empirical_robustness` returns.

    Attributes:
        median: median rho over the flipped examples (NaN if none).
        mean: mean rho over the flipped examples (NaN if none).
        evaluated: correctly classified examples attacked.
        failed: those DeepFool did not flip within its steps.

    Example: `EmpiricalRobustness(0.1, 0.12, 90, 0)._asdict()`.
    """

    median: float
    mean: float
    evaluated: int
    failed: int


def empirical_robustness(model, x, y=None, *, norm="l2", clip=(0.0, 1.0),
                         steps=50, overshoot=0.02, batch_size=256,
                         from_logits=None, progress=None):
    """Empirical robustness: the DeepFool minimal perturbation relative to
    the input, rho = ||r|| / ||x||, over correctly classified examples
    (finite outputs predicting the label, `ops.robust_hits`).

    Moosavi-Dezfooli et al. 2016 report the mean; the median is given too,
    since a few examples far from every boundary dominate the mean. Examples
    that DeepFool does not flip within `steps` are left out and counted in
    `"failed"`.

    Args:
        model: Keras model or callable returning logits.
        x: inputs `(batch, ...)` inside `clip`.
        y: labels; `None` uses the predictions (every example counts).
        norm: `"l2"` or `"linf"` (both r and x are measured in it).
        clip: box of valid inputs, or `None`.
        steps: DeepFool iterations.
        overshoot: DeepFool overshoot.
        batch_size: examples per DeepFool call.
        from_logits: see `keras_adv.attacks.pgd`.
        progress: count the examples attacked on stderr
            (`empirical_robustness: attacked 90/90 examples`); `None`: on a
            terminal from `LONG_ATTACKS` correct examples.

    Returns:
        An `EmpiricalRobustness(median, mean, evaluated, failed)`: median
        and mean rho (NaN when nothing was flipped), the correct examples
        attacked and those not flipped.

    Example:

    >>> er = empirical_robustness(model, x_test[:100], y_test[:100])  # doctest: +SKIP
    >>> 0 < er.median < 1  # doctest: +SKIP
    True
    """
    validation.check_model(model)
    norm = validation.check_norm(norm)
    batch_size = validation.check_int("batch_size", batch_size)
    x = np.asarray(validation.check_x(x, validation.check_clip(clip)))
    show(progress)  # a TypeError before any work
    logits = ops.batched_logits(model, x, batch_size, from_logits)
    if y is None:
        y = logits.argmax(-1)
    else:  # the class count is the logits' width: no second forward pass
        classes = ops.logits_width(tf.constant(logits[:1]))
        y = np.asarray(validation.check_labels(y, len(x), classes))
    keep = np.flatnonzero(ops.robust_hits(y, logits).numpy())
    rhos, failed = [], 0
    with Progress.resolve(progress, keep.size, long=LONG_ATTACKS,
                          total=keep.size, counts=True,
                          prefix="empirical_robustness",
                          label="attacked {} examples") as counter:
        for start in range(0, keep.size, batch_size):
            idx = keep[start:start + batch_size]
            counter.doing(f"DeepFool on examples {start + 1}-"
                          f"{start + len(idx)} of the correct ones")
            ratio, flipped = _deepfool_ratios(
                model, x[idx], y[idx], norm=norm, clip=clip, steps=steps,
                overshoot=overshoot, batch_size=batch_size,
                from_logits=from_logits)
            failed += int((~flipped).sum())
            rhos.append(ratio[flipped])
            counter.step(len(idx))
    rhos = np.concatenate(rhos) if rhos else np.zeros(0)
    return EmpiricalRobustness(
        median=float(np.median(rhos)) if rhos.size else float("nan"),
        mean=float(np.mean(rhos)) if rhos.size else float("nan"),
        evaluated=int(keep.size), failed=failed)


def _deepfool_ratios(model, x, y, *, norm, clip, steps, overshoot,
                     batch_size, from_logits):
    """rho = ||r|| / ||x|| of DeepFool on one batch, and which it flipped."""
    adv = deepfool(model, x, y, norm=norm, clip=clip, steps=steps,
                   overshoot=overshoot, from_logits=from_logits).numpy()
    flipped = ops.batched_logits(model, adv, batch_size,
                                 from_logits).argmax(-1) != y
    r = (adv - x).reshape(len(x), -1)
    base = x.reshape(len(x), -1)
    if norm == "l2":
        ratio = np.linalg.norm(r, axis=1) / (np.linalg.norm(base, axis=1)
                                             + 1e-12)
    else:
        ratio = np.abs(r).max(1) / (np.abs(base).max(1) + 1e-12)
    return ratio, flipped


def loss_sensitivity(model, x, y, *, batch_size=256, from_logits=None,
                     progress=None):
    """Loss sensitivity: the mean L2 norm of the input gradient of the
    cross-entropy, E ||grad_x L(x, y)||_2 (as in ART's metric of that name;
    Arpit et al. 2017). Large values mean the loss changes quickly around
    the data; values of exactly 0 mean the gradient vanishes.

    Args:
        model: Keras model or callable returning logits.
        x: inputs `(batch, ...)`.
        y: labels, sparse or one-hot.
        batch_size: examples per gradient call.
        from_logits: see `keras_adv.attacks.pgd`.
        progress: count the examples on stderr (`loss_sensitivity:
            differentiated 100/100 examples`); `None`: on a terminal from
            `LONG_GRADIENTS` examples.

    Returns:
        A float.

    Example:

    >>> loss_sensitivity(model, x_test[:100], y_test[:100])  # doctest: +SKIP
    0.83
    """
    validation.check_model(model)
    batch_size = validation.check_int("batch_size", batch_size)
    x = np.asarray(validation.check_x(x, None))
    y = np.asarray(validation.check_labels(
        y, len(x), ops.num_classes(model, x, from_logits)))
    norms = []
    with Progress.resolve(progress, len(x), long=LONG_GRADIENTS,
                          total=len(x), counts=True, prefix="loss_sensitivity",
                          label="differentiated {} examples") as counter:
        for start in range(0, len(x), batch_size):
            grad = input_gradient(model, x[start:start + batch_size],
                                  y[start:start + batch_size], from_logits)
            if grad is None:
                raise ValueError(
                    "model gives no gradient with respect to its input. "
                    "Received: a model whose output does not depend "
                    "differentiably on x")
            norms.append(np.linalg.norm(grad.reshape(len(grad), -1), axis=1))
            counter.step(len(grad))
    return float(np.mean(np.concatenate(norms)))


def input_gradient(model, x, y, from_logits=None, loss="ce"):
    """Per-example input gradient of the attack objective as a NumPy array,
    or `None` when the model gives no gradient.

    Example: `g = input_gradient(model, x[:8], y[:8])`.
    """
    xt = tf.convert_to_tensor(np.asarray(x, np.float32))
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(xt)
        logits = ops.model_logits(model, xt, from_logits)
        obj = attack_objective(logits, tf.constant(y), loss=loss)
        total = tf.reduce_sum(obj)
    grad = tape.gradient(total, xt)
    return None if grad is None else grad.numpy()
