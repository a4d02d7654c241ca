"""The defense protocol: `Defense` and its hooks, `LossResult`,
`StepResult`, `TrainingStep`, the `BallDefense`, `AdversarialOnly` and
`Regularizer` bases, the configuration checks and registration
(`Combined`, several defenses trained together, is in `combined.py`).

A defense is a small frozen configuration object with three hooks, called by
`keras_adv.models.AdversarialModel.train_step` (and the first two by
`keras_adv.defenses.adversarial_loss` in custom training loops):

1. `perturb(model, x, y, eps=None)` runs *outside* the weight-gradient tape
   and returns the perturbed batch. The model runs in inference mode
   (`training=False`), so batch-norm statistics and dropout are untouched by
   the attack, and only input gradients are computed.
2. `loss(model, x, y, x_adv, task_loss=..., sample_weight=None)` runs
   *inside* the tape: it calls the model in training mode and returns a
   `LossResult` (the total loss, each named loss term, and the predictions
   on the clean and perturbed inputs when it computed them).
3. `train_step(step, x, y, sample_weight)` makes one optimizer step from a
   `TrainingStep`; the default is perturb-then-loss. A defense whose
   attack and optimizer steps interleave (FreeTraining) overrides it, with
   its carried state from `create_state`.

New defenses subclass `Defense`, implement `perturb` and `loss`, list their
loss terms in `loss_terms`, and are registered with `serializable`
(`keras.saving.register_keras_serializable(package="keras_adv")`) so that a
saved `AdversarialModel` restores them with `safe_mode=True`.
"""

import dataclasses
from typing import NamedTuple

import keras
import tensorflow as tf

from keras_adv import validation
from keras_adv.defenses import tensors


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


class StepResult(NamedTuple):
    """What `Defense.train_step` returns: the fields of `LossResult`, then
    the perturbed batch.

    Attributes:
        loss: scalar total loss of the step (with regularisation losses).
        terms: dict mapping each name in `Defense.loss_terms` to its value.
        y_pred: training-mode output on the clean batch, or `None`.
        y_pred_adv: training-mode output on the perturbed batch, or `None`.
        x_adv: the perturbed batch, or `None` when the defense recorded the
            adversarial metrics itself (`TrainingStep.record_adversarial`).

    Example:

    >>> r = StepResult(tf.constant(1.0), {}, None, None, None)
    >>> float(r.loss)
    1.0
    """

    loss: tf.Tensor
    terms: dict
    y_pred: object
    y_pred_adv: object
    x_adv: object


class TrainingStep(NamedTuple):
    """What a model hands to `Defense.train_step`: the model and the pieces
    of its step that a defense needs.

    Attributes:
        model: the Keras model being trained.
        eps: the budget in use now (a float32 scalar tensor; below
            `defense.eps` during a warm-up).
        task_loss: `fn(y, y_pred, sample_weight) -> scalar`, the supervised
            (compiled) loss.
        regularization: `fn() -> scalar`, the model's regularisation losses
            (call inside the tape, after the forward pass).
        minimize: `fn(tape, loss, sources=()) -> gradients of sources`:
            applies the weight gradient of `loss` with the optimizer (loss
            scaling and the cross-replica mean included) and returns the
            gradients with respect to `sources` (for example the input).
        record_adversarial: `fn(y, y_pred_adv, sample_weight)` updates the
            adversarial metrics (`adv_accuracy`, ...).
        state: what `defense.create_state()` returned, or `None`.

    Example: `step.minimize(tape, loss)` inside `Defense.train_step`.
    """

    model: object
    eps: object
    task_loss: object
    regularization: object
    minimize: object
    record_adversarial: object
    state: object = None


