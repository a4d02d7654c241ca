"""The inner maximisations of the training defenses: PGD on cross-entropy
(PGD-AT, FGSM-AT, Fast-AT, Free-AT's stand-in) and the Gaussian-start ascent
on a defense objective (TRADES, MART). Both run the model in inference mode
and compute only input gradients; both call `keras_adv.attacks`.
"""

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks.pgd import pgd_loop


def pgd_perturb(model, x, y, *, eps, alpha, steps, norm, clip, random_start):
    """PGD on cross-entropy with the attack core (inference mode), from a
    uniform random start (or none). Returns a tensor like `x`.

    Example: `pgd_perturb(model, x, y, eps=0.3, alpha=0.01, steps=40,
    norm="linf", clip=(0.0, 1.0), random_start=True)`.
    """
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    labels = ops.sparse_labels(y)
    return pgd_loop(
        model, x, labels, labels, eps, alpha, ops.seed_tensor(None),
        steps=steps, restarts=1, momentum=0.0, norm=norm, loss="ce",
        targeted=False, random_start=random_start, clip=clip,
        from_logits=None, eot_samples=1,
    )


def gaussian_start_ascent(model, x, objective, *, eps, alpha, steps, norm,
                          clip):
    """Sign (L-inf) or normalised (L2) gradient ascent on
    `objective(adv_logits) -> per-example values` from x + 0.001 N(0, I),
    projected onto the eps-ball and the `clip` box after each step (the
    TRADES and MART inner maximisation). The model runs in inference mode and
    only the input gradient is computed.

    Example: `gaussian_start_ascent(model, x, lambda z: kl(p, z), eps=0.3,
    alpha=0.01, steps=40, norm="linf", clip=(0.0, 1.0))`.
    """
    x = tf.convert_to_tensor(x)
    in_dtype = x.dtype if x.dtype.is_floating else tf.float32
    x0 = tf.cast(x, tf.float32)
    adv = x0 + 0.001 * tf.random.normal(tf.shape(x0))
    adv = ops.clip_box(x0 + ops.project(adv - x0, eps, norm), clip)
    for _ in range(steps):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(adv)
            logits = ops.model_logits(model, tf.cast(adv, in_dtype))
            total = tf.reduce_sum(objective(logits))
        grad = tape.gradient(total, adv)
        adv = adv + alpha * ops.steepest_step(grad, norm)
        adv = ops.clip_box(x0 + ops.project(adv - x0, eps, norm), clip)
    return tf.stop_gradient(tf.cast(adv, in_dtype))
