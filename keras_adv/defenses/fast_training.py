"""Fast adversarial training (Wong, Rice and Kolter 2020)."""

import dataclasses

from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class FastTraining(protocol.AdversarialOnly, protocol.BallDefense):
    """"Fast is better than free": FGSM from a random start.

    Wong, Rice and Kolter, ICLR 2020. delta ~ U(-eps, eps), one gradient-sign
    step of size `step_size` (1.25 eps by default), projection onto the
    eps-ball and the input box; the model trains on `x + delta` only.
    Prone to catastrophic overfitting (PGD accuracy collapses within an
    epoch while FGSM accuracy stays high): train with
    `keras_adv.callbacks.CatastrophicOverfittingGuard`.

    Args:
        eps: perturbation budget (>= 0).
        step_size: FGSM step (> 0); `None` means `1.25 * eps`. During warm-up
            it shrinks in proportion to eps.
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss`.

    Raises:
        ValueError: eps negative or NaN, step_size <= 0, an unknown norm, a
            bad clip box or warmup_epochs < 0.

    Example:

    >>> keras_adv.defenses.FastTraining(eps=0.2).step_size is None
    True
    """

    step_size: float = None

    def perturb(self, model, x, y, *, eps=None):
        """Random start plus one FGSM step (see `Defense.perturb`).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps, alpha = tensors.budget(self, eps, 1.25)
        return ascent.ce_ascent(model, x, y, eps=eps, step_size=alpha, steps=1,
                                norm=self.norm, clip=self.clip,
                                random_start=True)
