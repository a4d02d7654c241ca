"""The ascent primitive shared by every gradient attack and inner maximisation.

One loop, `ascend`, climbs a per-example objective inside an eps-ball: PGD
(with restarts, momentum/MIM, BIM, L-inf/L2, targeted losses, EOT), FGSM (one
step, no start), the inner maximisations of PGD-AT, Fast-AT and FGSM-AT
(`ce_ascent`), of TRADES and MART (`objective_ascent`), and Free-AT's carried
perturbation (`project_step`). APGD uses `gradient` and `ball`.

The loop is a `tf.while_loop`: the graph holds one step whatever the number
of steps, so tracing time does not grow with `steps` (a Python-unrolled loop
traced every step: 43 s to trace PGD-100 with 5 restarts on a small CNN).
Every objective and input gradient goes through `check_finite`: a model with
NaN or inf outputs or gradients raises `ValueError` instead of returning
NaN images.
"""

import numpy as np
import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks.losses import attack_objective

NON_FINITE = "model gave non-finite"

# Every function here takes a tensor or a list of tensors (the perturbed
# inputs of a model with several inputs, `keras_adv.attacks.inputs`): each
# step, projection and start applies to each tensor on its own, so that the
# eps-ball and the box hold per input. On one tensor the graph is the
# single-tensor one.
_map = tf.nest.map_structure


def check_finite(t, what, *, by_sum=False):
    """Raises if `t` holds NaN or inf: at once when eager, else through a
    `tf.debugging.check_numerics` op whose error `core.compiled` functions
    turn into `ValueError` for eager callers.

    By default `t` is checked entry by entry. With `by_sum=True` (input
    gradients: as large as the batch of inputs, one per step) it is
    checked through its sum, which is NaN or inf when an entry is: one
    vectorised reduction instead of `check_numerics` reading every entry
    on its own, which cost PGD 3-5% of its time (docs/benchmarks.md). The
    sum also overflows when entries reach about 1e33, where an L2 step
    (`g / ||g||`) has long overflowed.

    Args:
        t: a float tensor computed from the model (outputs or gradients).
        what: what `t` is, for the message (`"outputs"`, `"input gradients"`).
        by_sum: in a graph, check the sum of `t` instead of every entry.

    Returns:
        `t` (in graph mode, guarded by the check).

    Raises:
        ValueError: when eager and `t` is not finite; the message starts with
            "model gave non-finite".

    Example: `logits = check_finite(model(x), "outputs")`;
    `grad = check_finite(grad, "input gradients", by_sum=True)`.
    """
    message = (
        f"{NON_FINITE} {what} (NaN or inf), so no attack can use them. "
        f"Received: a model whose {what} contain NaN or inf on this input"
    )
    if tf.executing_eagerly():
        if not np.all(np.isfinite(np.asarray(t))):
            raise ValueError(message)
        return t
    if not by_sum:
        return tf.debugging.check_numerics(t, message)
    total = tf.debugging.check_numerics(tf.reduce_sum(t), message)
    with tf.control_dependencies([total]):
        return tf.identity(t)


