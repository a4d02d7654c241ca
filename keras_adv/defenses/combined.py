"""`Combined`: several defenses trained together (`a + b`), one supervised
member and any number of label-free regularisers."""

import dataclasses

import keras
import tensorflow as tf

from keras_adv.defenses import tensors
from keras_adv.defenses.protocol import (
    Defense,
    LossResult,
    serializable,
    set_field,
)


def _supervised_field(name):
    """A read-only property of `Combined`: the supervised member's `name`
    (the combination's schedule and geometry are that member's)."""
    return property(lambda self: getattr(self._main, name),
                    doc=f"The supervised member's `{name}`.")


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

    eps = _supervised_field("eps")
    norm = _supervised_field("norm")
    clip = _supervised_field("clip")
    warmup_epochs = _supervised_field("warmup_epochs")

    def _subset(self, d, y):
        """The labeled-row mask for a member that needs labels, else None."""
        if y is None or d.uses_unlabeled:
            return None
        return tensors.labeled_mask(y)

    def perturb(self, model, x, y, *, eps=None):
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
