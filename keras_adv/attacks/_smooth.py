"""The SmoothAdv attack on smoothed classifiers (Salman et al. 2019)."""

import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent, core


def smooth_pgd(model, x, y=None, *, sigma, eps, steps=10, samples=4,
               step_size=None, seed=None, clip=(0.0, 1.0)):
    """L2 PGD against the Gaussian-smoothed soft classifier (SmoothAdv).

    Salman, Yang, Li, Zhang, Zhang, Razenshteyn and Bubeck, "Provably
    Robust Deep Learning via Adversarially Trained Smoothed Classifiers",
    NeurIPS 2019. The smoothed soft classifier is
    `G(x) = E_noise[softmax f(x + noise)]`, noise ~ N(0, sigma^2 I),
    estimated with `samples` draws; the attack maximises
    `-log G(x')_y` over the L2 ball of radius `eps` by `steps` steps of
    `step_size` along the normalised gradient from delta = 0, each followed
    by projection onto the ball and the `clip` box. As in the authors'
    code, one set of `samples` noise draws serves all the steps and the
    default step is `2 * eps / steps`. The model runs with
    `training=False`; the loop is `attacks.ascent.ascend`, the package's one
    ascent primitive (a `tf.while_loop`, so tracing cost does not grow with
    `steps`, with its check that outputs and gradients are finite).

    Within a certified radius of `keras_adv.certification.certify` this
    attack cannot change the smoothed prediction (up to the certificate's
    failure probability); beyond it, it is the usual way to look for a
    counterexample.

    Args:
        model: a Keras model or callable returning logits `(batch,
            classes)` (softmax outputs of Keras models are detected).
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: sparse or one-hot labels; `None` attacks the smoothed
            classifier's own prediction at x (the argmax of the estimate of
            G(x) with the same noise draws).
        sigma: noise standard deviation of the smoothing (> 0).
        eps: L2 budget (>= 0), a number or scalar tensor.
        steps: gradient steps (>= 1).
        samples: noise draws per step (>= 1).
        step_size: step size (> 0); `None` means `2 * eps / steps`.
        seed: integer for a repeatable attack; `None` draws from the global
            generator.
        clip: `(min, max)` box of valid inputs, or `None`.

    Returns:
        Adversarial examples, a tensor with the shape and dtype of `x`.

    Raises:
        ValueError: naming the argument, for sigma <= 0, eps negative or
            not finite, steps or samples < 1, step_size <= 0, a bad clip
            box, x outside `clip` or not finite, or labels that do not fit.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = smooth_pgd(model, x, sigma=0.25, eps=0.5, steps=3, seed=0)
    >>> bool(np.linalg.norm(x_adv - x, axis=1).max() <= 0.5 + 1e-5)
    True
    """
    validation.check_model(model)
    sigma = validation.check_number("sigma", sigma, positive=True)
    validation.check_number("eps", eps)
    steps = validation.check_int("steps", steps)
    samples = validation.check_int("samples", samples)
    step_size = validation.check_number("step_size", step_size, positive=True,
                                  allow_none=True)
    clip = validation.check_clip(clip)
    if y is None:
        x = validation.check_x(x, clip)
        validation.check_input_shape(model, x)
        labels = tf.zeros(tf.shape(x)[:1], tf.int32)
    else:
        x, labels, _ = core.prepare(model, x, y, clip=clip, targeted=False,
                                    from_logits=None, loss="ce")
    eps_t = tf.cast(eps, tf.float32)
    alpha = (2.0 * eps_t / steps if step_size is None
             else tf.cast(step_size, tf.float32))
    args = (x, labels, tf.cast(sigma, tf.float32), eps_t, alpha,
            ops.seed_tensor(seed))
    static = dict(steps=steps, samples=samples, clip=clip,
                  own_labels=y is None)
    if tf.executing_eagerly():
        fn = core.compiled(model, smooth_pgd_loop, input_rank=x.shape.rank,
                           **static)
        return core.run_relaxed(fn, *args)
    return smooth_pgd_loop(model, *args, **static)


def smooth_log_probs(model, x, noise, samples, in_dtype):
    """`log G(x)`: the log of the mean softmax of `model` over the noisy
    copies `x + noise[i]`, shape `(batch, classes)`.

    `noise` has shape `(samples * batch, ...)`, sample-major; `samples` is
    a Python integer (static shapes keep the model's graph specialised).

    Example: `smooth_log_probs(model, x, 0.25 * tf.random.normal(
    (4 * 8, 784)), 4, tf.float32)`.
    """
    reps = [samples] + [1] * (x.shape.rank - 1)
    logits = ops.model_logits(model, tf.cast(tf.tile(x, reps) + noise,
                                              in_dtype))
    probs = tf.nn.softmax(logits)
    mean = tf.reduce_mean(
        tf.reshape(probs, [samples, -1, probs.shape[-1]]), axis=0)
    return tf.math.log(tf.maximum(mean, 1e-20))


def smooth_pgd_loop(model, x, labels, sigma, eps, alpha, seed, *, steps,
                    samples, clip, own_labels):
    """The SmoothAdv computation on checked tensors (traceable, no checks).

    Example: `smooth_pgd_loop(model, x, y, 0.25, 0.5, 0.1,
    tf.constant([0, 0], tf.int64), steps=10, samples=4, clip=(0.0, 1.0),
    own_labels=False)`.
    """
    in_dtype = x.dtype
    x0 = tf.cast(x, tf.float32)
    reps = [samples] + [1] * (x0.shape.rank - 1)
    noise = sigma * tf.random.stateless_normal(tf.shape(tf.tile(x0, reps)),
                                               seed)
    if own_labels:
        labels = tf.argmax(smooth_log_probs(model, x0, noise, samples, in_dtype),
                           axis=-1, output_type=tf.int32)
    labels = tf.cast(labels, tf.int32)

    def objective(z):  # -log G(z)_y per example, checked finite by ascend
        log_g = smooth_log_probs(model, z, noise, samples, in_dtype)
        return -tf.gather(log_g, labels[:, None], batch_dims=1)[:, 0]

    adv = ascent.ascend(objective, x0, eps=eps, step_size=alpha, steps=steps,
                        norm="l2", clip=clip)
    return tf.stop_gradient(tf.cast(adv, in_dtype))
