"""PGD adversarial training (Madry et al. 2018)."""

import dataclasses

from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class PGDTraining(protocol.AdversarialOnly, protocol.BallDefense):
    """PGD adversarial training: minimise the loss at the PGD point.

    Madry et al., "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018. Each batch is replaced by its PGD-`steps` adversarial
    examples (cross-entropy, uniform random start in the eps-ball, model in
    inference mode) and the model trains on those only. The paper's MNIST
    setting is `PGDTraining(eps=0.3, steps=40, step_size=0.01)`; from scratch
    that setting needs an eps warm-up (`warmup_epochs`) with Adam at 1e-3 on
    small data, see `docs/defenses.md`.

    Args:
        eps: perturbation budget (>= 0).
        steps: PGD steps (>= 1).
        step_size: step size (> 0); `None` means `2.5 * eps / steps`.
            During warm-up it shrinks in proportion to eps.
        norm: `"linf"` or `"l2"`.
        random_start: start from a uniform point of the eps-ball.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss`.

    Raises:
        ValueError: eps negative or NaN, steps < 1, step_size <= 0, an
            unknown norm, a bad clip box or warmup_epochs < 0.

    Example:

    >>> d = keras_adv.defenses.PGDTraining(eps=0.3, steps=40, step_size=0.01)
    >>> d.steps, d.norm
    (40, 'linf')
    """

    steps: int = 10
    step_size: float = None
    random_start: bool = True

    def perturb(self, model, x, y, *, eps=None):
        """PGD-`steps` on cross-entropy (see `Defense.perturb`).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps, alpha = tensors.budget(
            self, eps, 2.5 / self.steps if self.steps > 1 else 1.0)
        return ascent.ce_ascent(model, x, y, eps=eps, step_size=alpha,
                                steps=self.steps, norm=self.norm,
                                clip=self.clip, random_start=self.random_start)
