"""Gradient-masking checks (Carlini et al. 2019, "On Evaluating Adversarial
Robustness"), run by `evaluate_robustness` before and after the attacks.
Each check returns `MaskingWarning`s that say what was seen and what to
do; a normal undefended model triggers none.

The driver calls `before_attacks` (the input gradients and the model's
randomness on the sample, the first `stream.SAMPLE_SIZE` examples) before
the chunks, which count what FGSM and the black-box attack break beyond
the iterative white-box ones (`run.evaluate_chunk`), and `after_attacks`
after them: those counts as warnings, accuracy on the sample at a budget
covering the whole box and along the eps curve, the invalid and
non-finite counts. The individual tests and warning texts are the
functions below them.
"""

import math
import time

import numpy as np
import tensorflow as tf

from keras_adv import ops
from keras_adv.evaluation.metrics import input_gradient
from keras_adv.evaluation.plan import ATTACKS
from keras_adv.evaluation.report import MaskingWarning
from keras_adv.evaluation.run import attack_points


def before_attacks(plan, tally, sample):
    """Gradient and randomness checks on the sample; decides whether
    white-box attacks can run (`tally.white_ok`).

    Example: `before_attacks(plan, Tally.start(plan), sample)`.
    """
    from_logits = plan.common["from_logits"]
    if plan.checks:
        t0 = time.perf_counter()
        idx = np.flatnonzero(sample.correct)[:256]
        found, state, stats = check_gradients(
            plan.model, sample.x[idx], sample.y[idx], from_logits)
        tally.early += found
        tally.diagnostics["gradients"] = stats
        tally.white_ok = state != "missing"
        if plan.eot_samples is None:
            found, diff = check_randomness(plan.model, sample.x[:64], from_logits)
            tally.early += found
            tally.diagnostics["output_difference"] = diff
        tally.time("checks", time.perf_counter() - t0)
    elif input_gradient(plan.model, sample.x[:1], sample.y[:1],
                        from_logits) is None:
        tally.white_ok = False
        tally.early.append(MaskingWarning(
            "gradients", "The model gives no input gradient: white-box "
            "attacks were skipped; only black-box attacks ran."))


def after_attacks(plan, tally, sample):
    """Every warning in order: non-finite clean outputs, the early checks,
    per eps the black-box and single-step checks, accuracy at a budget
    covering the whole box and along the eps curve, then the invalid and
    non-finite counts, all into `tally.warnings`.

    Example: `after_attacks(plan, tally, sample)`.
    """
    if tally.clean_nonfinite:
        tally.warnings.append(non_finite_clean_warning(
            tally.clean_nonfinite, tally.examples))
    tally.warnings += tally.early
    _per_eps(plan, tally)
    if plan.checks:
        t0 = time.perf_counter()
        big_eps, big_acc = None, None
        if tally.white_ok:
            big_eps, big_acc = _large_eps_accuracy(plan, tally, sample)
            tally.diagnostics["large_eps"] = {"eps": big_eps,
                                              "accuracy": big_acc}
        n = tally.examples
        order = sorted(range(len(plan.eps)), key=lambda k: plan.eps[k])
        tally.warnings += eps_growth_warnings(
            big_eps if big_eps is not None else 0.0, big_acc,
            [plan.eps[k] for k in order], [tally.robust[k] / n for k in order])
        tally.time("checks", time.perf_counter() - t0)
    for name, count in tally.invalid.items():
        if count:
            tally.warnings.append(invalid_warning(name, count))
    for name, count in tally.nonfinite.items():
        tally.warnings.append(non_finite_warning(
            name, count, tally.errors.get(name)))
    if tally.clean_nonfinite or tally.nonfinite:
        tally.diagnostics["non_finite"] = {"clean": tally.clean_nonfinite,
                                           **tally.nonfinite}


def _per_eps(plan, tally):
    """Did the black-box attack or single-step FGSM break examples that
    survived the white-box attacks? Warnings and diagnostics per eps."""
    if not (plan.checks and tally.white_ok):
        return
    attacks, n = plan.attacks, tally.examples
    black = [a.name for a, _ in attacks if not a.white_box]
    black_check = any(
        not a.white_box and any(b.white_box for b, _ in attacks[:i])
        for i, (a, _) in enumerate(attacks))
    fgsm, only, black_only = [], [], []
    for i, eps in enumerate(plan.eps):
        if black_check:
            count = tally.black_only[i]
            black_only.append(count)
            if significant(count, n):
                tally.warnings.append(black_box_warning(eps, black, count, n))
        if plan.fgsm_check and eps > 0:
            count = tally.fgsm_only[i]
            fgsm.append(tally.fgsm_correct[i] / n)
            only.append(count)
            if significant(count, n):
                tally.warnings.append(single_step_warning(eps, count, n))
    for key, values in (("fgsm_accuracy", fgsm), ("fgsm_only", only),
                        ("black_box_only", black_only)):
        if values:
            tally.diagnostics[key] = values


