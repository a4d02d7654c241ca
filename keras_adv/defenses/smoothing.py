"""Training for randomized smoothing: Gaussian augmentation (Cohen et al.
2019) and SmoothAdv (Salman et al. 2019)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks._smooth import smooth_pgd_loop
from keras_adv.defenses import protocol, tensors


def _gaussian(x, sigma, copies=1):
    """`copies` stacked copies of `x` plus N(0, sigma^2) noise (unclipped),
    in x's dtype, from the global generator."""
    x = tf.convert_to_tensor(x)
    if copies > 1:
        x = tf.concat([x] * copies, axis=0)
    noise = tf.random.normal(tf.shape(x), stddev=sigma)
    return x + tf.cast(noise, x.dtype)


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class GaussianAugmentation(protocol.AdversarialOnly):
    """Gaussian data augmentation, the training of randomized smoothing.

    Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via
    Randomized Smoothing", ICML 2019: the base classifier trains on
    `x + N(0, sigma^2 I)` so that the smoothed classifier
    `g(x) = argmax_c P(f(x + noise) = c)` is accurate at the same sigma;
    certify with `keras_adv.certification.certify(..., sigma=sigma)`. As in
    the paper, the noisy inputs are not clipped to the input box (the
    certificate is about the unclipped Gaussian); `clip` only checks the
    clean batch. Fresh noise is drawn every step from the global generator
    (`keras.utils.set_random_seed` makes it repeatable).

    Args:
        sigma: noise standard deviation (> 0).
        clip: `(min, max)` box the clean inputs must lie in, or `None`.

    Loss terms logged by `fit`: `adv_loss` (the loss on the noisy batch);
    `adv_accuracy` is the accuracy on it.

    Raises:
        ValueError: sigma <= 0 or not finite, or a bad clip box.

    Example:

    >>> keras_adv.defenses.GaussianAugmentation(sigma=0.25).sigma
    0.25
    """

    sigma: float
    clip: tuple = (0.0, 1.0)

    eps = 0.0
    norm = "l2"
    warmup_epochs = 0.0

    def __post_init__(self):
        protocol.validate_common(self)

    def perturb(self, model, x, y, *, eps=None):
        """`x + N(0, sigma^2)` (see `Defense.perturb`; `model`, `y` and `eps`
        are not used).

        Example: `x_noisy = defense.perturb(model, x, y)`.
        """
        del model, y, eps
        return _gaussian(x, self.sigma)


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class SmoothAdv(protocol.Defense):
    """SmoothAdv: adversarial training of the smoothed classifier.

    Salman, Yang, Li, Zhang, Zhang, Razenshteyn and Bubeck, "Provably
    Robust Deep Learning via Adversarially Trained Smoothed Classifiers",
    NeurIPS 2019. Each batch is attacked with `keras_adv.attacks.smooth_pgd`
    (L2 PGD on `-log E[softmax f(x' + noise)]_y`, `samples` noise draws held
    for all `steps` steps, from delta = 0, step `2 * eps / steps` by
    default, model in inference mode), and the model trains on `samples`
    noisy copies `x' + N(0, sigma^2 I)` of the attacked batch: the loss is
    the mean of the compiled loss over the copies (the paper's objective).
    The training copies use fresh noise, where the authors reuse the
    attack's draws. Noise is unclipped, as in `GaussianAugmentation`. The
    paper ramps eps up over the first 10 epochs: `warmup_epochs`.

    Args:
        sigma: noise standard deviation (> 0).
        eps: L2 budget of the attack (>= 0).
        steps: attack steps (>= 1).
        samples: noise draws per example, in the attack and the loss (>= 1).
        step_size: attack step (> 0); `None` means `2 * eps / steps`.
            During warm-up it shrinks in proportion to eps.
        clip: `(min, max)` box of valid inputs (the attacked points stay in
            it), or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss` (the mean loss over the noisy
    copies); `adv_accuracy` is the accuracy on the first copy.

    Raises:
        ValueError: sigma <= 0, eps negative or not finite, steps or
            samples < 1, step_size <= 0, a bad clip box or warmup_epochs < 0.

    Example:

    >>> d = keras_adv.defenses.SmoothAdv(sigma=0.25, eps=0.5, steps=2)
    >>> d.samples, d.norm
    (4, 'l2')
    """

    sigma: float
    eps: float
    steps: int = 10
    samples: int = 4
    step_size: float = None
    clip: tuple = (0.0, 1.0)
    warmup_epochs: float = 0.0

    norm = "l2"
    loss_terms = ("adv_loss",)
    keeps_rows = False

    def __post_init__(self):
        protocol.validate_common(self)

    def perturb(self, model, x, y, *, eps=None):
        """SmoothAdv's attack on the smoothed soft classifier (see
        `Defense.perturb`).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps, alpha = tensors.budget(self, eps, 2.0 / self.steps)
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            x = tf.cast(x, tf.float32)
        return smooth_pgd_loop(
            model, x, ops.sparse_labels(y), tf.constant(self.sigma, tf.float32),
            eps, tf.cast(alpha, tf.float32), ops.seed_tensor(None),
            steps=self.steps, samples=self.samples, clip=self.clip,
            own_labels=False)

    def loss(self, model, x, y, x_adv, *, task_loss, sample_weight=None,
             training=True):
        """The mean loss over `samples` noisy copies of `x_adv` (see
        `Defense.loss`).

        Example: `result = defense.loss(model, x, y, x_adv,
        task_loss=loss_fn)`.
        """
        del x
        m = self.samples
        y_noisy = model(_gaussian(x_adv, self.sigma, m), training=training)
        y = tf.convert_to_tensor(y)
        y_rep = tf.concat([y] * m, axis=0)
        w_rep = None if sample_weight is None else tf.concat(
            [tf.convert_to_tensor(sample_weight)] * m, axis=0)
        adv = task_loss(y_rep, y_noisy, w_rep)
        first = y_noisy[: tf.shape(y)[0]]
        return protocol.LossResult(adv, {"adv_loss": adv}, None, first)
