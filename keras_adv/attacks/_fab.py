"""FAB, the Fast Adaptive Boundary attack (Croce & Hein, ICML 2020), and
its targeted version FAB-T, the third stage of AutoAttack."""

import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent, core

# Where the box puts no limit (clip=None), a finite stand-in for infinity.
_FAR = 1e10


def fab(
    model,
    x,
    y=None,
    *,
    norm="linf",
    eps=None,
    steps=100,
    restarts=1,
    targeted=False,
    target_classes=9,
    clip=(0.0, 1.0),
    seed=None,
    batch_size=None,
    alpha_max=0.1,
    eta=1.05,
    beta=0.9,
    from_logits=None,
):
    """Fast Adaptive Boundary attack (FAB) and its targeted version FAB-T.

    Croce & Hein, "Minimally distorted adversarial examples with a fast
    adaptive boundary attack", ICML 2020. A minimal-perturbation attack:
    each step linearises the model at the current point x_k, picks the
    closest linearised decision boundary (untargeted: the class j != y
    with the smallest `|f_j - f_y| / ||grad(f_j - f_y)||_*`, the dual norm;
    FAB-T: the one target class of the run), and projects both x_k and the
    original x onto that hyperplane intersected with the box (`project`,
    exact and minimal in the chosen norm). The next point is the biased
    combination `(1 - a) (x_k + eta d_k) + a (x + eta d_0)` with
    `a = min(|d_k| / (|d_k| + |d_0|), alpha_max)`, clipped to the box; when
    it is adversarial, it is kept if it is the closest so far and the
    iterate steps back toward x: `x + beta (x_k - x)`.

    Untargeted FAB computes every class's input gradient each step (the
    Jacobian); FAB-T (`targeted=True`, AutoAttack's choice) runs once for
    each of the `target_classes` most likely other classes (by the clean
    logits) with one gradient per step, each run only on the examples not
    yet broken. Success always means misclassification (FAB-T picks its
    own targets). Restarts after the first start from a random point in
    the ball of radius `min(best norm found, eps) / 2` around x (L-inf: a
    uniform draw scaled to that largest coordinate; L2: a Gaussian
    direction of that norm), as in the authors' code; the first run starts
    at x.

    With `eps`, the result is an adversarial example within eps where one
    was found, else x itself (the AutoAttack convention); with `eps=None`
    it is the smallest adversarial example found (of any norm), else x.
    An example the model already misclassifies is x itself (its minimal
    perturbation is zero). Every returned point is x or misclassified as
    returned: the iterates are judged in x's dtype (float16 inputs), and a
    final forward pass puts back x where a point is not adversarial.
    The steps run in one `tf.while_loop` compiled once per model and
    configuration (no XLA); a model with non-finite outputs or gradients
    raises `ValueError`. FAB's steps follow the geometry of one forward
    pass, so it takes no `eot_samples`: attack randomised models with EOT
    attacks (`pgd`, `apgd`).

    Args:
        model: a Keras model or callable returning logits `(batch, classes)`
            (softmax and sigmoid outputs of Keras models are read as their
            logits; one unit is a binary classifier).
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: sparse or one-hot true labels; `None` attacks the model's own
            predictions.
        norm: `"linf"` or `"l2"`.
        eps: `None` (minimal adversarial examples) or the budget (>= 0).
        steps: iterations per run (>= 1); 100 in AutoAttack.
        restarts: runs per target (>= 1).
        targeted: FAB-T: target the `target_classes` most likely other
            classes one after the other.
        target_classes: number of targets of FAB-T (>= 1; capped at the
            number of classes minus one); 9 in AutoAttack.
        clip: `(min, max)` box of valid inputs, or `None`.
        seed: integer for a repeatable result, `None` for the global
            generator.
        batch_size: examples per compiled call (`None`: all at once).
        alpha_max: the largest weight of the step toward x (0.1).
        eta: overshoot of the projection (1.05).
        beta: step back toward x after a success (0.9).
        from_logits: see `pgd`.

    Returns:
        Adversarial examples with the shape and dtype of `x` (x itself where
        none was found, within eps when `eps` is given).

    Raises:
        ValueError: naming the argument: bad `x` or `y` (as `pgd`), a bad
            norm, eps < 0 or not finite, `steps`, `restarts`,
            `target_classes` or `batch_size` < 1, `alpha_max` or `beta`
            outside [0, 1], `eta` < 1, a model with non-finite outputs;
            a model whose logits have no input gradient (`tape.gradient`
            gives None: integer casts, rounding, argmax outputs), or a zero
            one for every example of a batch at x (a locally constant
            model, where FAB could only report every example robust;
            checked once per batch before the first step).
        TypeError: `targeted` not a bool (`"False"` is truthy).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = fab(model, x, norm="l2", steps=20, seed=0)
    >>> x_adv.shape
    TensorShape([8, 4])
    """
    validation.check_model(model)
    norm = validation.check_norm(norm)
    clip = validation.check_clip(clip)
    validation.check_from_logits(from_logits)
    eps = validation.check_number("eps", eps, allow_none=True,
                                  allow_tensor=False)
    options = dict(
        steps=validation.check_int("steps", steps),
        alpha_max=float(validation.check_number("alpha_max", alpha_max,
                                                upper=1)),
        eta=_check_eta(eta),
        beta=float(validation.check_number("beta", beta, upper=1)),
        norm=norm, clip=clip, targeted=targeted, from_logits=from_logits)
    restarts = validation.check_int("restarts", restarts)
    target_classes = validation.check_int("target_classes", target_classes)
    if batch_size is not None:
        batch_size = validation.check_int("batch_size", batch_size)
    if seed is not None:
        ops.seed_tensor(seed)
    x, labels, _ = core.prepare(model, x, y, clip=clip, targeted=targeted,
                                from_logits=from_logits, loss="ce",
                                true_labels=True)
    if not tf.executing_eagerly():
        raise ValueError(
            "fab runs eagerly (its restarts and targets pick the examples "
            "still robust). Received: a call inside a tf.function")
    options["in_dtype"] = x.dtype.name
    labels = labels.numpy()
    logits = ops.batched_logits(model, x.numpy(), batch_size or 256,
                                from_logits)
    targets = _targets(logits, labels, targeted, target_classes)
    # Already misclassified: the minimal perturbation is zero.
    wrong = np.argmax(logits, axis=-1) != labels
    x_np = tf.cast(x, tf.float32).numpy()
    size = batch_size or len(x_np)
    out = np.concatenate([
        _attack_batch(model, x_np[i:i + size], labels[i:i + size],
                      targets[:, i:i + size], wrong[i:i + size], eps,
                      restarts, seed, options)
        for i in range(0, len(x_np), size)])
    out = tf.cast(tf.constant(out), x.dtype)
    return _verified(model, out, x, labels, batch_size, from_logits)


