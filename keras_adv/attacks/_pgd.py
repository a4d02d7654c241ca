"""Projected gradient descent (Madry et al. 2018), with BIM and MIM."""

import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent, core, inputs
from keras_adv.attacks.losses import attack_objective, is_successful


def pgd(
    model,
    x,
    y=None,
    *,
    eps,
    steps=10,
    step_size=None,
    norm="linf",
    random_start=True,
    restarts=1,
    momentum=0.0,
    loss="ce",
    targeted=False,
    clip=(0.0, 1.0),
    seed=None,
    eot_samples=1,
    from_logits=None,
    perturb=None,
    perturb_layer=None,
):
    """Projected gradient descent attack (PGD; BIM and MIM as special cases).

    Madry et al., "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018. Starting from a uniform random point of the eps-ball
    (`random_start=True`), takes `steps` steepest-ascent steps of size
    `step_size` on the attack objective (sign of the gradient for L-inf, the
    L2-normalised gradient for L2), each followed by projection onto the
    eps-ball and the `clip` box. `random_start=False` gives BIM (Kurakin et
    al.); `momentum > 0` gives MIM (Dong et al. 2018): g <- mu g + grad/||grad||1,
    stepping along g. With `restarts > 1`, the worst case per example is kept:
    a successful point beats an unsuccessful one, then the higher loss wins.
    Restart r draws its start from `(seed, r)`, so a run with more restarts is
    never weaker than one with fewer and the same seed.

    The steps run in `ascent.ascend` (a `tf.while_loop`), one loop per
    restart (independent, so they run concurrently), inside one
    `tf.function` compiled once per model and configuration: tracing time
    does not grow with `steps`, and grows by one loop body per restart (see
    `docs/benchmarks.md`). Without restarts, a batch of 128 or more whose
    size is fixed when the function is traced runs as two halves, two
    independent loops, from starts drawn for the whole batch: the same
    points, faster on few cores.
    The model runs with `training=False`.

    Args:
        model: a Keras model or a callable mapping a batch to logits of shape
            `(batch, classes)`. A Keras model ending in softmax is detected
            and its pre-softmax logits are used.
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: labels, sparse `(batch,)`/`(batch, 1)` or one-hot
            `(batch, classes)`; the targets when `targeted=True`. `None`
            attacks the model's own predictions (avoids label leaking).
        eps: perturbation budget (>= 0), a number or a scalar tensor.
        steps: number of gradient steps (>= 1).
        step_size: step size; `None` means `2.5 * eps / steps` (reaches the
            boundary from any start with room to move along it), and `eps`
            when `steps=1`.
        norm: `"linf"` or `"l2"`.
        random_start: start from a uniform point of the eps-ball.
        restarts: number of random restarts (>= 1).
        momentum: MIM decay factor mu (>= 0); 0 is plain PGD.
        loss: `"ce"`, `"margin"` (CW: z_y - max_{i!=y} z_i) or `"dlr"`.
            Targeted DLR uses the model's clean prediction as the source
            class and raises z_t over z_source (as in AutoAttack's APGD-T,
            whose aim is misclassification); use `"ce"` or `"margin"` to make
            the target the top class.
        targeted: move toward the classes in `y` instead of away from them.
        clip: `(min, max)` box of valid inputs, or `None`.
        seed: integer for a deterministic result; `None` draws from the
            global TensorFlow generator (so `keras.utils.set_random_seed`
            makes runs repeatable).
        eot_samples: average the gradient over this many forward passes
            (expectation over transformation, for randomised models).
        from_logits: `None` detects softmax outputs of Keras models; `False`
            declares that `model` returns probabilities; `True` forces logits.
        perturb: for a model with several inputs (`x` a list, tuple or
            dict): the inputs the attack may change, by Keras input name,
            dict key or position (list order; a dict's key order), one or a
            list; `None` (default) perturbs every floating-point input. The
            others pass through untouched (the same tensors). eps and
            `clip` apply to each perturbed input on its own: with L-inf
            each stays within eps of its original, with L2 each has its own
            L2 distance <= eps (the budget is per input, not shared).
        perturb_layer: the name of a layer (or the layer) of a Functional
            or Sequential model whose output is perturbed instead of the
            inputs (token models: the `Embedding`; Miyato et al. 2017,
            "Adversarial Training Methods for Semi-Supervised Text
            Classification"). The attack then returns the adversarial
            layer output, since the inputs (ids) cannot be perturbed, and
            `clip` is ignored (the layer output has no box).

    Returns:
        Adversarial examples, a tensor with the shape and dtype of `x`.
        float16/bfloat16 inputs are attacked with float32 arithmetic.
        With several inputs, the structure of `x` (list in, list out; dict
        in, dict out); with `perturb_layer`, the adversarial layer output.

    Raises:
        ValueError: naming the argument, for eps negative or NaN, an unknown
            norm or loss, steps < 1, labels whose length, shape or classes do
            not match, x outside `clip` or non-finite, targeted without `y`,
            a model that gives no input gradient, or a model whose outputs
            or input gradients are NaN or inf ("model gave non-finite ...");
            `perturb` naming an input that does not exist (the valid names
            are listed), an integer input (such as token ids) without
            `perturb_layer`, an unknown `perturb_layer` or a subclassed
            model with it. An input gradient that is zero everywhere is
            not refused: a saturated loss is legitimate (defensive
            distillation; `evaluate_robustness`'s masking checks flag it).
        TypeError: `targeted` not a bool (`"False"` is truthy).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = pgd(model, x, eps=0.1, steps=5, seed=0)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True

    Two inputs, the image perturbed and the metadata untouched:

    >>> image = keras.Input((4,), name="image")
    >>> meta = keras.Input((2,), name="meta")
    >>> out = keras.layers.Dense(3)(keras.layers.Concatenate()([image, meta]))
    >>> two = keras.Model([image, meta], out)
    >>> m = np.random.rand(8, 2).astype("float32")
    >>> adv = pgd(two, [x, m], eps=0.1, steps=5, seed=0, perturb="image")
    >>> bool(np.array_equal(adv[1], m)), bool(np.abs(adv[0] - x).max() <= 0.1 + 1e-6)
    (True, True)
    """
    return _run(
        model, x, y, eps=eps, steps=steps, step_size=step_size, norm=norm,
        random_start=random_start, restarts=restarts, momentum=momentum,
        loss=loss, targeted=targeted, clip=clip, seed=seed,
        eot_samples=eot_samples, from_logits=from_logits, perturb=perturb,
        perturb_layer=perturb_layer,
    )


