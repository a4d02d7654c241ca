"""DeepFool (Moosavi-Dezfooli et al. 2016): minimal perturbations by
iterative linearisation."""

import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent, core, inputs


def deepfool(
    model,
    x,
    y=None,
    *,
    eps=None,
    norm="l2",
    clip=(0.0, 1.0),
    steps=50,
    overshoot=0.02,
    candidates=10,
    from_logits=None,
    perturb=None,
    perturb_layer=None,
):
    """DeepFool attack: an (approximately) minimal perturbation that changes
    the predicted class.

    Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate
    method to fool deep neural networks", CVPR 2016. At each step the model
    is linearised around the current point, and the smallest step that
    crosses the nearest linearised boundary among the `candidates` most
    likely classes is taken: for class k, with f_k = z_k - z_y and
    w_k = grad f_k, the step is (|f_k| + 1e-4) w_k / ||w_k||_2^2 (L2) or
    (|f_k| + 1e-4) sign(w_k) / ||w_k||_1 (L-inf), for the k minimising
    |f_k| / ||w_k||_q (q = 2 or 1, the dual norm). The accumulated
    perturbation r is applied as x + (1 + overshoot) r, clipped to the box,
    and the loop stops for each example once its class has changed, after at
    most `steps` steps. DeepFool is untargeted and has no loss to choose, so
    it takes no `loss` or `targeted` argument.

    Args:
        model: a Keras model or callable returning logits `(batch, classes)`
            (softmax outputs of Keras models are detected, see `pgd`).
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: labels to move away from; `None` uses the model's predictions.
            Examples not classified as `y` are returned unchanged.
        eps: `None` (the default: a minimal-perturbation attack, unbounded),
            or a budget onto whose ball the result is projected.
        norm: `"l2"` or `"linf"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        steps: maximum iterations (>= 1).
        overshoot: relative overshoot past the boundary (>= 0).
        candidates: number of most likely classes considered (>= 2).
        from_logits, perturb, perturb_layer: as in `pgd`, but `perturb`
            names one input only (see `inputs.run_on_part`).

    Returns:
        Perturbed inputs with the shape and dtype of `x`.

    Raises:
        ValueError: naming the argument, for bad arguments as `pgd`; a
            model whose logits have no input gradient, or (called eagerly)
            a zero one for every example of the batch, where DeepFool could
            only return x (see `core.check_input_gradient`).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = deepfool(model, x, clip=None)
    >>> pred = lambda v: np.argmax(model.predict(v, verbose=0), -1)
    >>> bool((pred(x_adv) != pred(x)).all())
    True
    """
    viewed = inputs.run_on_part(
        "deepfool", deepfool, model, x, y, perturb=perturb,
        perturb_layer=perturb_layer, clip=clip, eps=eps, norm=norm,
        steps=steps, overshoot=overshoot, candidates=candidates,
        from_logits=from_logits)
    if viewed is not None:
        return viewed
    validation.check_model(model)
    validation.check_number("eps", eps, allow_none=True)
    norm = validation.check_norm(norm)
    clip = validation.check_clip(clip)
    steps = validation.check_int("steps", steps)
    overshoot = float(validation.check_number("overshoot", overshoot))
    candidates = validation.check_int("candidates", candidates, minimum=2)
    validation.check_from_logits(from_logits)
    x, labels, _ = core.prepare(model, x, y, clip=clip, targeted=False,
                                from_logits=from_logits, loss="ce")
    logits = ascent.check_finite(ops.model_logits(model, x, from_logits),
                                 "outputs")
    k = min(candidates, logits.shape[-1])
    # The label first, then the k - 1 most likely other classes.
    boosted = tf.where(tf.one_hot(labels, logits.shape[-1]) > 0.5,
                       tf.fill(tf.shape(logits), logits.dtype.max), logits)
    cand = tf.math.top_k(boosted, k=k).indices
    static = dict(norm=norm, clip=clip, steps=steps, overshoot=overshoot,
                  bounded=eps is not None, from_logits=from_logits)
    eps_t = tf.cast(0.0 if eps is None else eps, tf.float32)
    if tf.executing_eagerly():
        core.check_input_gradient(model, x, x.dtype, from_logits, "DeepFool")
        fn = core.compiled(model, deepfool_loop, input_rank=x.shape.rank,
                           **static)
        return core.run_relaxed(fn, x, cand, eps_t)
    return deepfool_loop(model, x, cand, eps_t, **static)


def deepfool_loop(model, x, cand, eps, *, norm, clip, steps, overshoot,
                  bounded, from_logits):
    """The DeepFool iterations on checked tensors (traceable).

    `cand[:, 0]` is the class to leave, `cand[:, 1:]` the classes whose
    boundaries are considered. Example: `deepfool_loop(model, x, cand, 0.0,
    norm="l2", clip=(0.0, 1.0), steps=50, overshoot=0.02, bounded=False,
    from_logits=None)`.
    """
    in_dtype = x.dtype
    x0 = tf.cast(x, tf.float32)
    k = cand.shape[-1]
    cand = tf.cast(cand, tf.int32)
    orig = cand[:, 0]
    col = [-1] + [1] * (x0.shape.rank - 1)

    def apply(r):
        delta = (1.0 + overshoot) * r
        if bounded:
            delta = ops.project(delta, eps, norm)
        return ops.clip_box(x0 + delta, clip)

    def dual(t):
        return ops.l2_norm(t) if norm == "l2" else ops.l1_norm(t)

    def body(i, r, active):
        adv = apply(r)
        with tf.GradientTape(persistent=True,
                             watch_accessed_variables=False) as tape:
            tape.watch(adv)
            logits = ops.model_logits(model, tf.cast(adv, in_dtype),
                                       from_logits)
            logits = ascent.check_finite(logits, "outputs")
            picked = tf.gather(logits, cand, axis=-1, batch_dims=1)
            sums = [tf.reduce_sum(picked[:, j]) for j in range(k)]
        grads = [tape.gradient(s, adv) for s in sums]
        del tape
        if grads[0] is None:
            raise ValueError(
                "model gives no gradient with respect to its input; DeepFool "
                "cannot run on it. Received: a model whose output does not "
                "depend differentiably on x"
            )
        grads = [ascent.check_finite(g, "input gradients", by_sum=True) for g in grads]
        pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
        active = active & tf.equal(pred, orig)
        best_dist = best_f = best_w = None
        for j in range(1, k):
            w = grads[j] - grads[0]
            f = tf.abs(picked[:, j] - picked[:, 0])
            dist = f / (tf.reshape(dual(w), [-1]) + 1e-8)
            if best_dist is None:
                best_dist, best_f, best_w = dist, f, w
                continue
            closer = dist < best_dist
            best_dist = tf.where(closer, dist, best_dist)
            best_f = tf.where(closer, f, best_f)
            best_w = tf.where(tf.reshape(closer, col), w, best_w)
        scale = tf.reshape(best_f + 1e-4, col)
        if norm == "l2":
            step = scale * best_w / (tf.square(ops.l2_norm(best_w)) + 1e-8)
        else:
            step = scale * tf.sign(best_w) / (ops.l1_norm(best_w) + 1e-8)
        r = r + tf.where(tf.reshape(active, col), step, 0.0)
        return i + 1, r, active

    def cond(i, r, active):
        return (i < steps) & tf.reduce_any(active)

    active0 = tf.ones_like(orig, tf.bool)
    _, r, _ = tf.while_loop(cond, body, (tf.constant(0), tf.zeros_like(x0),
                                         active0))
    return tf.stop_gradient(tf.cast(apply(r), in_dtype))
