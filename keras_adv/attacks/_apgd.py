"""Auto-PGD (Croce & Hein 2020): step-size-free PGD with momentum and
checkpoints, the white-box core of AutoAttack."""

import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent, core, inputs


def apgd(
    model,
    x,
    y=None,
    *,
    eps,
    norm="linf",
    loss="ce",
    targeted=False,
    clip=(0.0, 1.0),
    steps=100,
    restarts=1,
    target_classes=None,
    rho=0.75,
    momentum=0.75,
    seed=None,
    eot_samples=1,
    from_logits=None,
    perturb=None,
    perturb_layer=None,
):
    """Auto-PGD attack (APGD-CE, APGD-DLR and APGD-T).

    Croce & Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020. PGD whose step
    size adapts itself: it starts at eta = 2 * eps, takes momentum steps
    (`momentum` = 0.75; the first step has none) and, at fixed checkpoints
    (the first after 0.22 * steps iterations, then intervals shrinking by
    0.03 * steps down to 0.06 * steps, see `apgd_checkpoints`), halves eta
    and restarts from the best point found so far for every example where
    (a) the objective rose in fewer than `rho` of the steps since the
    previous checkpoint, or (b) eta was not halved at the previous checkpoint
    and the best objective has not improved since. The start is a random
    point on the boundary of the eps-ball (L-inf: a uniform draw scaled so
    that its largest coordinate is eps; L2: a Gaussian direction of norm
    eps), as in the authors' code.

    With `target_classes=k`, this is APGD-T: for each example, k targeted
    runs toward its k most likely other classes (by the clean logits),
    each only on the examples that are still correctly classified, with
    the targeted loss (`loss="dlr"` gives the targeted DLR loss with `y` as
    the true class); success means misclassification. Standard AutoAttack
    uses `loss="dlr", target_classes=9`.

    Deviation from the authors' code: the first checkpoint compares the
    objective with the one at the starting point (as in the paper), where
    the reference code compares with an unset entry.

    The iterations run in one `tf.while_loop` (the checkpoints are a
    constant table), inside one `tf.function` compiled once per model and
    configuration, so tracing time does not grow with `steps`; restarts and
    targets run eagerly on the examples not yet broken. Inside a
    `tf.function` everything traces inline.

    Args:
        model: a Keras model or callable returning logits `(batch, classes)`
            (softmax outputs of Keras models are detected, see `pgd`).
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: sparse or one-hot labels (the targets when `targeted=True`);
            `None` attacks the model's own predictions.
        eps: perturbation budget (>= 0).
        norm: `"linf"` or `"l2"`.
        loss: `"ce"`, `"dlr"` or `"margin"` (maximised, see
            `attack_objective`).
        targeted: move toward the classes in `y`.
        clip: `(min, max)` box of valid inputs, or `None`.
        steps: iterations per run (>= 1); 100 in AutoAttack.
        restarts: random restarts (>= 1), each only on examples not yet
            broken.
        target_classes: `None`, or the number (>= 1) of most likely other
            classes to target one after the other (APGD-T); needs
            `targeted=False`.
        rho: the fraction of steps that must increase the objective between
            checkpoints for eta to stay (0.75).
        momentum: weight of the new step against the previous one (0.75).
        seed: integer for a deterministic result, `None` for the global
            generator.
        eot_samples: average gradients over this many forward passes (EOT).
        from_logits, perturb, perturb_layer: as in `pgd`, but `perturb`
            names one input only (see `inputs.run_on_part`).

    Returns:
        Adversarial examples with the shape and dtype of `x`: for each
        example, an input that meets the attack goal when one was found,
        otherwise the point of highest objective.

    Raises:
        ValueError: naming the argument, for bad arguments (as `pgd`), or
            `target_classes` not below the number of classes.
        TypeError: `targeted` not a bool.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> apgd_t = apgd(model, x, eps=0.1, loss="dlr", target_classes=3,
    ...               steps=10, seed=0)
    >>> bool(np.abs(apgd_t - x).max() <= 0.1 + 1e-6)
    True
    """
    targeted = validation.check_bool("targeted", targeted)
    viewed = inputs.run_on_part(
        "apgd", apgd, model, x, y, perturb=perturb,
        perturb_layer=perturb_layer, clip=clip, eps=eps, norm=norm,
        loss=loss, targeted=targeted, steps=steps, restarts=restarts,
        target_classes=target_classes, rho=rho, momentum=momentum, seed=seed,
        eot_samples=eot_samples, from_logits=from_logits)
    if viewed is not None:
        return viewed
    return _run(
        model, x, y, eps=eps, norm=norm, loss=loss, targeted=targeted,
        clip=clip, steps=steps, restarts=restarts,
        target_classes=target_classes, rho=rho, momentum=momentum, seed=seed,
        eot_samples=eot_samples, from_logits=from_logits, return_success=False,
    )