def _run(model, x, y, *, eps, steps, step_size, norm, random_start, restarts,
         momentum, loss, targeted, clip, seed, eot_samples, from_logits,
         perturb=None, perturb_layer=None):
    """Validates arguments and runs the (compiled) PGD loop."""
    norm, loss, clip = validation.check_attack(model, eps=eps, norm=norm, loss=loss,
                                         clip=clip, from_logits=from_logits)
    view = inputs.view(model, x, perturb=perturb, perturb_layer=perturb_layer)
    if view is not None:
        if view.layer:
            clip = None
        model, x = inputs.Bound(view), view.parts
    steps = validation.check_int("steps", steps)
    restarts = validation.check_int("restarts", restarts)
    eot_samples = validation.check_int("eot_samples", eot_samples)
    step_size = validation.check_number("step_size", step_size, positive=True,
                                  allow_none=True)
    momentum = float(validation.check_number("momentum", momentum))
    x, labels, source = core.prepare(
        model, x, y, clip=clip, targeted=targeted,
        from_logits=from_logits, loss=loss, parts=view is not None,
    )
    eps_t = tf.cast(eps, tf.float32)
    if not tf.executing_eagerly():
        tf.debugging.assert_non_negative(eps_t, "eps must be >= 0.")
    if step_size is None:
        alpha = (2.5 * eps_t / steps) if steps > 1 else eps_t
    else:
        alpha = tf.cast(step_size, tf.float32)
    static = dict(
        steps=steps, restarts=restarts, momentum=momentum, norm=norm,
        loss=loss, targeted=bool(targeted), random_start=bool(random_start),
        clip=clip, from_logits=from_logits, eot_samples=eot_samples,
    )
    seed_t = ops.seed_tensor(seed)
    if view is not None:
        static["assembler"] = view.assembler
        args = (x, labels, source, eps_t, alpha, seed_t, view.others)
        if tf.executing_eagerly():
            fn = core.compiled(view.model, pgd_loop, input_rank=view.key,
                               **static)
            return view.output(fn(*args))
        return view.output(pgd_loop(view.model, *args, **static))
    if tf.executing_eagerly():
        fn = core.compiled(model, pgd_loop, input_rank=x.shape.rank, **static)
        return fn(x, labels, source, eps_t, alpha, seed_t)
    return pgd_loop(model, x, labels, source, eps_t, alpha, seed_t, **static)


