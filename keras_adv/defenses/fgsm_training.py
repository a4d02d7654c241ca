"""FGSM adversarial training (Goodfellow et al. 2015)."""

import dataclasses

import tensorflow as tf

from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class FGSMTraining(protocol.BallDefense):
    """FGSM adversarial training: a mix of clean and FGSM losses.

    Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
    Examples", ICLR 2015. Each batch is attacked with one gradient-sign step
    of size eps (no random start) and the model minimises
    `clean_weight * L(x, y) + (1 - clean_weight) * L(x_fgsm, y)`, where L is
    the compiled loss. Single-step training is prone to gradient masking: its
    FGSM accuracy can far exceed its PGD accuracy (see `docs/defenses.md`).

    Args:
        eps: perturbation budget (>= 0).
        clean_weight: weight `a` of the clean loss, in [0, 1] (0.5 in the
            paper).
        norm: `"linf"` (sign step) or `"l2"` (normalised-gradient step).
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `clean_loss`, `adv_loss`.

    Raises:
        ValueError: eps negative or NaN, clean_weight outside [0, 1], an
            unknown norm, a bad clip box or warmup_epochs < 0.

    Example:

    >>> d = keras_adv.defenses.FGSMTraining(eps=0.1)
    >>> d.clean_weight, d.loss_terms
    (0.5, ('clean_loss', 'adv_loss'))
    """

    clean_weight: float = 0.5

    loss_terms = ("clean_loss", "adv_loss")

    def perturb(self, model, x, y, *, eps=None):
        """One FGSM step of size eps (see `Defense.perturb`).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps = tensors.resolve_eps(self, eps)
        return ascent.ce_ascent(model, x, y, eps=eps, step_size=eps, steps=1,
                                norm=self.norm, clip=self.clip,
                                random_start=False)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """`a * L(x) + (1 - a) * L(x_adv)` (see `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        a = self.clean_weight
        y_pred = model(x, training=training)
        y_adv = model(x_adv, training=training)
        clean = task_loss(y, y_pred, sample_weight)
        adv = task_loss(y, y_adv, sample_weight)
        total = a * clean + (1.0 - a) * adv
        return protocol.LossResult(tf.convert_to_tensor(total),
                               {"clean_loss": clean, "adv_loss": adv},
                               y_pred, y_adv)
