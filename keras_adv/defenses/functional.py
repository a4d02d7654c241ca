"""The adversarial loss as a plain function, for custom training loops."""

import keras
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.defenses import protocol


def adversarial_loss(model, x, y, defense, *, loss=None, sample_weight=None,
                     eps=None, x_adv=None, training=True):
    """The loss of `defense` on one batch, for custom training loops.

    Computes `x_adv = defense.perturb(model, x, y, eps)` (inference mode,
    input gradients only) unless `x_adv` is given, then
    `defense.loss(...)` in training mode. Call it inside your
    `tf.GradientTape`; to keep the attack's forward passes off that tape
    (less memory), compute `x_adv = defense.perturb(model, x, y)` before the
    tape and pass it in. Works eagerly and inside `tf.function`.

    `FreeTraining` needs the optimizer inside its replay loop and is not a
    single loss: use `keras_adv.models.AdversarialModel` for it.

    Args:
        model: a Keras model returning logits (softmax outputs are detected).
        x: input batch, inside `defense.clip`.
        y: sparse `(batch,)` or one-hot `(batch, classes)` labels.
        defense: a `keras_adv.defenses.Defense`.
        loss: the supervised loss, a `keras.losses.Loss` or
            `fn(y_true, y_pred, sample_weight=None)`; `None` means
            cross-entropy from logits (sparse or categorical by the shape of
            `y`). Softmax-output models need a loss with `from_logits=False`.
        sample_weight: optional per-example weights.
        eps: budget for this batch (e.g. `defense.eps_at(epoch)` for a
            warm-up); `None` means `defense.eps`.
        x_adv: a precomputed perturbed batch.
        training: passed to the training forward passes.

    Returns:
        A `LossResult`: `.loss` (scalar), `.terms` (dict of named terms),
        `.y_pred` and `.y_pred_adv` (outputs on x and x_adv, or None).

    Raises:
        ValueError: `defense` is not a Defense, or is a `FreeTraining`; x
            with NaN/inf or outside `defense.clip`; labels out of range
            (eagerly; inside `tf.function` these are assertion errors).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> y = np.arange(8) % 3
    >>> defense = keras_adv.defenses.TRADES(eps=0.1, steps=2)
    >>> with tf.GradientTape() as tape:
    ...     result = keras_adv.defenses.adversarial_loss(model, x, y, defense)
    >>> grads = tape.gradient(result.loss, model.trainable_weights)
    >>> sorted(result.terms)
    ['clean_loss', 'kl_loss']
    """
    protocol.check_defense(defense)
    if type(defense).train_step is not protocol.Defense.train_step:
        raise ValueError(
            f"{type(defense).__name__} runs its own training step (FreeTraining "
            "replays each batch with an optimizer step per replay), which a "
            "single loss cannot express; train it with "
            "keras_adv.models.AdversarialModel. Received: "
            f"defense={defense!r}"
        )
    x = tf.convert_to_tensor(x)
    if x.dtype == tf.float64:
        x = tf.cast(x, tf.float32)
    x, y = validation.check_batch(x, y, clip=defense.clip,
                            num_classes=ops.num_classes(model),
                            unlabeled=defense.uses_unlabeled)
    task_loss = make_task_loss(loss, y)
    if x_adv is None:
        x_adv = defense.perturb(model, x, y, eps=eps)
    return defense.loss(model, x, y, x_adv, task_loss=task_loss,
                        sample_weight=sample_weight, training=training)


def make_task_loss(loss, y):
    """`fn(y, y_pred, sample_weight) -> scalar` from a Keras loss, a
    callable, or `None` (cross-entropy from logits, sparse or categorical by
    the shape of `y`).

    Example: `task_loss = make_task_loss(None, y)`.
    """
    if loss is None:
        one_hot = y.shape.rank == 2 and (y.shape[-1] or 1) > 1
        loss = (keras.losses.CategoricalCrossentropy(from_logits=True)
                if one_hot else
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    elif isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not callable(loss):
        raise ValueError(
            f"loss must be a Keras loss or a callable. Received: loss={loss!r}"
        )

    def task_loss(y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return loss(y_true, y_pred)
        return loss(y_true, y_pred, sample_weight=sample_weight)

    return task_loss