def gradient(objective_fn, x_adv):
    """The value of `objective_fn` at `x_adv` and the input gradient of its
    per-example objective (summed over the batch), both checked finite.

    Only `x_adv` is watched: no weight gradient is computed.

    Args:
        objective_fn: maps a float32 batch to its per-example objective
            `(batch,)`, or to a tuple whose first element is that objective
            (the rest, e.g. logits, is passed back).
        x_adv: float32 tensor `(batch, ...)`.

    Returns:
        `(value, grad)`: what `objective_fn` returned, and the float32
        gradient with `x_adv`'s shape.

    Raises:
        ValueError: the model gives no input gradient, or a non-finite
            objective or gradient (see `check_finite`).

    Example: `obj, grad = gradient(lambda z: -tf.reduce_sum(z * z, 1), x)`.
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x_adv)
        value = objective_fn(x_adv)
        obj = value[0] if isinstance(value, (tuple, list)) else value
        obj = check_finite(obj, "outputs")
        total = tf.reduce_sum(obj)
    grad = tape.gradient(total, x_adv)
    if any(g is None for g in tf.nest.flatten(grad)):
        raise ValueError(
            "model gives no gradient with respect to its input; gradient "
            "attacks cannot run on it. Received: a model whose output does "
            "not depend differentiably on x (use a score-based attack, or "
            "perturb_layer= for integer inputs such as token ids)"
        )
    return value, _map(lambda g: check_finite(g, "input gradients",
                                                    by_sum=True), grad)


def ball(x0, eps, norm, clip):
    """The projection onto the eps-ball of `norm` around `x0` intersected
    with the `clip` box, as a function of the point: the ball first, then
    the box.

    For L-inf the intersection is itself a box,
    `[max(x0 - eps, min), min(x0 + eps, max)]`, computed once here: each
    projection is then one clip of the point, instead of a subtraction, two
    clips and an addition (equal up to the rounding of `x0 - eps`).

    Args:
        x0: float32 tensor `(batch, ...)` or a list of them (each input its
            own ball).
        eps: budget, number or scalar tensor.
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box or `None`.

    Returns:
        A function mapping a point with `x0`'s structure to its projection.

    Example: `project = ball(x0, 0.3, "linf", (0.0, 1.0)); z = project(z)`.
    """
    if norm != "linf":
        return lambda z: _map(
            lambda a, b: ops.clip_box(a + ops.project(b - a, eps, norm), clip),
            x0, z)
    if isinstance(x0, (list, tuple)):
        parts = [ball(t, eps, norm, clip) for t in x0]
        return lambda z: [p(t) for p, t in zip(parts, z)]
    lo, hi = x0 - eps, x0 + eps
    if clip is not None:
        lo, hi = tf.maximum(lo, clip[0]), tf.minimum(hi, clip[1])
    return lambda z: tf.raw_ops.ClipByValue(t=z, clip_value_min=lo,
                                            clip_value_max=hi)


def project_step(delta, grad, *, eps, step_size, norm):
    """One projected steepest-ascent step on a perturbation:
    `project(delta + step_size * steepest_step(grad))` (Free-AT's update,
    Shafahi et al. 2019, with `step_size = eps`).

    Args:
        delta: perturbation tensor `(batch, ...)`.
        grad: input gradient with `delta`'s shape.
        eps: budget (number or scalar tensor).
        step_size: step length.
        norm: `"linf"` (sign step) or `"l2"` (normalised step).

    Returns:
        The new perturbation, inside the eps-ball.

    Example: `delta = project_step(delta, g, eps=0.3, step_size=0.3,
    norm="linf")`.
    """
    return ops.project(delta + step_size * ops.steepest_step(grad, norm), eps,
                       norm)


def ascend(objective_fn, x0, *, start=None, eps, step_size, steps, norm, clip,
           momentum=0.0):
    """Projected steepest ascent of a per-example objective in an eps-ball.

    From `start` (default `x0`), `steps` times: g = input gradient of
    `objective_fn`; with `momentum = mu > 0`, g <- mu v + g / ||g||1 kept in
    v (MIM, Dong et al. 2018); x <- x + step_size * step(g) (sign for L-inf,
    g/||g||2 for L2, Madry et al. 2018); x <- projection onto the eps-ball
    around `x0` and the `clip` box. The loop is a `tf.while_loop`, so its
    graph holds one step for any `steps`.

    Args:
        objective_fn: maps a float32 batch `(batch, ...)` to the per-example
            objective `(batch,)` to maximise (or a tuple whose first element
            is it).
        x0: float32 tensor `(batch, ...)`, the centre of the ball, or a
            list of them (several perturbed inputs: each step, ball and box
            applies to each tensor on its own, and `objective_fn` takes the
            list).
        start: float32 starting point (inside the ball and box, with the
            structure of `x0`), or `None` for `x0` (no random start).
        eps: budget, number or scalar tensor.
        step_size: step length, number or scalar tensor.
        steps: number of steps, int or scalar int tensor (0 returns `start`).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box or `None`.
        momentum: MIM decay mu (Python float); 0 is plain PGD.

    Returns:
        The float32 point reached.

    Raises:
        ValueError: the model gives no or non-finite input gradients or
            outputs (see `gradient`).

    Example:

    >>> x0 = tf.zeros((2, 3))
    >>> adv = ascend(lambda z: tf.reduce_sum(z, 1), x0, eps=0.5,
    ...              step_size=0.2, steps=5, norm="linf", clip=None)
    >>> [round(float(v), 4) for v in adv[0]]
    [0.5, 0.5, 0.5]
    """
    x0 = _map(lambda t: tf.convert_to_tensor(t, tf.float32), x0)
    adv = x0 if start is None else _map(
        lambda t: tf.convert_to_tensor(t, tf.float32), start)

    project = ball(x0, eps, norm, clip)

    def body(i, adv, velocity):
        _, grad = gradient(objective_fn, adv)
        if momentum:
            velocity = _map(
                lambda v, g: momentum * v + g / (ops.l1_norm(g) + 1e-12),
                velocity, grad)
            grad = velocity
        adv = _map(lambda a, g: a + step_size * ops.steepest_step(g, norm),
                   adv, grad)
        return i + 1, project(adv), velocity

    velocity = _map(tf.zeros_like, x0) if momentum else tf.zeros([])
    _, adv, _ = tf.while_loop(
        lambda i, *_: i < steps, body, (tf.constant(0), adv, velocity))
    return adv


def uniform_start(x0, eps, norm, clip, seed):
    """`x0` plus a uniform point of the eps-ball (stateless from `seed`),
    clipped to the box. Example: `uniform_start(x0, 0.3, "linf", (0, 1),
    tf.constant([0, 0], tf.int64))`."""
    if not isinstance(x0, (list, tuple)):
        return ops.clip_box(
            x0 + ops.random_start(tf.shape(x0), eps, norm, seed), clip)
    # One stream per input: input k shifts the seed by (k, 0).
    seed = tf.cast(seed, tf.int64)
    return [uniform_start(t, eps, norm, clip,
                          seed + tf.constant([1, 0], tf.int64) * k)
            for k, t in enumerate(x0)]


def gaussian_start(x0, eps, norm, clip):
    """`x0 + 0.001 N(0, I)` projected onto the ball and box (the TRADES and
    MART start; draws from the global generator). Example:
    `gaussian_start(x0, 0.3, "linf", (0.0, 1.0))`."""
    noisy = _map(lambda t: t + 0.001 * tf.random.normal(tf.shape(t)), x0)
    return ball(x0, eps, norm, clip)(noisy)


def as_float(x):
    """`(float32 x, input dtypes)`, for a tensor or a list of tensors
    (non-float inputs are taken as float32).

    Example: `x0, in_dtype = as_float(x)`.
    """
    if isinstance(x, (list, tuple)):
        pairs = [as_float(t) for t in x]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    x = tf.convert_to_tensor(x)
    in_dtype = x.dtype if x.dtype.is_floating else tf.float32
    return tf.cast(x, tf.float32), in_dtype


def cast_to(z, dtypes):
    """`z` (a tensor or list) cast to `dtypes` (one dtype or a list).

    Example: `cast_to([a, b], [tf.float16, tf.float32])`.
    """
    if isinstance(z, (list, tuple)):
        return [tf.cast(t, d) for t, d in zip(z, dtypes)]
    return tf.cast(z, dtypes)


def ce_ascent(model, x, y, *, eps, step_size, steps, norm, clip,
              random_start=True, seed=None):
    """PGD on cross-entropy from a uniform random start (or none): the inner
    maximisation of PGD-AT (Madry et al. 2018), Fast-AT and FGSM-AT.

    The model runs in inference mode; no argument is checked (call it on
    checked values, e.g. from a defense's `train_step`).

    Args:
        model: Keras model or callable returning logits (softmax outputs of
            Keras models are detected).
        x: float tensor `(batch, ...)`, or a list of them for a model
            taking the list (each perturbed within its own ball).
        y: sparse or one-hot labels.
        eps, step_size, steps, norm, clip: as `ascend`.
        random_start: start from a uniform point of the eps-ball.
        seed: integer, or `None` for a fresh draw from the global generator.

    Returns:
        Adversarial examples with `x`'s shape and dtype, without gradient.

    Example: `x_adv = ce_ascent(model, x, y, eps=0.3, step_size=0.01,
    steps=40, norm="linf", clip=(0.0, 1.0))`.
    """
    x0, in_dtype = as_float(x)
    labels = ops.sparse_labels(y)

    def objective(z):
        logits = ops.model_logits(model, cast_to(z, in_dtype))
        return attack_objective(logits, labels, loss="ce", targeted=False,
                                source=labels)

    start = None
    if random_start:
        start = uniform_start(x0, eps, norm, clip, ops.seed_tensor(seed))
    adv = ascend(objective, x0, start=start, eps=eps, step_size=step_size,
                 steps=steps, norm=norm, clip=clip)
    return _map(tf.stop_gradient, cast_to(adv, in_dtype))


def objective_ascent(model, x, objective, *, eps, step_size, steps, norm,
                     clip):
    """Ascent of `objective(adv_logits) -> (batch,)` from x + 0.001 N(0, I):
    the TRADES (Zhang et al. 2019) and MART (Wang et al. 2020) inner
    maximisation. The model runs in inference mode.

    Args:
        model: Keras model or callable returning logits.
        x: float tensor `(batch, ...)`, or a list of them (as
            `ce_ascent`).
        objective: per-example function of the adversarial logits, e.g. the
            KL divergence from the clean prediction.
        eps, step_size, steps, norm, clip: as `ascend`.

    Returns:
        Adversarial examples with `x`'s shape and dtype, without gradient.

    Example: `x_adv = objective_ascent(model, x, lambda z: kl(p, z),
    eps=0.3, step_size=0.01, steps=10, norm="linf", clip=(0.0, 1.0))`.
    """
    x0, in_dtype = as_float(x)
    start = gaussian_start(x0, eps, norm, clip)
    adv = ascend(
        lambda z: objective(ops.model_logits(model, cast_to(z, in_dtype))),
        x0, start=start, eps=eps, step_size=step_size, steps=steps, norm=norm,
        clip=clip)
    return _map(tf.stop_gradient, cast_to(adv, in_dtype))


def per_example(v, like):
    """A per-example vector `(batch,)` reshaped to broadcast against `like`.

    Example: `tf.where(per_example(mask, x), x_adv, x)`.
    """
    return tf.reshape(v, [-1] + [1] * (like.shape.rank - 1))


def sphere_start(shape, eps, norm, seed):
    """A random point on the eps-sphere, as in AutoAttack's code (APGD's
    start, FAB's restarts): L-inf a uniform draw scaled so that its largest
    coordinate is eps, L2 a Gaussian direction of norm eps. `eps` is a
    scalar or a per-example `(batch, 1, ...)` tensor.

    Example: `delta = sphere_start(tf.shape(x), 0.3, "linf", seed)`.
    """
    if norm == "linf":
        t = tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
        big = tf.reduce_max(tf.abs(t), axis=list(range(1, len(t.shape))),
                            keepdims=True)
        return eps * t / (big + 1e-12)
    t = tf.random.stateless_normal(shape, seed)
    return eps * t / (ops.l2_norm(t) + 1e-12)


def ranked_other_class(logits, labels, rank):
    """The (rank+1)-th most likely class other than `labels`, per example
    (APGD-T's and FAB-T's targets).

    Example: `ranked_other_class(logits, y, 0)` is the runner-up class.
    """
    mask = tf.one_hot(labels, tf.shape(logits)[-1]) > 0.5
    masked = tf.where(mask, tf.fill(tf.shape(logits), logits.dtype.min),
                      logits)
    order = tf.argsort(masked, axis=-1, direction="DESCENDING",
                       stable=True)
    return tf.cast(order[:, rank], tf.int32)

