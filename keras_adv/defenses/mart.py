"""MART (Wang et al. 2020)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class MART(protocol.BallDefense):
    """MART: misclassification-aware adversarial training.

    Wang et al., "Improving Adversarial Robustness Requires Revisiting
    Misclassified Examples", ICLR 2020. With p the softmax, x' from PGD on
    cross-entropy (start x + 0.001 N(0, I), model in inference mode), the
    loss is

        L(f(x'), y) - log(1.0001 - max_{k != y} p_k(x'))
        + beta * KL(p(x) || p(x')) * (1 - p_y(x)),

    the boosted cross-entropy (L is the compiled loss, the paper's CE) plus
    the KL term weighted by how badly the clean example is classified. The
    constants 1.0001 and the gradient through p(x) follow the authors' code.

    Args:
        eps: perturbation budget (>= 0).
        steps: PGD steps (>= 1).
        step_size: step size (> 0); `None` means `2.5 * eps / steps`.
            During warm-up it shrinks in proportion to eps.
        beta: weight of the KL term (>= 0; 6 in the paper).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss` (L at x'), `margin_loss` (the
    boosting term) and `kl_loss` (the weighted KL); the loss is
    `adv_loss + margin_loss + beta * kl_loss`.

    Raises:
        ValueError: eps negative or NaN, steps < 1, step_size <= 0, beta < 0,
            an unknown norm, a bad clip box or warmup_epochs < 0.

    Example:

    >>> keras_adv.defenses.MART(eps=0.3).loss_terms
    ('adv_loss', 'margin_loss', 'kl_loss')
    """

    steps: int = 10
    step_size: float = None
    beta: float = 6.0

    loss_terms = ("adv_loss", "margin_loss", "kl_loss")

    def perturb(self, model, x, y, *, eps=None):
        """PGD on cross-entropy from a small Gaussian start (see
        `Defense.perturb`).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps, alpha = tensors.budget(self, eps, 2.5 / self.steps)
        labels = ops.sparse_labels(y)
        return ascent.objective_ascent(
            model, x,
            lambda z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels, z),
            eps=eps, step_size=alpha, steps=self.steps, norm=self.norm,
            clip=self.clip)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """The MART objective (see `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        labels = ops.sparse_labels(y)
        y_pred = model(x, training=training)
        y_adv = model(x_adv, training=training)
        clean_logits = ops.to_logits(y_pred)
        adv_logits = ops.to_logits(y_adv)
        adv = task_loss(y, y_adv, sample_weight)
        adv_probs = tf.nn.softmax(adv_logits)
        not_y = 1.0 - tf.one_hot(labels, tf.shape(adv_probs)[-1])
        other = tf.reduce_max(adv_probs * not_y, axis=-1)
        margin = tensors.weighted_mean(-tf.math.log(1.0001 - other + 1e-12),
                                    sample_weight)
        true_prob = tf.gather(tf.nn.softmax(clean_logits), labels, axis=-1,
                              batch_dims=1)
        kl = tensors.weighted_mean(
            ops.kl_divergence(clean_logits, adv_logits)
            * (1.0000001 - true_prob),
            sample_weight)
        total = adv + margin + self.beta * kl
        return protocol.LossResult(
            total, {"adv_loss": adv, "margin_loss": margin, "kl_loss": kl},
            y_pred, y_adv)