def apgd_checkpoints(*, steps):
    """The iterations after which APGD checks (and may halve) its step size.

    The first checkpoint is after int(0.22 * steps) iterations; each next
    interval is the previous one minus int(0.03 * steps), but at least
    int(0.06 * steps) (every count at least 1).

    Args:
        steps: APGD's iterations (>= 1).

    Returns:
        The checkpoint iterations, a list of ints, increasing, each at most
        `steps`.

    Example:

    >>> apgd_checkpoints(steps=100)
    [22, 41, 57, 70, 80, 87, 93, 99]
    """
    steps = validation.check_int("steps", steps)
    first, decr, least = _schedule(steps)
    points, at, k = [], first, first
    while at <= steps:
        points.append(at)
        k = max(k - decr, least)
        at += k
    return points


def _schedule(steps):
    # Integer forms of 0.22, 0.03 and 0.06 times steps (round off the
    # floating-point error of e.g. 0.06 * 100 = 6.000000000000001).
    def part(frac):
        return max(int(round(frac * steps, 6)), 1)

    return part(0.22), part(0.03), part(0.06)


def _run(model, x, y, *, eps, norm, loss, targeted, clip, steps, restarts,
         target_classes, rho, momentum, seed, eot_samples, from_logits,
         return_success):
    targeted = validation.check_bool("targeted", targeted)
    norm, loss, clip = validation.check_attack(model, eps=eps, norm=norm, loss=loss,
                                         clip=clip, from_logits=from_logits)
    steps = validation.check_int("steps", steps)
    restarts = validation.check_int("restarts", restarts)
    eot_samples = validation.check_int("eot_samples", eot_samples)
    if target_classes is not None:
        target_classes = validation.check_int("target_classes", target_classes)
        if targeted:
            raise ValueError(
                "target_classes picks the targets itself and needs "
                "targeted=False. Received: target_classes="
                f"{target_classes!r} with targeted=True"
            )
    rho = float(validation.check_number("rho", rho, upper=1))
    momentum = float(validation.check_number("momentum", momentum, upper=1))
    top = target_classes is not None
    if top:
        x, labels, source = _prepare_top(model, x, y, clip, from_logits, loss,
                                         target_classes)
    else:
        x, labels, source = core.prepare(
            model, x, y, clip=clip, targeted=targeted,
            from_logits=from_logits, loss=loss,
        )
    eps_t = tf.cast(eps, tf.float32)
    static = dict(
        steps=steps, norm=norm, loss=loss, targeted=bool(targeted) or top,
        misclassify=top, clip=clip, from_logits=from_logits,
        eot_samples=eot_samples, rho=rho, momentum=momentum,
    )
    seed_t = ops.seed_tensor(seed)
    if top:
        # labels: the true classes; source: the clean logits.
        runs = [(ascent.ranked_other_class(source, labels, t), labels)
                for t in range(target_classes)]
    else:
        runs = [(labels, source)]
    if not tf.executing_eagerly():
        return _graph_runs(model, x, runs, eps_t, seed_t, restarts, static,
                           return_success)
    fn = core.compiled(model, apgd_loop, input_rank=x.shape.rank, **static)
    out = tf.cast(x, tf.float32).numpy().copy()
    found = np.zeros(out.shape[0], bool)
    best_obj = np.full(out.shape[0], -np.inf, np.float32)
    run_id = 0
    for run_labels, run_source in runs:
        run_labels, run_source = run_labels.numpy(), run_source.numpy()
        for _ in range(restarts):
            idx = np.flatnonzero(~found)
            if idx.size == 0:
                break
            adv, hit, obj = core.run_relaxed(
                fn, tf.gather(x, idx), tf.constant(run_labels[idx]),
                tf.constant(run_source[idx]), eps_t,
                seed_t + tf.constant([0, 1], tf.int64) * run_id,
            )
            run_id += 1
            adv, hit, obj = adv.numpy(), hit.numpy(), obj.numpy()
            keep = hit | (obj > best_obj[idx])
            out[idx[keep]] = adv[keep]
            best_obj[idx[keep]] = obj[keep]
            found[idx[hit]] = True
    result = tf.cast(tf.constant(out), x.dtype)
    if return_success:
        return result, tf.constant(found)
    return result


