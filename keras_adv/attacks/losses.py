"""Attack objectives: per-example losses that an attack *maximises*.

Every attack in `keras_adv.attacks` maximises one of these objectives. For a
targeted attack the objective is arranged so that maximising it moves the
prediction toward the target class, so a single "ascend" code path serves
both cases.
"""

import tensorflow as tf

from keras_adv.validation import LOSSES


def _other_max(logits, labels):
    """max_{i != y} z_i for each row."""
    num_classes = tf.shape(logits)[-1]
    mask = tf.one_hot(labels, num_classes) > 0.5
    lowest = tf.fill(tf.shape(logits), logits.dtype.min)
    return tf.reduce_max(tf.where(mask, lowest, logits), axis=-1)


def _label_logit(logits, labels):
    return tf.gather(logits, labels, axis=-1, batch_dims=1)


def margin(logits, labels):
    """Carlini-Wagner margin z_y - max_{i != y} z_i, per example.

    Positive when the example is classified as `labels`.

    Args:
        logits: float tensor of shape `(batch, classes)`.
        labels: integer tensor of shape `(batch,)`.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> float(margin(tf.constant([[3.0, 1.0, 0.0]]), tf.constant([0]))[0])
    2.0
    """
    return _label_logit(logits, labels) - _other_max(logits, labels)


def dlr(logits, labels, *, target=None):
    """Difference of Logits Ratio loss of Croce & Hein (2020), per example.

    Untargeted: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12).
    Targeted:   -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12),
    where z_pi1 >= z_pi2 >= ... are the sorted logits. Both are to be
    maximised by an attacker. DLR is invariant to shifting and rescaling the
    logits, so saturated softmax outputs do not hide its gradient.

    Args:
        logits: float tensor `(batch, classes)`; at least 3 classes
            (4 when `target` is given).
        labels: integer tensor `(batch,)`, the true (or source) classes.
        target: optional integer tensor `(batch,)` of target classes.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> z = tf.constant([[4.0, 2.0, 1.0, 0.0]])
    >>> round(float(dlr(z, tf.constant([0]))[0]), 4)  # -(4-2)/(4-1)
    -0.6667
    """
    top = tf.math.top_k(logits, k=4 if target is not None else 3).values
    if target is None:
        num = _label_logit(logits, labels) - _other_max(logits, labels)
        den = top[:, 0] - top[:, 2] + 1e-12
    else:
        num = _label_logit(logits, labels) - _label_logit(logits, target)
        den = top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12
    return -num / den


def attack_objective(logits, labels, *, loss="ce", targeted=False,
                     source=None):
    """Per-example objective that an attack maximises.

    Untargeted (labels are the true classes):
        ce: cross-entropy of `labels`; margin: max_{i != y} z_i - z_y;
        dlr: the DLR loss.
    Targeted (labels are the target classes):
        ce: minus the cross-entropy of the target; margin: z_t - max_{i != t}
        z_i; dlr: targeted DLR with `source` as the true class (the
        attack passes the model's clean prediction).

    Args:
        logits: float tensor `(batch, classes)`.
        labels: integer tensor `(batch,)`.
        loss: one of `"ce"`, `"margin"`, `"dlr"`.
        targeted: whether `labels` are targets.
        source: integer tensor `(batch,)`, needed for targeted DLR only.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> z = tf.constant([[2.0, 0.0, 0.0]])
    >>> float(attack_objective(z, tf.constant([0]), loss="margin")[0])
    -2.0
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    if loss == "ce":
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return -ce if targeted else ce
    if loss == "margin":
        m = margin(logits, labels)
        return m if targeted else -m
    if loss == "dlr":
        if targeted:
            return dlr(logits, tf.cast(source, tf.int32), target=labels)
        return dlr(logits, labels)
    raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss!r}")


def is_successful(logits, labels, targeted):
    """Whether each example meets the attack goal (misclassified / on target).

    Example:

    >>> bool(is_successful(tf.constant([[0.0, 1.0]]), tf.constant([0]),
    ...                    False)[0])
    True
    """
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    hit = tf.equal(pred, tf.cast(labels, tf.int32))
    return hit if targeted else tf.logical_not(hit)
