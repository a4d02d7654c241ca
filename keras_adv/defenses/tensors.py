"""Tensor helpers of the training defenses: labeled rows (-1 labels), the
labeled task loss, weighted means, step and eps scaling, frozen batch
statistics. Checks live in `keras_adv.validation`, generic tensor helpers in
`keras_adv.ops`; this module holds what only the defenses use.
"""

import contextlib

import keras
import tensorflow as tf

from keras_adv import _keras_compat, validation


def weighted_mean(values, sample_weight=None):
    """Mean over the batch of per-example `values` times `sample_weight`
    (Keras' "sum_over_batch_size" reduction); 0 for an empty batch.

    Example:

    >>> float(weighted_mean(tf.constant([1.0, 3.0]), tf.constant([1.0, 0.0])))
    0.5
    """
    values = tf.cast(values, tf.float32)
    if sample_weight is not None:
        w = tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
        values = values * w
    # An empty batch (e.g. no labeled row on a replica) gives 0, not NaN.
    count = tf.maximum(tf.cast(tf.shape(values)[0], tf.float32), 1.0)
    return tf.reduce_sum(values) / count


def _scaled_step(step_size, eps, full_eps, default_ratio):
    """The step size for budget `eps`: `default_ratio * eps` when
    `step_size` is None, else `step_size * eps / full_eps` (a warm-up shrinks
    explicit steps in proportion).

    Example: `_scaled_step(0.01, 0.15, 0.3, 0.25)` is 0.005.
    """
    if step_size is None:
        return default_ratio * eps
    if full_eps == 0:
        return tf.zeros_like(eps) if tf.is_tensor(eps) else 0.0
    return step_size * (eps / full_eps)


def resolve_eps(defense, eps):
    """`eps` (or the defense's budget when None) as a float32 scalar tensor.

    Example: `resolve_eps(defense, None)`.
    """
    if eps is None:
        eps = defense.eps
    elif not tf.is_tensor(eps) and not isinstance(eps, tf.Variable):
        eps = validation.check_number("eps", eps, allow_tensor=False)
    return tf.cast(eps, tf.float32)


def budget(defense, eps, default_ratio):
    """`(eps, step_size)` of one perturbation: `resolve_eps(defense, eps)`
    and the defense's `step_size` for it (`_scaled_step`, `default_ratio *
    eps` when the defense has none).

    Example: `eps, alpha = budget(self, eps, 2.5 / self.steps)`.
    """
    eps = resolve_eps(defense, eps)
    return eps, _scaled_step(defense.step_size, eps, defense.eps, default_ratio)


def labeled_mask(y):
    """Boolean `(batch,)` mask of the labeled examples: sparse labels >= 0,
    one-hot rows without a negative entry. A sparse label of -1 (or a one-hot
    row of -1) marks an unlabeled example.

    Example:

    >>> labeled_mask(tf.constant([3, -1, 0])).numpy().tolist()
    [True, False, True]
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1:
        return tf.reduce_all(y >= 0, axis=-1)
    return tf.reshape(y, [-1]) >= 0


def labeled_rows(mask, *tensors):
    """The rows of each tensor where `mask` is true (`None` stays `None`).

    Example: `y_l, y_pred_l = labeled_rows(labeled_mask(y), y, y_pred)`.
    """
    return tuple(None if t is None else tf.boolean_mask(t, mask)
                 for t in tensors)


def labeled_task_loss(task_loss, y, y_pred, sample_weight=None):
    """The supervised loss over the labeled examples only (the mean over
    them with Keras' default reduction); 0 for a batch without labels.
    Unlabeled rows (label -1) enter neither the numerator nor the count.

    Example: `labeled_task_loss(loss_fn, [0, -1], logits)` is the loss of
    the first example.
    """
    mask = labeled_mask(y)
    y_l, pred_l, w_l = labeled_rows(mask, y, y_pred, sample_weight)
    # Keras returns an empty tensor for an empty batch; the sum of a scalar
    # is itself.
    return tf.reduce_sum(task_loss(y_l, pred_l, w_l))


@contextlib.contextmanager
def frozen_batch_statistics(model):
    """Within the block, training-mode calls of `model` do not change the
    moving statistics of its BatchNormalization layers (they are restored
    on exit, also inside `tf.function`, where the reads and writes keep
    program order). Used for the perturbed forward passes of VAT and
    DataSparsity.

    Example:

    ```python
    with frozen_batch_statistics(model):
        y_adv = model(x_adv, training=True)
    ```
    """
    variables = []
    # A Bound view (attacks.inputs) stands for the Keras model it wraps.
    for layer in _keras_compat.flatten_layers(getattr(model, "keras_model",
                                                      model)):
        if isinstance(layer, keras.layers.BatchNormalization):
            variables += [layer.moving_mean, layer.moving_variance]
    saved = [tf.identity(v.value) for v in variables]
    try:
        yield
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)
