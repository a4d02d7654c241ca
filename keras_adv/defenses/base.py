"""The defense protocol shared by every adversarial-training method.

A defense is a small frozen configuration object with two hooks, called by
`keras_adv.models.AdversarialModel.train_step` (and by
`keras_adv.defenses.adversarial_loss` in custom training loops):

1. `perturb(model, x, y, eps=None)` runs *outside* the weight-gradient tape
   and returns the perturbed batch. The model runs in inference mode
   (`training=False`), so batch-norm statistics and dropout are untouched by
   the attack, and only input gradients are computed.
2. `loss(model, x, y, x_adv, task_loss=..., sample_weight=None)` runs
   *inside* the tape: it calls the model in training mode and returns a
   `LossResult` (the total loss, each named loss term, and the predictions
   on the clean and perturbed inputs when it computed them).

New defenses subclass `Defense`, implement the two hooks, list their loss
terms in `loss_terms`, and are registered with
`keras.saving.register_keras_serializable(package="keras_adv")` so that a
saved `AdversarialModel` restores them with `safe_mode=True`.
"""

import contextlib
import dataclasses
from typing import NamedTuple

import keras
import tensorflow as tf

from keras_adv import ops, validation


class LossResult(NamedTuple):
    """What `Defense.loss` returns.

    Attributes:
        loss: scalar total loss of the defense (without regularisation
            losses of the model, which the caller adds).
        terms: dict mapping each name in `Defense.loss_terms` to its scalar
            value (unweighted, as logged by `fit`).
        y_pred: the model's training-mode output on the clean batch, or
            `None` when the defense did not compute it.
        y_pred_adv: the model's training-mode output on the perturbed batch,
            or `None`.

    Example:

    >>> r = LossResult(tf.constant(1.0), {"adv_loss": tf.constant(1.0)},
    ...                None, None)
    >>> float(r.loss)
    1.0
    """

    loss: tf.Tensor
    terms: dict
    y_pred: object
    y_pred_adv: object