# A batch of at least this many examples, attacked without restarts, runs
# as two halves (see `pgd_loop`); restarts already run as independent loops.
HALVES_FROM = 128


def _half(x0, restarts, assembler):
    """The size of the first half when `pgd_loop` splits the batch, else 0:
    one input tensor, one restart, a static batch of `HALVES_FROM` or more.
    """
    if restarts != 1 or assembler is not None or isinstance(x0, (list, tuple)):
        return 0
    batch = x0.shape[0]
    return batch // 2 if batch is not None and batch >= HALVES_FROM else 0


def pgd_loop(model, x, labels, source, eps, alpha, seed, others=(), *, steps,
             restarts, momentum, norm, loss, targeted, random_start, clip,
             from_logits, eot_samples, assembler=None):
    """The PGD computation on checked tensors (traceable, no validation).

    Example: `pgd_loop(model, x, y, y, 0.3, 0.01, tf.constant([0, 0]),
    steps=40, restarts=1, momentum=0.0, norm="linf", loss="ce",
    targeted=False, random_start=True, clip=(0.0, 1.0), from_logits=None,
    eot_samples=1)`.

    With a view (`keras_adv.attacks.inputs`), `x` is the list of perturbed
    inputs, `others` the other inputs and `assembler(parts, others)` builds
    the model input.
    """
    in_dtype = tf.nest.map_structure(lambda t: t.dtype, x)
    x0 = tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), x)
    assemble = None
    if assembler is not None:
        def assemble(parts, n=1):
            rest = [o if n == 1 else tf.tile(o, [n] + [1] * (o.shape.rank - 1))
                    for o in others]
            return assembler(parts, rest)

    def climb(centre, start, labels, source):
        objective = core.objective_fn(
            model, labels, loss=loss, targeted=targeted, source=source,
            from_logits=from_logits, in_dtype=in_dtype,
            eot_samples=eot_samples, assemble=assemble)
        return ascent.ascend(objective, centre, start=start, eps=eps,
                             step_size=alpha, steps=steps, norm=norm,
                             clip=clip, momentum=momentum)

    def run(r):
        start = None
        if random_start:
            start = ascent.uniform_start(
                x0, eps, norm, clip,
                seed + tf.constant([0, 1], tf.int64) * tf.cast(r, tf.int64))
        half = _half(x0, restarts, assembler)
        if not half:
            return climb(x0, start, labels, source)
        # Two halves of the batch, two independent loops in one graph: one
        # half's small ops run while the other's convolutions hold the
        # cores (PGD-20 on 256 images 8-11% faster on 2 cores, equal beside
        # a busy process; docs/benchmarks.md). The starts are drawn for the
        # whole batch, so the halves meet the same points.
        parts = [
            climb(x0[part], None if start is None else start[part],
                  labels[part], None if source is None else source[part])
            for part in (slice(None, half), slice(half, None))]
        return tf.concat(parts, 0)

    if restarts == 1:
        return tf.nest.map_structure(tf.stop_gradient,
                                     ascent.cast_to(run(0), in_dtype))

    def score(adv):
        model_in = ascent.cast_to(adv, in_dtype)
        if assemble is not None:
            model_in = assemble(model_in)
        logits = ops.model_logits(model, model_in, from_logits)
        logits = ascent.check_finite(logits, "outputs")
        obj = attack_objective(logits, labels, loss=loss, targeted=targeted,
                               source=source)
        return obj, is_successful(logits, labels, targeted)

    # One while_loop per restart: tracing grows by one loop body per
    # restart (not per step), and the independent loops run concurrently.
    best = best_obj = best_hit = None
    for r in range(restarts):
        adv = run(r)
        obj, hit = score(adv)
        if best is None:
            best, best_obj, best_hit = adv, obj, hit
            continue
        better = (hit & ~best_hit) | ((hit == best_hit) & (obj > best_obj))
        best_obj = tf.where(better, obj, best_obj)
        best_hit = better | best_hit
        best = tf.nest.map_structure(
            lambda a, b, keep=better: tf.where(
                tf.reshape(keep, [-1] + [1] * (a.shape.rank - 1)), a, b),
            adv, best)
    return tf.nest.map_structure(tf.stop_gradient,
                                 ascent.cast_to(best, in_dtype))
