"""The defense protocol: `Defense` and its hooks, `LossResult`,
`StepResult`, `TrainingStep`, the `AdversarialOnly` and `Regularizer` bases,
`Combined`, the configuration checks and registration.

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
    """What `Defense.train_step` returns.

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
    `clip` and `warmup_epochs`, and implement `perturb` and `loss` (see the
    module docstring). `get_config`/`from_config` come from the dataclass
    fields.

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
    set_field(obj, "eps", config_number("eps", obj.eps))
    set_field(obj, "norm", validation.check_norm(obj.norm))
    set_field(obj, "clip", validation.check_clip(obj.clip))
    set_field(obj, "warmup_epochs", config_number("warmup_epochs", obj.warmup_epochs))
    for name in fields:
        set_field(obj, name, _FIELD_CHECKS[name](getattr(obj, name)))


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


@serializable
@dataclasses.dataclass(frozen=True, eq=True)
class Combined(Defense):
    """Several defenses trained together: `Combined([a, b])`, `a + b`, or
    `AdversarialModel(base, defense=[a, b])`.

    The combination has one supervised member and any number of
    regularisers (defenses with a label-free `penalty`: `VAT`,
    `DataSparsity`). The loss is the supervised member's whole loss plus the
    penalty of each regulariser (its weighted terms, without a second
    supervised term):

    - `PGDTraining(eps=0.3) + VAT(eps=2.0)`: cross-entropy at the PGD
      points of the labeled examples, plus the VAT KL over every example
      (labeled or not);
    - `PGDTraining(eps=0.3) + DataSparsity()`: the same with the smoothness
      penalty at the clean and generated points;
    - `VAT(eps=2.0) + DataSparsity()`: VAT's loss (with its supervised term)
      plus the smoothness penalty.

    The supervised member is the one defense that needs labels (FGSM, PGD,
    Fast, TRADES, MART); with only regularisers it is the first one. At most
    one member may need labels, and FreeTraining cannot be combined (it
    replays batches with its own optimizer steps). A member that needs
    labels sees the labeled examples of each batch only (label -1 marks an
    unlabeled example); regularisers see the whole batch. The eps warm-up
    and `eps`, `norm`, `clip` are those of the supervised member; the
    other members must not have a warm-up. `evaluate(adversarial=True)`
    uses the supervised member's attack. Loss terms are the members' terms
    (their names must differ).

    Args:
        defenses: a list of at least two `Defense` objects (nested
            combinations are flattened).

    Raises:
        ValueError: fewer than two defenses, an object that is not a
            Defense, two members that need labels, a FreeTraining member,
            a warm-up on a member other than the supervised one, or two
            members logging a term under the same name.

    Example:

    >>> d = (keras_adv.defenses.PGDTraining(eps=0.3, steps=5)
    ...      + keras_adv.defenses.VAT(eps=2.0))
    >>> d.loss_terms
    ('adv_loss', 'vat_loss', 'entropy_loss')
    >>> type(d.supervised).__name__
    'PGDTraining'
    """

    defenses: tuple

    uses_unlabeled = True

    def __post_init__(self):
        members = self.defenses
        if isinstance(members, Defense) or not isinstance(
                members, (list, tuple)):
            raise ValueError(
                "defenses must be a list of keras_adv.defenses.Defense "
                f"objects. Received: defenses={members!r}"
            )
        flat = []
        for d in members:
            if not isinstance(d, Defense):
                raise ValueError(
                    "defenses must contain keras_adv.defenses.Defense "
                    f"objects only. Received: an element {d!r}"
                )
            flat += list(d.defenses) if isinstance(d, Combined) else [d]
        if len(flat) < 2:
            raise ValueError(
                "A combination needs at least two defenses. Received: "
                f"defenses={members!r}"
            )
        for d in flat:
            if type(d).train_step is not Defense.train_step:
                raise ValueError(
                    f"{type(d).__name__} cannot be combined: it runs its own "
                    "training step (FreeTraining replays each batch with its "
                    f"own optimizer steps). Received: defenses={members!r}"
                )
        supervised = [d for d in flat if not d.uses_unlabeled]
        if len(supervised) > 1:
            raise ValueError(
                "At most one member of a combination may need labels "
                "(FGSM, PGD, Fast, TRADES, MART); the others must be "
                "regularisers (VAT, DataSparsity). Received: "
                f"defenses={members!r}"
            )
        main = supervised[0] if supervised else flat[0]
        for d in flat:
            if d is not main and d.warmup_epochs:
                raise ValueError(
                    "Only the supervised member of a combination "
                    f"({type(main).__name__}) may have a warm-up. Received: "
                    f"{type(d).__name__} with warmup_epochs={d.warmup_epochs}"
                )
        terms = list(main.loss_terms)
        for d in flat:
            if d is not main:
                terms += list(d.penalty_terms)
        duplicates = sorted({t for t in terms if terms.count(t) > 1})
        if duplicates:
            raise ValueError(
                "The members of a combination must log different loss "
                f"terms. Received: defenses logging {duplicates} twice"
            )
        set_field(self, "defenses", tuple(flat))
        object.__setattr__(self, "_main", main)
        object.__setattr__(self, "_terms", tuple(terms))

    # The supervised member's schedule and geometry.
    @property
    def supervised(self):
        """The member whose loss carries the supervised term."""
        return self._main

    @property
    def regularizers(self):
        """The other members, which add their `penalty`."""
        return tuple(d for d in self.defenses if d is not self._main)

    @property
    def loss_terms(self):
        return self._terms

    @property
    def eps(self):
        return self._main.eps

    @property
    def norm(self):
        return self._main.norm

    @property
    def clip(self):
        return self._main.clip

    @property
    def warmup_epochs(self):
        return self._main.warmup_epochs

    def _subset(self, d, y):
        """The labeled-row mask for a member that needs labels, else None."""
        if y is None or d.uses_unlabeled:
            return None
        return tensors.labeled_mask(y)

    def perturb(self, model, x, y, eps=None):
        """A tuple with each member's perturbation, in member order; the
        supervised member gets `eps` (the warm-up), the others their own
        budget. A member that needs labels perturbs the labeled rows only.

        Example: `x_advs = defense.perturb(model, x, y)`.
        """
        out = []
        for d in self.defenses:
            mask = self._subset(d, y)
            if mask is None:
                out.append(d.perturb(model, x, y,
                                     eps=eps if d is self._main else None))
            else:
                x_l, y_l = tensors.labeled_rows(mask, x, y)
                out.append(d.perturb(model, x_l, y_l, eps=eps))
        return tuple(out)

    def attack(self, model, x, y):
        """The supervised member's attack (for `evaluate(adversarial=True)`).

        Example: `x_adv = defense.attack(model, x, y)`.
        """
        return self._main.attack(model, x, y)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """The supervised member's loss plus the regularisers' penalties
        (see `Defense.loss`). `x_adv` is the tuple from `perturb`. The
        returned predictions cover the whole batch (rows the supervised
        member did not see are zeros).

        Example: `result = defense.loss(model, x, y, defense.perturb(model,
        x, y), task_loss=loss_fn)`.
        """
        x = tf.convert_to_tensor(x)
        x_adv = dict(zip(map(id, self.defenses), x_adv))
        main = self._main
        mask = self._subset(main, y)
        shared = y_pred = y_pred_adv = None
        total, terms = 0.0, {}
        if mask is None:
            r = main.loss(model, x, y, x_adv[id(main)], task_loss=task_loss,
                          sample_weight=sample_weight, training=training)
            y_pred, y_pred_adv = r.y_pred, r.y_pred_adv
            shared = y_pred  # a training-mode output on the whole batch
            total, terms = r.loss, dict(r.terms)
        for d in self.regularizers:
            p = d.penalty(model, x, y, x_adv[id(d)],
                          sample_weight=sample_weight, training=training,
                          y_pred=shared)
            if shared is None:
                shared = y_pred = p.y_pred
            total = total + p.loss
            terms.update(p.terms)
        if mask is not None:
            loss, main_terms, y_pred_adv = self._labeled_loss(
                model, x, y, x_adv[id(main)], mask, task_loss, sample_weight,
                training, like=y_pred)
            total = loss + total
            terms = {**main_terms, **terms}
        return LossResult(total, terms, y_pred, y_pred_adv)

    def _labeled_loss(self, model, x, y, x_adv, mask, task_loss,
                      sample_weight, training, like):
        """The supervised member's loss on the labeled rows, its terms, and
        its adversarial predictions scattered to the whole batch (zeros
        elsewhere). A batch without labeled rows skips the member (a
        training-mode pass on an empty batch would put NaN into
        BatchNormalization statistics) and gives zeros."""
        main = self._main
        x_l, y_l, w_l = tensors.labeled_rows(mask, x, y, sample_weight)

        def run():
            r = main.loss(model, x_l, y_l, x_adv, task_loss=task_loss,
                          sample_weight=w_l, training=training)
            y_adv = r.y_pred_adv
            if y_adv is None:
                y_adv = tf.stop_gradient(model(x_adv, training=False))
            values = tuple(tf.cast(r.terms[t], tf.float32)
                           for t in main.loss_terms)
            return (tf.cast(r.loss, tf.float32), values,
                    tf.cast(_scatter_rows(mask, y_adv), like.dtype))

        def skip():
            zero = tf.constant(0.0)
            return (zero, tuple(zero for _ in main.loss_terms),
                    tf.zeros_like(like))

        loss, values, y_adv = tf.cond(tf.reduce_any(mask), run, skip)
        return loss, dict(zip(main.loss_terms, values)), y_adv

    def get_config(self):
        """`{"defenses": [serialised members]}`.

        Example: `Combined.from_config(d.get_config()) == d`.
        """
        return {"defenses": [keras.saving.serialize_keras_object(d)
                             for d in self.defenses]}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the combination and its members.

        Example: `Combined.from_config(d.get_config())`.
        """
        return cls([keras.saving.deserialize_keras_object(d)
                    for d in config["defenses"]])


def _scatter_rows(mask, rows):
    """A full-batch tensor with `rows` at the true positions of `mask` and
    zeros elsewhere."""
    index = tf.where(mask)
    shape = tf.concat([tf.shape(mask, out_type=tf.int64),
                       tf.shape(rows, out_type=tf.int64)[1:]], 0)
    return tf.scatter_nd(index, rows, shape)
