"""Free adversarial training (Shafahi et al. 2019)."""

import dataclasses

from keras_adv.defenses import base


@base.serializable
@dataclasses.dataclass(frozen=True)
class FreeTraining(base.AdversarialOnly):
    """"Adversarial training for free": minibatch replays.

    Shafahi et al., NeurIPS 2019. Each minibatch is replayed `replays` times;
    every replay does one forward/backward pass on `clip(x + delta)` that
    gives both the weight gradient (applied at once by the optimizer) and the
    input gradient, used for `delta <- project(delta + eps * sign(grad))`.
    `delta` starts at zero and carries over from one minibatch to the next.
    A pass over the data therefore costs about `replays` clean epochs: the
    paper divides the number of epochs by `replays`.

    `AdversarialModel` runs its replay step for this defense (the optimizer
    steps `replays` times per batch). The replayed forward passes run in
    training mode, so batch-norm statistics see the perturbed batch, as in
    the paper. `perturb` (used by `adversarial_loss` and by
    `evaluate(adversarial=True)`) is a single FGSM step from a random start.

    Args:
        eps: perturbation budget, also the step size on delta (>= 0).
        replays: replays per minibatch m (>= 1).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss` (mean over the replays).

    Raises:
        ValueError: eps negative or NaN, replays < 1, an unknown norm, a bad
            clip box or warmup_epochs < 0.

    Example:

    >>> keras_adv.defenses.FreeTraining(eps=0.3, replays=8).replays
    8
    """

    eps: float
    replays: int = 4
    norm: str = "linf"
    clip: tuple = (0.0, 1.0)
    warmup_epochs: float = 0.0

    def __post_init__(self):
        base.validate_common(self, "replays")

    def perturb(self, model, x, y, eps=None):
        """An FGSM step of size eps from a uniform random start (Free-AT's
        perturbation needs the replay loop of `AdversarialModel`; this is its
        stateless stand-in).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps = base.resolve_eps(self, eps)
        return base.pgd_perturb(model, x, y, eps=eps, alpha=eps, steps=1,
                                norm=self.norm, clip=self.clip,
                                random_start=True)