def _large_eps_accuracy(plan, tally, sample):
    """Accuracy under PGD from x (CE, then margin) at a budget that covers
    the whole input box, on up to 200 correctly classified examples of the
    sample."""
    clip, norm = plan.common["clip"], plan.common["norm"]
    x = sample.x
    idx = np.flatnonzero(sample.correct)[:200]
    if clip is not None:
        span = clip[1] - clip[0]
        big = span if norm == "linf" else span * math.sqrt(x[0].size)
    else:
        big = 10.0 * max(max(plan.eps), 0.1)
    if idx.size == 0:
        return big, None
    robust = np.ones(idx.size, bool)
    for loss in ("ce", "margin"):
        live = np.flatnonzero(robust)
        if live.size == 0:
            break
        points = attack_points(
            ATTACKS["pgd"], {"loss": loss, "steps": 20, "random_start": False},
            plan.model, x[idx], sample.y[idx], live, big, 0, plan.batch_size,
            plan.common)
        tally.add("pgd (large-eps check)", points, count_invalid=False)
        robust[points.indices()] = False
    return big, float(robust.mean())


def significant(count, total):
    """Whether `count` examples out of `total` are more than noise: more
    than 1% of them, and more than one example.

    Example:

    >>> significant(2, 100), significant(1, 100)
    (True, False)
    """
    return count > max(1, 0.01 * total)


def check_gradients(model, x, y, from_logits=None, batch_size=256):
    """Checks the cross-entropy input gradient at clean points.

    Returns `(warnings, state, stats)`: `state` is `"missing"` when the
    model gives no gradient at all, else `"ok"`; `stats` counts the
    examples whose gradient is exactly zero or not finite.

    Example: `warnings, state, stats = check_gradients(model, x, y)`.
    """
    stats = {"checked": int(len(x)), "zero": 0, "nonfinite": 0}
    if len(x) == 0:
        return [], "ok", stats
    for start in range(0, len(x), batch_size):
        grad = input_gradient(model, x[start:start + batch_size],
                              y[start:start + batch_size], from_logits)
        if grad is None:
            return [MaskingWarning(
                "gradients",
                "The model gives no input gradient (a non-differentiable or "
                "gradient-stopping layer): white-box attacks were skipped and "
                "only black-box attacks ran. Evaluate with BPDA (a "
                "differentiable stand-in for that layer in the backward "
                "pass) and with more black-box queries before trusting the "
                "numbers.",
            )], "missing", stats
        flat = grad.reshape(len(grad), -1)
        finite = np.isfinite(flat).all(axis=1)
        stats["nonfinite"] += int((~finite).sum())
        stats["zero"] += int((finite & (np.abs(flat).max(axis=1) == 0)).sum())
    out = []
    n = stats["checked"]
    if stats["nonfinite"]:
        out.append(MaskingWarning(
            "gradients",
            f"Input gradients contain NaN or inf for {stats['nonfinite']} of "
            f"{n} correctly classified examples, so gradient attacks step "
            "blindly there. Find the layer that produces them (sqrt, log or "
            "division at 0) and attack a differentiable surrogate (BPDA) or "
            "use black-box attacks.",
        ))
    if significant(stats["zero"], n):
        out.append(MaskingWarning(
            "gradients",
            f"Input gradients of the cross-entropy are exactly zero for "
            f"{stats['zero']} of {n} correctly classified examples (a "
            "saturated softmax, as with defensive distillation, or a "
            "non-differentiable layer). Cross-entropy attacks cannot move "
            "there: rely on margin/DLR losses (APGD-T in the standard "
            "suite), black-box attacks, or BPDA, and do not trust "
            "cross-entropy PGD numbers for this model.",
        ))
    return out, "ok", stats