class Defense:
    """Base class of the adversarial-training configurations.

    Subclasses are frozen dataclasses with at least the fields `eps`, `norm`,
    `clip` and `warmup_epochs`, and implement `perturb` and `loss` (see the
    module docstring). `get_config`/`from_config` come from the dataclass
    fields.

    Class attributes:
        loss_terms: names of the loss terms that `loss` returns (logged by
            `fit`).
        replays: `None`, or the number of minibatch replays for defenses
            that update the perturbation and the weights in the same
            backward pass (Free-AT); `AdversarialModel` then uses its replay
            step instead of calling `perturb`.

    Example:

    >>> d = keras_adv.defenses.PGDTraining(eps=0.3, steps=40, step_size=0.01)
    >>> d.eps_at(0.5)  # no warm-up: always the full budget
    0.3
    """

    loss_terms = ()
    replays = None
    uses_unlabeled = False
    penalty_terms = ()

    # ------------------------------------------------------------------
    # Hooks
    # ------------------------------------------------------------------

    def perturb(self, model, x, y, eps=None):  # pragma: no cover - abstract
        """Returns the perturbed batch (inference mode, no weight gradient).

        Args:
            model: the Keras model being trained (returns logits, or softmax
                outputs, which are detected).
            x: the input batch, inside `clip`.
            y: sparse or one-hot labels.
            eps: budget to use (a float or scalar tensor); `None` uses
                `self.eps`. Step sizes given explicitly shrink in proportion
                when `eps < self.eps` (warm-up).
        """
        raise NotImplementedError

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):  # pragma: no cover - abstract
        """Returns a `LossResult` for one batch (call inside the tape).

        Args:
            model: the Keras model being trained.
            x: the clean batch.
            y: sparse or one-hot labels.
            x_adv: the output of `perturb`.
            task_loss: `fn(y, y_pred, sample_weight) -> scalar`, the
                supervised loss (the compiled loss of the model).
            sample_weight: optional per-example weights.
            training: passed to the model's forward passes.
        """
        raise NotImplementedError

    def penalty(self, model, x, y, x_adv, *, sample_weight=None,
                training=True, y_pred=None):
        """The unsupervised term of a regulariser defense (VAT,
        DataSparsity), without the supervised loss, for use after another
        defense in a `Combined` (call inside the tape).

        Returns a `LossResult` whose terms are `penalty_terms`; `y_pred` and
        `y_pred_adv` cover the whole batch. `y_pred` may pass a
        training-mode output on `x` to reuse. Defenses that need labels do
        not have a penalty.

        Example: `defense.penalty(model, x, y, x_adv).loss`.
        """
        raise ValueError(
            f"{type(self).__name__} is not a regulariser: it can only be the "
            "supervised (first) member of a combination. Received: "
            f"defense={self!r}"
        )

    def attack(self, model, x, y):
        """The perturbation `evaluate(adversarial=True)` uses: `perturb` at
        the full budget.

        Example: `x_adv = defense.attack(model, x, y)`.
        """
        return self.perturb(model, x, y)

    def __add__(self, other):
        """`a + b` is `Combined([a, b])`: the supervised member's loss plus
        the penalties of the regulariser members.

        Example: `PGDTraining(eps=0.3) + VAT(eps=2.0)`.
        """
        from keras_adv.defenses.combined import Combined

        if not isinstance(other, Defense):
            return NotImplemented
        return Combined([self, other])

    # ------------------------------------------------------------------
    # Schedule
    # ------------------------------------------------------------------

    def eps_at(self, epoch):
        """The budget after `epoch` epochs of training (a float >= 0).

        Linear warm-up: `eps * min(1, epoch / warmup_epochs)`, where `epoch`
        counts fractional progress (epoch 2, batch 50 of 100 is 2.5).
        `AdversarialModel.fit` applies it every batch; custom loops can call
        it directly.

        Example:

        >>> d = keras_adv.defenses.PGDTraining(eps=0.3, warmup_epochs=3)
        >>> round(d.eps_at(1.5), 3)
        0.15
        """
        if not self.warmup_epochs:
            return float(self.eps)
        return float(self.eps) * min(1.0, max(0.0, epoch) / self.warmup_epochs)

    # ------------------------------------------------------------------
    # Serialisation
    # ------------------------------------------------------------------

    def get_config(self):
        """The dataclass fields as a JSON-friendly dict.

        Example:

        >>> keras_adv.defenses.FGSMTraining(eps=0.1).get_config()["eps"]
        0.1
        """
        config = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds the defense from `get_config()`.

        Example:

        >>> d = keras_adv.defenses.TRADES(eps=0.3, beta=6.0)
        >>> type(d).from_config(d.get_config()) == d
        True
        """
        return cls(**config)


class Regularizer(Defense):
    """Base class of the defenses whose penalty needs no labels (VAT,
    DataSparsity): they train on unlabeled examples (label -1) too, and can
    follow an adversarial-training defense in a `Combined`. Subclasses
    implement `perturb` and `penalty`; the loss is the supervised loss over
    the labeled examples plus the penalty over all of them.

    Example: `class MyPenalty(Regularizer): ...`.
    """

    uses_unlabeled = True

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """The supervised loss on the labeled examples plus `penalty` (see
        `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        y_pred = model(x, training=training)
        clean = labeled_task_loss(task_loss, y, y_pred, sample_weight)
        reg = self.penalty(model, x, y, x_adv, sample_weight=sample_weight,
                           training=training, y_pred=y_pred)
        return LossResult(clean + reg.loss, {"clean_loss": clean, **reg.terms},
                          y_pred, reg.y_pred_adv)


class AdversarialOnly(Defense):
    """Base class of the defenses whose loss is the supervised loss at the
    perturbed batch alone, `L(x_adv)` (PGD-AT, Fast-AT, Free-AT).

    Example: `class MyAttackTraining(AdversarialOnly): ...`.
    """

    loss_terms = ("adv_loss",)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """`L(x_adv)` only (see `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        del x
        y_adv = model(x_adv, training=training)
        adv = task_loss(y, y_adv, sample_weight)
        return LossResult(adv, {"adv_loss": adv}, None, y_adv)


# --------------------------------------------------------------------------
# Argument checks shared by the configurations
# --------------------------------------------------------------------------


# The optional fields of the configurations and how each is checked.
_FIELD_CHECKS = {
    "steps": lambda v: validation.check_int("steps", v, minimum=1),
    "replays": lambda v: validation.check_int("replays", v, minimum=1),
    "step_size": lambda v: config_number("step_size", v, positive=True,
                                         allow_none=True),
    "beta": lambda v: config_number("beta", v),
    "clean_weight": lambda v: config_number("clean_weight", v, upper=1.0),
    "random_start": bool,
}


def config_number(name, value, **kwargs):
    """`validation.check_number` for a configuration field: a plain Python
    number (tensors refused), returned as a float.

    Example: `config_number("beta", 6.0)`.
    """
    return validation.check_number(name, value, allow_tensor=False, **kwargs)


def validate_common(obj, *fields):
    """Checks and normalises `eps`, `norm`, `clip` and `warmup_epochs` of a
    frozen dataclass defense, then each named optional field (`steps`,
    `replays`, `step_size`, `beta`, `clean_weight`, `random_start`); called
    from `__post_init__`.

    Example: `validate_common(self, "steps", "step_size")`.
    """
    _set(obj, "eps", config_number("eps", obj.eps))
    _set(obj, "norm", validation.check_norm(obj.norm))
    _set(obj, "clip", validation.check_clip(obj.clip))
    _set(obj, "warmup_epochs", config_number("warmup_epochs", obj.warmup_epochs))
    for name in fields:
        _set(obj, name, _FIELD_CHECKS[name](getattr(obj, name)))


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------
# Tensor helpers used by the defenses
# --------------------------------------------------------------------------








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


def scaled_step(step_size, eps, full_eps, default_ratio):
    """The step size for budget `eps`: `default_ratio * eps` when
    `step_size` is None, else `step_size * eps / full_eps` (a warm-up shrinks
    explicit steps in proportion).

    Example: `scaled_step(0.01, 0.15, 0.3, 0.25)` is 0.005.
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
        eps = config_number("eps", eps)
    return tf.cast(eps, tf.float32)


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
    layers = getattr(model, "_flatten_layers", None)
    if layers is not None:
        for layer in layers(include_self=True, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                variables += [layer.moving_mean, layer.moving_variance]
    saved = [tf.identity(v.value) for v in variables]
    try:
        yield
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)




def pgd_perturb(model, x, y, *, eps, alpha, steps, norm, clip, random_start):
    """PGD on cross-entropy with the attack core (inference mode), from a
    uniform random start (or none). Returns a tensor like `x`.

    Example: `pgd_perturb(model, x, y, eps=0.3, alpha=0.01, steps=40,
    norm="linf", clip=(0.0, 1.0), random_start=True)`.
    """
    from keras_adv.attacks._pgd import pgd_loop

    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    labels = ops.sparse_labels(y)
    return pgd_loop(
        model, x, labels, labels, eps, alpha, ops.seed_tensor(None),
        steps=steps, restarts=1, momentum=0.0, norm=norm, loss="ce",
        targeted=False, random_start=random_start, clip=clip,
        from_logits=None, eot_samples=1,
    )


def gaussian_start_ascent(model, x, objective, *, eps, alpha, steps, norm,
                          clip):
    """Sign (L-inf) or normalised (L2) gradient ascent on
    `objective(adv_logits) -> per-example values` from x + 0.001 N(0, I),
    projected onto the eps-ball and the `clip` box after each step (the
    TRADES and MART inner maximisation). The model runs in inference mode and
    only the input gradient is computed.

    Example: `gaussian_start_ascent(model, x, lambda z: kl(p, z), eps=0.3,
    alpha=0.01, steps=40, norm="linf", clip=(0.0, 1.0))`.
    """
    x = tf.convert_to_tensor(x)
    in_dtype = x.dtype if x.dtype.is_floating else tf.float32
    x0 = tf.cast(x, tf.float32)
    adv = x0 + 0.001 * tf.random.normal(tf.shape(x0))
    adv = ops.clip_box(x0 + ops.project(adv - x0, eps, norm), clip)
    for _ in range(steps):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(adv)
            logits = ops.model_logits(model, tf.cast(adv, in_dtype))
            total = tf.reduce_sum(objective(logits))
        grad = tape.gradient(total, adv)
        adv = adv + alpha * ops.steepest_step(grad, norm)
        adv = ops.clip_box(x0 + ops.project(adv - x0, eps, norm), clip)
    return tf.stop_gradient(tf.cast(adv, in_dtype))


def serializable(cls):
    """Registers a defense class for `keras.saving` (package "keras_adv").

    Example: `@serializable` above a `Defense` dataclass.
    """
    return keras.saving.register_keras_serializable(package="keras_adv")(cls)
