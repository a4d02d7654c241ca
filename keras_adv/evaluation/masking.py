"""Gradient-masking checks (Carlini et al. 2019, "On Evaluating Adversarial
Robustness"). Each check returns `MaskingWarning`s that say what was seen
and what to do; a normal undefended model triggers none."""

import numpy as np
import tensorflow as tf

from keras_adv import ops
from keras_adv.evaluation.metrics import input_gradient
from keras_adv.evaluation.report import MaskingWarning


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


def valid_points(adv, x, eps, norm, clip):
    """Per-example flags: finite, within eps (with float32 slack) and
    inside the box. Example: `ok = valid_points(adv, x, 0.3, "linf",
    (0.0, 1.0))`."""
    adv = np.asarray(adv, np.float32).reshape(len(adv), -1)
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    finite = np.isfinite(adv).all(axis=1)
    d = np.where(np.isfinite(adv), adv - x, 0.0)
    size = np.abs(d).max(axis=1) if norm == "linf" else np.linalg.norm(d, axis=1)
    ok = finite & (size <= eps * (1 + 1e-5) + 1e-5)
    if clip is not None:
        lo, hi = clip
        with np.errstate(invalid="ignore"):
            ok &= (np.nan_to_num(adv, nan=lo).min(axis=1) >= lo - 1e-6) & (
                np.nan_to_num(adv, nan=hi).max(axis=1) <= hi + 1e-6)
    return ok


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