def check_randomness(model, x, from_logits=None):
    """Calls the model twice on the same inputs; warns when the outputs
    differ (a randomised model evaluated without EOT).

    Returns `(warnings, max_difference)`.

    Example: `warnings, diff = check_randomness(model, x[:64])`.
    """
    xt = tf.constant(x)
    a = ops.model_logits(model, xt, from_logits).numpy()
    b = ops.model_logits(model, xt, from_logits).numpy()
    with np.errstate(invalid="ignore"):
        diff = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
    scale = float(np.nanmax(np.abs(a))) if a.size else 0.0
    if diff > 1e-4 * (1.0 + scale):
        return [MaskingWarning(
            "randomness",
            f"The model's outputs change between two identical calls (max "
            f"difference {diff:.3g}) but eot_samples is not set: the model is "
            "randomised and one-sample gradients are noisy. Re-run with "
            "eot_samples=20 (expectation over transformation).",
        )], diff
    return [], diff


def single_step_warning(eps, count, total):
    """The warning for FGSM breaking examples that the iterative white-box
    attacks missed. Example: `single_step_warning(0.3, 12, 500)`."""
    return MaskingWarning(
        "single_step",
        f"At eps={eps:g}, single-step FGSM breaks {count} examples "
        f"({count / total:.1%}) that the iterative white-box attacks do not: "
        "the iterative attacks are failing (gradient masking, or too few "
        "steps). Raise steps and restarts, try the margin or DLR loss, and "
        "take the worst case over all attacks.",
    )


def black_box_warning(eps, names, count, total):
    """The warning for a black-box attack beating the white-box ones.
    Example: `black_box_warning(0.3, ["square"], 40, 500)`."""
    return MaskingWarning(
        "black_box",
        f"At eps={eps:g}, the black-box attack ({', '.join(names)}) broke "
        f"{count} examples ({count / total:.1%}) that survived every white-box "
        "attack: the gradients are likely masked. Only the worst case is "
        "meaningful; strengthen the white-box attacks with BPDA, EOT or "
        "other losses before claiming robustness.",
    )


def eps_growth_warnings(big_eps, big_accuracy, eps, curve):
    """Warnings for accuracy that does not fall toward zero as eps grows:
    high accuracy at a budget covering the whole input box, or a curve that
    rises with eps.

    Example: `eps_growth_warnings(1.0, 0.6, [0.1, 0.3], [0.5, 0.4])`.
    """
    out = []
    if big_accuracy is not None and big_accuracy > 0.05:
        out.append(MaskingWarning(
            "eps_growth",
            f"At eps={big_eps:g} (enough to reach any input in the box) a "
            f"white-box attack leaves {big_accuracy:.1%} accuracy: accuracy "
            "does not fall toward zero as eps grows, so the attacks cannot "
            "follow the model's gradients. Look for masking (non-"
            "differentiable, randomised or saturating layers) and use BPDA, "
            "EOT or black-box attacks.",
        ))
    for i in range(1, len(curve)):
        if eps[i] > eps[i - 1] and curve[i] > curve[i - 1] + 0.02:
            out.append(MaskingWarning(
                "eps_growth",
                f"Robust accuracy rises from {curve[i - 1]:.1%} at "
                f"eps={eps[i - 1]:g} to {curve[i]:.1%} at eps={eps[i]:g}: a "
                "larger budget can never help the model, so the attacks are "
                "unreliable here. Use more steps and restarts, or EOT for a "
                "randomised model.",
            ))
            break
    return out


def invalid_warning(name, count):
    """The warning for adversarial examples that broke the constraints.
    Example: `invalid_warning("pgd", 3)`."""
    return MaskingWarning(
        "invalid",
        f"{count} adversarial examples from {name} were outside the eps-ball "
        "or the input box, or not finite, and were not counted. This points "
        "to NaN gradients in the model or a bug in the attack.",
    )


def non_finite_clean_warning(count, total):
    """The warning for a model whose clean outputs are NaN or inf (those
    examples count as misclassified). Example:
    `non_finite_clean_warning(3, 500)`."""
    return MaskingWarning(
        "non_finite",
        f"The model's outputs are NaN or inf on {count} of {total} clean "
        "examples; they count as misclassified (a NaN is no prediction) and "
        "were not attacked. Find the layer that produces them (log, sqrt or "
        "division outside its domain) before trusting any accuracy.",
    )


def non_finite_warning(name, count, error=None):
    """The warning for examples on which an attack met NaN or inf outputs
    or gradients: they were counted as not broken. Example:
    `non_finite_warning("apgd-ce", 5)`."""
    seen = f" (first error: {error})" if error else ""
    return MaskingWarning(
        "non_finite",
        f"The model gave non-finite outputs or input gradients on {count} "
        f"examples attacked by {name} (summed over eps){seen}. They were "
        "counted as not broken, so the robust accuracy may be overestimated: "
        "make the model finite on the whole eps-ball (a NaN there is "
        "gradient masking) and evaluate again.",
    )
