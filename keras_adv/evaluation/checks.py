"""The third stage of `evaluate_robustness`: the gradient-masking checks
(Carlini et al. 2019) around the attacks, built from `masking`'s tests.

`before_attacks` looks at the input gradients and the model's randomness,
`after_eps` compares FGSM and the black-box attack with the iterative
white-box ones at each eps, and `after_attacks` checks that accuracy falls
toward zero as eps grows and adds the invalid and non-finite counts.
"""

import math
import time

import numpy as np

from keras_adv.evaluation import masking
from keras_adv.evaluation.metrics import input_gradient
from keras_adv.evaluation.plan import ATTACKS
from keras_adv.evaluation.report import MaskingWarning
from keras_adv.evaluation.run import attack_points


def before_attacks(plan, tally, progress):
    """Gradient and randomness checks at the clean points; decides whether
    white-box attacks can run (`tally.white_ok`)."""
    from_logits = plan.common["from_logits"]
    if plan.nonfinite:
        tally.warnings.append(
            masking.non_finite_clean_warning(plan.nonfinite, len(plan.x)))
    if plan.checks:
        t0 = time.perf_counter()
        idx = np.flatnonzero(plan.correct)[:256]
        found, state, stats = masking.check_gradients(
            plan.model, plan.x[idx], plan.y[idx], from_logits)
        tally.warnings += found
        tally.diagnostics["gradients"] = stats
        tally.white_ok = state != "missing"
        if plan.eot_samples is None:
            found, diff = masking.check_randomness(plan.model, plan.x[:64],
                                                   from_logits)
            tally.warnings += found
            tally.diagnostics["output_difference"] = diff
        tally.timings["checks"] = time.perf_counter() - t0
        progress.step()
    elif input_gradient(plan.model, plan.x[:1], plan.y[:1],
                        from_logits) is None:
        tally.white_ok = False
        tally.warnings.append(MaskingWarning(
            "gradients", "The model gives no input gradient: white-box "
            "attacks were skipped; only black-box attacks ran."))


def after_eps(plan, tally, eps, outcome):
    """At one eps: did the black-box attack or single-step FGSM break
    examples that survived the white-box attacks?"""
    if not (plan.checks and tally.white_ok):
        return
    attacks = plan.attacks
    n = len(plan.x)
    if any(not a.white_box and any(b.white_box for b, _ in attacks[:i])
           for i, (a, _) in enumerate(attacks)):
        count = int((outcome.broke_black & outcome.after_white).sum())
        tally.per_eps["black_box_only"].append(count)
        if masking.significant(count, n):
            black = [a.name for a, _ in attacks if not a.white_box]
            tally.warnings.append(masking.black_box_warning(eps, black, count,
                                                            n))
    if any(a.white_box and a.iterative for a, _ in attacks) and eps > 0:
        t0 = time.perf_counter()
        points = attack_points(
            ATTACKS["fgsm"], {}, plan.model, plan.x, plan.y,
            np.flatnonzero(plan.correct), eps, None, plan.batch_size,
            plan.common)
        tally.add("fgsm (single-step check)", points, count_invalid=False)
        hit = np.zeros(n, bool)
        hit[points.indices()] = True
        count = int((hit & outcome.after_white).sum())
        tally.per_eps["fgsm_accuracy"].append(float((plan.correct
                                                     & ~hit).mean()))
        tally.per_eps["fgsm_only"].append(count)
        if masking.significant(count, n):
            tally.warnings.append(masking.single_step_warning(eps, count, n))
        tally.timings["checks"] += time.perf_counter() - t0


def after_attacks(plan, tally, progress):
    """Accuracy at a budget covering the whole box and along the eps curve;
    then the invalid and non-finite counts as warnings."""
    for key, values in tally.per_eps.items():
        if values:
            tally.diagnostics[key] = values
    if plan.checks:
        t0 = time.perf_counter()
        big_eps, big_acc = None, None
        if tally.white_ok:
            big_eps, big_acc = _large_eps_accuracy(plan, tally)
            tally.diagnostics["large_eps"] = {"eps": big_eps,
                                              "accuracy": big_acc}
        order = sorted(range(len(plan.eps)), key=lambda k: plan.eps[k])
        tally.warnings += masking.eps_growth_warnings(
            big_eps if big_eps is not None else 0.0, big_acc,
            [plan.eps[k] for k in order], [tally.robust[k] for k in order])
        tally.timings["checks"] += time.perf_counter() - t0
        progress.step()
    for name, count in tally.invalid.items():
        if count:
            tally.warnings.append(masking.invalid_warning(name, count))
    for name, count in tally.nonfinite.items():
        tally.warnings.append(masking.non_finite_warning(
            name, count, tally.errors.get(name)))
    if plan.nonfinite or tally.nonfinite:
        tally.diagnostics["non_finite"] = {"clean": plan.nonfinite,
                                           **tally.nonfinite}


def _large_eps_accuracy(plan, tally):
    """Accuracy under PGD from x (CE, then margin) at a budget that covers
    the whole input box, on up to 200 correctly classified examples."""
    clip, norm = plan.common["clip"], plan.common["norm"]
    x = plan.x
    idx = np.flatnonzero(plan.correct)[:200]
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
            plan.model, x[idx], plan.y[idx], live, big, 0, plan.batch_size,
            plan.common)
        tally.add("pgd (large-eps check)", points, count_invalid=False)
        robust[points.indices()] = False
    return big, float(robust.mean())