def _prepare_top(model, x, y, clip, from_logits, loss, target_classes):
    """For APGD-T: checked x, true labels and the clean logits."""
    x, labels, _ = core.prepare(model, x, y, clip=clip, targeted=False,
                                from_logits=from_logits, loss="ce",
                                true_labels=True)
    logits = ops.model_logits(model, x, from_logits)
    num_classes = ops.logits_width(logits)
    if num_classes is not None and target_classes >= num_classes:
        raise ValueError(
            f"target_classes must be below the number of classes "
            f"({num_classes}). Received: target_classes={target_classes!r}"
        )
    # APGD-T's objective is targeted: DLR needs 4 classes.
    core._check_dlr_classes(loss, True, num_classes)
    return x, labels, logits


def _graph_runs(model, x, runs, eps, seed, restarts, static, return_success):
    """All runs traced inline (inside a caller's tf.function)."""
    x32 = tf.cast(x, tf.float32)
    out, found, best_obj = x32, None, None
    run_id = 0
    for run_labels, run_source in runs:
        for _ in range(restarts):
            adv, hit, obj = apgd_loop(
                model, x, run_labels, run_source, eps,
                seed + tf.constant([0, 1], tf.int64) * run_id, **static)
            run_id += 1
            if found is None:
                out, found, best_obj = adv, hit, obj
                continue
            keep = (hit & ~found) | (~found & (obj > best_obj))
            best_obj = tf.where(keep, obj, best_obj)
            found = found | hit
            out = tf.where(ascent.per_example(keep, x32), adv, out)
    result = tf.stop_gradient(tf.cast(out, x.dtype))
    return (result, found) if return_success else result