class Defense:
    """Base class of the adversarial-training configurations.

    Subclasses are frozen dataclasses with at least the fields `eps`, `norm`,
    `clip` and `warmup_epochs` (`BallDefense` declares them), and implement
    `perturb` and `loss` (see the module docstring). `get_config`/
    `from_config` come from the dataclass fields.

    Class attributes:
        loss_terms: names of the loss terms that `loss` returns (logged by
            `fit`).
        uses_unlabeled: whether the defense trains on unlabeled examples
            (label -1).
        penalty_terms: names of the terms of `penalty` (regularisers).
        several_inputs: whether `perturb` and `loss` take a list of input
            tensors (the perturbed inputs of a model with several inputs,
            see `AdversarialModel(perturb=...)`); a defense without it
            trains such a model only when one input is perturbed.
        keeps_rows: whether the model calls of the defense keep the rows
            of the batch (a defense that stacks copies or generated points,
            such as DataSparsity or SmoothAdv, cannot train a model with
            other inputs held fixed or a `perturb_layer`).

    Example:

    >>> d = keras_adv.defenses.PGDTraining(eps=0.3, steps=40, step_size=0.01)
    >>> d.eps_at(0.5)  # no warm-up: always the full budget
    0.3
    """

    loss_terms = ()
    uses_unlabeled = False
    penalty_terms = ()
    several_inputs = False
    keeps_rows = True

    # ------------------------------------------------------------------
    # Hooks
    # ------------------------------------------------------------------

    def perturb(self, model, x, y, *, eps=None):  # pragma: no cover - abstract
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

    def train_step(self, step, x, y, sample_weight=None):
        """One optimizer step on a batch; `AdversarialModel.train_step`
        calls it with its `TrainingStep`.

        The default is perturb-then-loss: `perturb` at `step.eps` outside
        the weight-gradient tape (inference mode), then `loss` in training
        mode inside the tape, plus the model's regularisation losses, and
        one `step.minimize`. A defense whose optimizer steps interleave with
        its attack (FreeTraining's replays) overrides it; such a defense
        keeps its own state in `step.state` (made by `create_state`).

        Args:
            step: the `TrainingStep` of the model (model, eps, task loss,
                minimize, state).
            x: the checked input batch.
            y: the checked labels (sparse or one-hot; -1 for unlabeled rows
                when `uses_unlabeled`).
            sample_weight: optional per-example weights.

        Returns:
            A `StepResult`: the total loss, the loss terms, the clean and
            adversarial training-mode predictions when computed, and the
            perturbed batch (`None` when the defense updated the adversarial
            metrics itself through `step.record_adversarial`).

        Example: `result = defense.train_step(step, x, y)`.
        """
        x_adv = self.perturb(step.model, x, y, eps=step.eps)
        with tf.GradientTape() as tape:
            result = self.loss(step.model, x, y, x_adv,
                               task_loss=step.task_loss,
                               sample_weight=sample_weight, training=True)
            total = result.loss + step.regularization()
        step.minimize(tape, total)
        return StepResult(total, result.terms, result.y_pred,
                          result.y_pred_adv, x_adv)

    def create_state(self):
        """Training state the defense carries across batches (not saved),
        made once by `AdversarialModel` outside any replica context and
        passed back as `TrainingStep.state`; `None` (the default) for
        stateless defenses.

        Example: `state = defense.create_state()`.
        """
        return None

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
        if not isinstance(other, Defense):
            return NotImplemented
        from keras_adv.defenses.combined import Combined  # builds on Defense

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
        clean = tensors.labeled_task_loss(task_loss, y, y_pred, sample_weight)
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



@dataclasses.dataclass(frozen=True, kw_only=True)
class BallDefense(Defense):
    """Base class of the defenses that attack in an eps-ball (FGSM, PGD,
    Fast, Free, TRADES, MART): the fields every one of them has, checked
    with the subclass's own fields by `validate_common`. Subclasses are
    frozen keyword-only dataclasses that add their fields after these.

    Attributes:
        eps: perturbation budget (>= 0).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Example: `class MyTraining(BallDefense): steps: int = 10`.
    """

    eps: float
    norm: str = "linf"
    clip: tuple = (0.0, 1.0)
    warmup_epochs: float = 0.0
    several_inputs = True

    def __post_init__(self):
        validate_common(self)


# The optional fields of the configurations and how each is checked.
_FIELD_CHECKS = {
    "sigma": lambda v: config_number("sigma", v, positive=True),
    "steps": lambda v: validation.check_int("steps", v, minimum=1),
    "samples": lambda v: validation.check_int("samples", v, minimum=1),
    "replays": lambda v: validation.check_int("replays", v, minimum=1),
    "step_size": lambda v: config_number("step_size", v, positive=True,
                                         allow_none=True),
    "beta": lambda v: config_number("beta", v),
    "clean_weight": lambda v: config_number("clean_weight", v, upper=1.0),
    "random_start": bool,
}


def check_defense(defense):
    """Returns `defense` when it is a `Defense`; raises `ValueError`
    naming the training methods otherwise.

    Example: `check_defense(PGDTraining(eps=0.3))`.
    """
    if not isinstance(defense, Defense):
        raise ValueError(
            "defense must be a keras_adv.defenses.Defense (FGSMTraining, "
            "PGDTraining, FastTraining, FreeTraining, TRADES, MART, VAT, "
            "DataSparsity, ...) or a list of them. "
            f"Received: defense={defense!r}")
    return defense


def config_number(name, value, **kwargs):
    """`validation.check_number` for a configuration field: a plain Python
    number (tensors refused), returned as a float.

    Example: `config_number("beta", 6.0)`.
    """
    return validation.check_number(name, value, allow_tensor=False, **kwargs)


def validate_common(obj):
    """Checks and normalises `eps`, `norm`, `clip` and `warmup_epochs` of a
    frozen dataclass defense, then each optional field it has (`sigma`,
    `steps`, `samples`, `replays`, `step_size`, `beta`, `clean_weight`,
    `random_start`, in field order); called from `__post_init__`.

    Example: `validate_common(self)`.
    """
    set_field(obj, "eps", config_number("eps", obj.eps))
    set_field(obj, "norm", validation.check_norm(obj.norm))
    set_field(obj, "clip", validation.check_clip(obj.clip))
    set_field(obj, "warmup_epochs",
              config_number("warmup_epochs", obj.warmup_epochs))
    for field in dataclasses.fields(obj):
        if field.name in _FIELD_CHECKS:
            set_field(obj, field.name,
                      _FIELD_CHECKS[field.name](getattr(obj, field.name)))


def set_field(obj, name, value):
    """Sets a field of a frozen dataclass defense (from `__post_init__`).

    Example: `set_field(self, "eps", 0.3)`.
    """
    object.__setattr__(obj, name, value)


def serializable(cls):
    """Registers a defense class for `keras.saving` (package "keras_adv").

    Example: `@serializable` above a `Defense` dataclass.
    """
    return keras.saving.register_keras_serializable(package="keras_adv")(cls)