def _verified(model, out, x, labels, batch_size, from_logits):
    """`out` where the model misclassifies it in its own dtype, else x: a
    returned point is x itself or adversarial as returned (a float16 cast,
    or another batch's kernels, may move a point back across the
    boundary that FAB stops just past)."""
    out_np, x_np = out.numpy(), x.numpy()
    pred = np.argmax(ops.batched_logits(model, out_np, batch_size or 256,
                                        from_logits), axis=-1)
    moved = np.any((out_np != x_np).reshape(len(labels), -1), -1)
    keep = (pred != labels) | ~moved
    if keep.all():
        return out
    mask = keep.reshape((-1,) + (1,) * (x.shape.rank - 1))
    return tf.where(tf.constant(mask), out, x)


def _check_eta(eta):
    eta = float(validation.check_number("eta", eta))
    if eta < 1:
        raise ValueError(f"eta must be a number >= 1. Received: eta={eta!r}")
    return eta


def _targets(logits, labels, targeted, target_classes):
    """`(runs, batch)` int32 target classes: FAB-T's ranked other classes, or
    one row of -1 (untargeted)."""
    if not targeted:
        return np.full((1, len(labels)), -1, np.int32)
    k = min(target_classes, logits.shape[1] - 1)
    return np.stack([ascent.ranked_other_class(
        tf.constant(logits), tf.constant(labels), rank).numpy()
        for rank in range(k)])


def _attack_batch(model, x, labels, targets, wrong, eps, restarts, seed,
                  options):
    """Every run (targets x restarts) on one batch; the closest adversarial
    example per example (within eps when given), else x. Examples in
    `wrong` (misclassified already) are x."""
    todo = np.flatnonzero(~wrong)
    if todo.size == 0:
        return x
    core.check_input_gradient(model, x[todo], options["in_dtype"],
                              options["from_logits"], "FAB")
    fn = core.compiled(model, fab_loop, input_rank=x.ndim, **options)
    best = x.copy()
    best_norm = np.where(wrong, 0.0, np.inf).astype(np.float32)
    seed_t = ops.seed_tensor(seed)
    limit = np.inf if eps is None else eps
    run = 0
    for target in targets:
        for restart in range(restarts):
            todo = np.flatnonzero(best_norm > (0.0 if eps is None else limit))
            if todo.size == 0:
                break
            radius = np.minimum(best_norm[todo], limit)
            radius = np.where(np.isfinite(radius), radius, 0.0) * (
                0.5 if restart > 0 else 0.0)
            adv, found = core.run_relaxed(
                fn, tf.constant(x[todo]), tf.constant(labels[todo]),
                tf.constant(target[todo]),
                tf.constant(radius.astype(np.float32)),
                tf.random.experimental.stateless_fold_in(seed_t, run))
            run += 1
            adv, found = adv.numpy(), found.numpy()
            better = found < best_norm[todo]
            best[todo[better]] = adv[better]
            best_norm[todo[better]] = found[better]
    keep = best_norm <= limit
    return np.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), best, x)


