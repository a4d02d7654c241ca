"""TRADES (Zhang et al. 2019)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class TRADES(protocol.BallDefense):
    """TRADES: clean loss plus beta times the KL to the adversarial point.

    Zhang et al., "Theoretically Principled Trade-off between Robustness and
    Accuracy", ICML 2019. The loss is
    `L(f(x), y) + beta * KL(p(x) || p(x'))`, with L the compiled loss (the
    paper's cross-entropy) and p the softmax. x' maximises the KL term: start
    at x + 0.001 N(0, I), then `steps` gradient-sign steps of `step_size`
    with projection onto the eps-ball and the input box, the model in
    inference mode and p(x) held fixed. In the loss, gradients flow through
    both p(x) and p(x'), as in the authors' code. Paper settings: MNIST eps
    0.3, 40 steps of 0.01, beta 1-10; CIFAR-10 eps 0.031, 10 steps of 0.007,
    beta 6. With `norm="l2"` the steps are normalised gradients (the authors'
    L2 variant uses an optimiser on delta instead).

    Args:
        eps: perturbation budget (>= 0).
        steps: inner maximisation steps (>= 1).
        step_size: step size (> 0); `None` means `2.5 * eps / steps`.
            During warm-up it shrinks in proportion to eps.
        beta: weight of the KL term (>= 0).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `clean_loss`, `kl_loss` (the loss is
    `clean_loss + beta * kl_loss`).

    Raises:
        ValueError: eps negative or NaN, steps < 1, step_size <= 0, beta < 0,
            an unknown norm, a bad clip box or warmup_epochs < 0.

    Example:

    >>> keras_adv.defenses.TRADES(eps=0.3, steps=40, step_size=0.01).beta
    6.0
    """

    steps: int = 10
    step_size: float = None
    beta: float = 6.0

    loss_terms = ("clean_loss", "kl_loss")

    def perturb(self, model, x, y, *, eps=None):
        """Maximises KL(p(x) || p(x')) over the eps-ball (see
        `Defense.perturb`; `y` is not used).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        del y
        eps, alpha = tensors.budget(self, eps, 2.5 / self.steps)
        clean = tf.stop_gradient(ops.model_logits(model, x))
        return ascent.objective_ascent(
            model, x, lambda z: ops.kl_divergence(clean, z), eps=eps,
            step_size=alpha, steps=self.steps, norm=self.norm, clip=self.clip)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """`L(x) + beta * KL(p(x) || p(x_adv))` (see `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        y_pred = model(x, training=training)
        y_adv = model(x_adv, training=training)
        clean = task_loss(y, y_pred, sample_weight)
        kl = tensors.weighted_mean(
            ops.kl_divergence(ops.to_logits(y_pred), ops.to_logits(y_adv)),
            sample_weight)
        total = clean + self.beta * kl
        return protocol.LossResult(total, {"clean_loss": clean, "kl_loss": kl},
                               y_pred, y_adv)
