"""Targeted clean-label poisoning by gradient matching (Witches' Brew)."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import validation
from keras_adv.poisoning.backdoor import Poisoned
from keras_adv.progress import Progress

LONG_STEPS = 100  # optimisation steps that make a long run (progress=None)


def gradient_matching(model, x, y, *, x_target, adv_class, budget, eps,
                      steps=250, restarts=1, learning_rate=None, seed=None,
                      clip="auto", progress=None):
    """Poisons correctly labelled images so that training misclassifies a
    chosen test image (Witches' Brew).

    Geiping et al., "Witches' Brew: Industrial Scale Data Poisoning via
    Gradient Matching", ICLR 2021. `round(budget * len(x))` training images
    of class `adv_class` (labels unchanged) get perturbations `delta` with
    `|delta|_inf <= eps` (and the data box `clip`) that minimise
    `1 - cos(grad_theta L(x_target, adv_class), grad_theta L(x_p + delta,
    y_p))` on the surrogate `model`: training on the poisons then pushes the
    weights the way that misclassifies `x_target` as `adv_class`. The
    perturbations are optimised by signed Adam (the sign of the gradient fed
    to Adam) with the step size divided by 10 at 3/8, 5/8 and 7/8 of `steps`;
    each restart starts from a uniform point of the eps-ball and the restart
    with the lowest final loss is kept. Deviations from the paper: no
    differentiable data augmentation, and all poisons form one batch.

    Args:
        model: the surrogate Keras model returning logits (trained on clean
            data of the task, as in the paper's from-scratch setting).
        x: training images `(n, H, W, C)` in the box `clip`.
        y: labels, sparse or one-hot.
        x_target: the test image(s) to misclassify `(H, W, C)` or
            `(m, H, W, C)`.
        adv_class: the class they should be given.
        budget: share of the training set to perturb, in [0, 1].
        eps: L-inf budget of each perturbation (> 0).
        steps: optimisation steps per restart (>= 1; the paper's 240-250).
        restarts: independent restarts (>= 1; the paper's 8).
        learning_rate: Adam step size; `None` means `eps / 10`.
        seed: integer seed of the poison choice and the starts; `None`
            draws from NumPy's global generator.
        clip: the data box `(min, max)` the poisons stay in, or `"auto"`:
            `(0, 255)` for integer images, `(0, 1)` for floating ones (eps
            is in the same units; integer poisons are rounded).
        progress: count the optimisation steps on stderr
            (`gradient_matching: brewed 120/250 steps`); `None`: on a
            terminal from `LONG_STEPS` steps in all.

    Returns:
        `Poisoned(x, y, index)`; `y` is an unchanged copy of the labels.

    Raises:
        ValueError: a budget outside [0, 1] or larger than the class
            `adv_class`, `adv_class` out of range, eps not > 0, bad steps or
            restarts, a target of another image shape, labels and images of
            different lengths.

    Example:

    >>> p = gradient_matching(surrogate, x, y, x_target=x_test[0],
    ...                       adv_class=3, budget=0.01, eps=0.2, seed=0)
    ... # doctest: +SKIP
    """
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    box = validation.data_box(x, clip)
    labels, k, _ = validation.check_label_array(y, len(x))
    xt = np.asarray(x_target)
    xt = xt[None] if xt.ndim == 3 else xt
    xt = validation.check_images(xt, "x_target")
    if xt.shape[1:] != x.shape[1:]:
        raise ValueError(f"x_target must be an image of shape {x.shape[1:]}. "
                         f"Received: x_target of shape {np.shape(x_target)}")
    adv_class = validation.check_class(adv_class, "adv_class", k)
    budget = validation.check_rate(budget, "budget")
    eps = validation.check_number("eps", eps, positive=True)
    steps = validation.check_int("steps", steps)
    restarts = validation.check_int("restarts", restarts)
    lr = eps / 10 if learning_rate is None else validation.check_number(
        "learning_rate", learning_rate, positive=True)
    counter = Progress.resolve(progress, steps * restarts, long=LONG_STEPS,
                               total=steps * restarts, counts=True,
                               prefix="gradient_matching",
                               label="brewed {} steps")
    rng = validation.numpy_rng(seed)
    pool = np.flatnonzero(labels == adv_class)
    count = int(round(budget * len(x)))
    if count > len(pool):
        raise ValueError(f"budget asks for {count} images of class "
                         f"{adv_class} but it has {len(pool)}. Received: "
                         f"budget={budget}")
    index = np.sort(rng.choice(pool, size=count, replace=False)).astype(
        np.int64)
    x_out = np.array(x, copy=True)
    if count:
        with counter:
            delta = _brew(model, x[index].astype(np.float32), labels[index],
                          xt, adv_class, eps=eps, steps=steps,
                          restarts=restarts, counter=counter, lr=lr, rng=rng,
                          box=box)
        poisons = x[index] + delta
        if not np.issubdtype(x.dtype, np.floating):
            poisons = np.clip(np.rint(poisons), *box)
        x_out[index] = poisons.astype(x.dtype)
    return Poisoned(x_out, np.array(y, copy=True), index)


def _ce(model, x, labels):
    logits = model(x, training=False)
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True))


def target_gradient(model, x_target, adv_class):
    """The weight gradient of the adversarial target loss, as a list.

    Example: `target_gradient(model, x_test[:1], 3)`.
    """
    labels = tf.fill([len(x_target)], adv_class)
    with tf.GradientTape() as tape:
        loss = _ce(model, tf.constant(x_target, tf.float32), labels)
    return tape.gradient(loss, model.trainable_variables)


def matching_loss(model, x_poison, labels, target_grad):
    """`1 - cos(target gradient, poison gradient)` over all weights.

    Example: `matching_loss(model, xp, yp, target_gradient(model, xt, 3))`.
    """
    params = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = _ce(model, x_poison, labels)
    grads = tape.gradient(loss, params)
    dot = tf.add_n([tf.reduce_sum(g * t) for g, t in zip(grads, target_grad)])
    gn = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]))
    tn = tf.sqrt(tf.add_n([tf.reduce_sum(t * t) for t in target_grad]))
    return 1.0 - dot / (gn * tn + 1e-12)


def _brew(model, xp, yp, xt, adv_class, *, eps, steps, restarts, counter,
          lr, rng, box):
    """The poisons' perturbations; `counter` is the `Progress` counting the
    steps."""
    lo, hi = (float(b) for b in box)
    tgrad = [tf.constant(t) for t in target_gradient(model, xt, adv_class)]
    labels = tf.constant(yp, tf.int64)
    base = tf.constant(xp)

    @tf.function(reduce_retracing=True)
    def loss_and_grad(delta):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            loss = matching_loss(model, base + delta, labels, tgrad)
        return loss, tape.gradient(loss, delta)

    best, best_loss = None, np.inf
    milestones = {int(steps * f) for f in (3 / 8, 5 / 8, 7 / 8)}
    for restart in range(restarts):
        counter.doing(f"restart {restart + 1}/{restarts}")
        start = rng.uniform(-eps, eps, size=xp.shape).astype(np.float32)
        delta = tf.Variable(np.clip(xp + start, lo, hi) - xp)
        opt = keras.optimizers.Adam(learning_rate=lr)
        for i in range(steps):
            if i in milestones:
                opt.learning_rate.assign(opt.learning_rate * 0.1)
            _, grad = loss_and_grad(delta)
            opt.apply_gradients([(tf.sign(grad), delta)])
            delta.assign(tf.clip_by_value(base + tf.clip_by_value(
                delta, -eps, eps), lo, hi) - base)
            counter.step(1)
        final = float(loss_and_grad(delta)[0])
        if final < best_loss:
            best, best_loss = delta.numpy(), final
    return best