def fab_loop(model, x, labels, target, radius, seed, *, steps, norm, clip,
             targeted, alpha_max, eta, beta, from_logits, in_dtype=None):
    """The FAB iterations on checked tensors (traceable, no checks): returns
    `(closest adversarial example, its norm)`, the norm inf where none was
    found. `target` holds FAB-T's class per example (ignored untargeted);
    `radius` the random start's radius (0: start at x). The model sees the
    iterates cast to `in_dtype` (`None`: x's dtype), and success and
    norms are those of the cast points, the points returned.

    Example: `adv, found = fab_loop(model, x, y, y, tf.zeros([8]), seed,
    steps=100, norm="l2", clip=(0.0, 1.0), targeted=False, alpha_max=0.1,
    eta=1.05, beta=0.9, from_logits=None)`.
    """
    x0 = tf.cast(x, tf.float32)
    in_dtype = tf.as_dtype(in_dtype or x.dtype)
    batch = tf.shape(x0)[0]
    start = x0 + ascent.sphere_start(tf.shape(x0),
                                     ascent.per_example(radius, x0), norm, seed)
    start = ops.clip_box(start, clip)

    def boundary(x1):
        """The closest linearised boundary at x1: `(f, w)` with the
        hyperplane `f + w . (z - x1) = 0` (flattened w)."""
        if targeted:
            def diff(z):
                z = ops.model_logits(model, tf.cast(z, in_dtype), from_logits)
                z = ascent.check_finite(z, "outputs")
                return _pick(z, target) - _pick(z, labels)
            f, grad = ascent.gradient(diff, x1)
            return f, _flat(grad)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x1)
            z = ops.model_logits(model, tf.cast(x1, in_dtype), from_logits)
            z = ascent.check_finite(z, "outputs")
        jac = ascent.check_finite(tape.batch_jacobian(z, x1),
                                  "input gradients", by_sum=True)
        jac = tf.reshape(jac, [batch, tf.shape(z)[1], -1])
        df = z - _pick(z, labels)[:, None]
        dg = jac - tf.gather(jac, labels, axis=1, batch_dims=1)[:, None]
        dual = (tf.reduce_sum(tf.abs(dg), -1) if norm == "linf"
                else tf.norm(dg, axis=-1))
        dist = tf.abs(df) / (dual + 1e-12)
        dist = tf.where(tf.one_hot(labels, tf.shape(z)[1]) > 0.5, np.inf,
                        dist)
        ind = tf.argmin(dist, axis=1, output_type=tf.int32)
        return _pick(df, ind), tf.gather(dg, ind, axis=1, batch_dims=1)

    def body(i, x1, adv, best):
        f, w = boundary(x1)
        flat1, flat0 = _flat(x1), _flat(x0)
        d1 = project(flat1, w, -f, norm, clip)
        d0 = project(flat0, w, -f - tf.reduce_sum(w * (flat0 - flat1), -1),
                     norm, clip)
        a1, a0 = _norm(d1, norm), _norm(d0, norm)
        alpha = tf.clip_by_value(a1 / tf.maximum(a1 + a0, 1e-12), 0.0,
                                 alpha_max)[:, None]
        new = (1 - alpha) * (flat1 + eta * d1) + alpha * (flat0 + eta * d0)
        x1 = ops.clip_box(tf.reshape(new, tf.shape(x0)), clip)
        cast = tf.cast(x1, in_dtype)
        z = ops.model_logits(model, cast, from_logits)
        hit = tf.argmax(z, axis=-1, output_type=tf.int32) != labels
        cast = tf.cast(cast, tf.float32)
        dist = _norm(_flat(cast - x0), norm)
        better = hit & (dist < best)
        adv = tf.where(ascent.per_example(better, x0), cast, adv)
        best = tf.where(better, dist, best)
        x1 = tf.where(ascent.per_example(hit, x0), x0 + beta * (x1 - x0), x1)
        return i + 1, x1, adv, best

    best0 = tf.fill([batch], tf.constant(np.inf, tf.float32))
    _, _, adv, best = tf.while_loop(
        lambda i, *_: i < steps, body, [tf.constant(0), start, x0, best0])
    return tf.cast(adv, in_dtype), best