def apgd_loop(model, x, labels, source, eps, seed, *, steps, norm, loss,
              targeted, misclassify, clip, from_logits, eot_samples, rho,
              momentum):
    """One APGD run on checked tensors (traceable, no validation).

    Returns `(adv, success, objective)`: for each example the first
    successful point kept up to date (AutoAttack's `x_best_adv`) where the
    goal was met, otherwise the point of highest objective, whether the
    goal was met, and the best objective. With `misclassify=True` the goal
    is misclassification of `source` (APGD-T), else `is_successful`.

    Example: `apgd_loop(model, x, y, y, 0.3, tf.constant([0, 0]),
    steps=100, norm="linf", loss="ce", targeted=False, misclassify=False,
    clip=(0.0, 1.0), from_logits=None, eot_samples=1, rho=0.75,
    momentum=0.75)`.
    """
    in_dtype = x.dtype
    x0 = tf.cast(x, tf.float32)
    labels = tf.cast(labels, tf.int32)
    source = tf.cast(source, tf.int32)
    objective = core.objective_fn(
        model, labels, loss=loss, targeted=targeted, source=source,
        from_logits=from_logits, in_dtype=in_dtype, eot_samples=eot_samples)

    def success(logits):
        pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if misclassify:
            return tf.not_equal(pred, source)
        hit = tf.equal(pred, labels)
        return hit if targeted else tf.logical_not(hit)

    project = ascent.ball(x0, eps, norm, clip)

    def col(mask):
        return ascent.per_example(mask, x0)

    # is_check[i]: whether iteration i (1-based) ends at a checkpoint.
    table = np.zeros(steps + 1, bool)
    table[apgd_checkpoints(steps=steps)] = True
    is_check_at = tf.constant(table)

    adv = ops.clip_box(x0 + ascent.sphere_start(tf.shape(x0), eps, norm, seed), clip)
    (obj, logits), grad = ascent.gradient(objective, adv)
    found = success(logits)
    per_example = tf.concat(
        [tf.shape(x0)[:1], tf.ones([x0.shape.rank - 1], tf.int32)], 0)
    state = dict(
        adv=adv, adv_old=adv, grad=grad, eta=2.0 * eps * tf.ones(per_example),
        found=found, best_adv=adv, x_best=adv, loss_best=obj, grad_best=grad,
        prev_obj=obj, rises=tf.zeros_like(obj), last_check=tf.constant(0),
        loss_best_last=obj, reduced_last=tf.ones_like(found),
    )

    def body(i, s):
        s = dict(s)
        grad2 = s["adv"] - s["adv_old"]
        a = tf.where(i > 0, momentum, 1.0)
        adv = s["adv"]
        z = project(adv + s["eta"] * ops.steepest_step(s["grad"], norm))
        adv = project(adv + (z - adv) * a + grad2 * (1.0 - a))
        (obj, logits), grad = ascent.gradient(objective, adv)
        hit = success(logits)
        s["adv_old"] = s["adv"]
        s["best_adv"] = tf.where(col(hit), adv, s["best_adv"])
        s["found"] = s["found"] | hit
        improved = obj > s["loss_best"]
        s["x_best"] = tf.where(col(improved), adv, s["x_best"])
        grad_best = tf.where(col(improved), grad, s["grad_best"])
        loss_best = tf.where(improved, obj, s["loss_best"])
        rises = s["rises"] + tf.cast(obj > s["prev_obj"], tf.float32)
        # Checkpoint: halve eta and go back to the best point where the
        # objective rose too rarely, or stalled after an unreduced eta.
        check = is_check_at[i + 1]
        k = tf.cast(i + 1 - s["last_check"], tf.float32)
        oscillating = rises < rho * k
        stalled = tf.logical_not(s["reduced_last"]) & (
            s["loss_best_last"] >= loss_best)
        reduce = (oscillating | stalled) & check
        s["reduced_last"] = tf.where(check, reduce, s["reduced_last"])
        s["loss_best_last"] = tf.where(check, loss_best, s["loss_best_last"])
        s["rises"] = tf.where(check, tf.zeros_like(rises), rises)
        s["last_check"] = tf.where(check, i + 1, s["last_check"])
        s["eta"] = tf.where(col(reduce), s["eta"] / 2.0, s["eta"])
        s["adv"] = tf.where(col(reduce), s["x_best"], adv)
        s["grad"] = tf.where(col(reduce), grad_best, grad)
        s["grad_best"], s["loss_best"], s["prev_obj"] = grad_best, loss_best, obj
        return i + 1, s

    _, state = tf.while_loop(lambda i, s: i < steps, body,
                             (tf.constant(0), state))
    out = tf.where(col(state["found"]), state["best_adv"], state["x_best"])
    return (tf.stop_gradient(tf.cast(out, in_dtype)), state["found"],
            state["loss_best"])