def project(p, w, c, norm, clip):
    """The smallest perturbation d (L-inf or L2) with `w . d = c` and `p + d`
    inside the box, per row of the flattened `p` and `w` `(batch, dim)`.

    Both norms reduce to one problem: find t >= 0 with
    `sum_i a_i min(t, cap_i) = |c|`, where each coordinate moves in the
    direction sign(c w_i) until its box side: L-inf: a_i = |w_i|, cap_i the
    distance to that side, d_i = sign(c w_i) min(t, cap_i); L2 (the KKT
    point d = clip(lambda w, box)): a_i = w_i^2, cap_i = that distance /
    |w_i|, d_i = sign(c) w_i min(t, cap_i). The left side is increasing and
    piecewise linear in t with breakpoints at the caps, so sorting the caps
    gives t exactly. When the box cannot reach the hyperplane, d is the
    box corner closest to it. Coordinates with w_i = 0 never move.
    Computed in float64 (the caps reach 1e10 where w_i = 0 or there is no
    box) and returned in `p`'s dtype.

    Example:

    >>> d = project(tf.constant([[0.5, 0.5]]), tf.constant([[1.0, 1.0]]),
    ...             tf.constant([0.2]), "l2", (0.0, 1.0))
    >>> [round(float(v), 4) for v in d[0]]
    [0.1, 0.1]
    """
    dtype = p.dtype
    p, w, c = (tf.cast(t, tf.float64) for t in (p, w, c))
    sign = tf.where(c[:, None] * w >= 0, tf.constant(1.0, tf.float64), -1.0)
    if clip is None:
        room = tf.fill(tf.shape(p), tf.constant(_FAR, tf.float64))
    else:
        room = tf.where(sign > 0, clip[1] - p, p - clip[0])
    room = tf.maximum(room, 0.0)
    aw = tf.abs(w)
    if norm == "linf":
        a, cap = aw, room
    else:
        a = tf.square(w)
        cap = tf.where(aw > 0, room / tf.maximum(aw, 1e-300), _FAR)
    t = _capped_level(a, cap, tf.abs(c))
    move = tf.minimum(t[:, None], cap)
    # Coordinates with w_i = 0 stay (L-inf leaves them free: keep them at 0).
    scale = tf.cast(aw > 0, tf.float64) if norm == "linf" else aw
    return tf.cast(sign * move * scale, dtype)


def _capped_level(a, cap, c):
    """The smallest t >= 0 with `sum_i a_i min(t, cap_i) = c` per row (the
    largest cap when no t reaches c).

    With the caps sorted, the sum at `t = cap_k` is `below_k + cap_k
    above_k`, `below_k = sum_{j<k} a_j cap_j` and `above_k = sum_{j>=k}
    a_j`, both sums of non-negative terms (`above` a reverse cumulative
    sum, never a difference of two sums: its cancellation, times caps up to
    1e10, would break the monotone count of breakpoints below c).
    """
    order = tf.argsort(cap, axis=-1)
    cap_s = tf.gather(cap, order, batch_dims=1)
    a_s = tf.gather(a, order, batch_dims=1)
    below = tf.cumsum(a_s * cap_s, axis=-1, exclusive=True)
    above = tf.cumsum(a_s, axis=-1, reverse=True)
    reach = below + cap_s * above  # the sum at t = cap_s[k]
    k = tf.reduce_sum(tf.cast(reach < c[:, None], tf.int32), -1)
    dim = tf.shape(cap)[1]
    inside = k < dim
    kk = tf.minimum(k, dim - 1)
    level = (c - tf.gather(below, kk, batch_dims=1)) / tf.maximum(
        tf.gather(above, kk, batch_dims=1), 1e-300)
    return tf.where(inside, tf.maximum(level, 0.0), cap_s[:, -1])


def _pick(values, index):
    return tf.gather(values, index, axis=1, batch_dims=1)


def _flat(t):
    return tf.reshape(t, [tf.shape(t)[0], -1])


def _norm(flat, norm):
    if norm == "linf":
        return tf.reduce_max(tf.abs(flat), -1)
    return tf.norm(flat, axis=-1)
