"""The third stage of `evaluate_robustness`: the gradient-masking checks
(Carlini et al. 2019) around the attacks, built from `masking`'s tests.

`before_attacks` looks at the input gradients and the model's randomness
on the sample (the first `stream.SAMPLE_SIZE` examples), the chunks count
what FGSM and the black-box attack break beyond the iterative white-box
ones (`run.evaluate_chunk`), and `after_attacks` turns those counts into
warnings, checks on the sample that accuracy falls toward zero as eps
grows, and adds the invalid and non-finite counts.
"""

import math
import time

import numpy as np

from keras_adv.evaluation import masking
from keras_adv.evaluation.metrics import input_gradient
from keras_adv.evaluation.plan import ATTACKS
from keras_adv.evaluation.report import MaskingWarning
from keras_adv.evaluation.run import attack_points


def before_attacks(plan, tally, sample):
    """Gradient and randomness checks on the sample; decides whether
    white-box attacks can run (`tally.white_ok`)."""
    from_logits = plan.common["from_logits"]
    if plan.checks:
        t0 = time.perf_counter()
        idx = np.flatnonzero(sample.correct)[:256]
        found, state, stats = masking.check_gradients(
            plan.model, sample.x[idx], sample.y[idx], from_logits)
        tally.early += found
        tally.diagnostics["gradients"] = stats
        tally.white_ok = state != "missing"
        if plan.eot_samples is None:
            found, diff = masking.check_randomness(plan.model, sample.x[:64],
                                                   from_logits)
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
    non-finite counts."""
    if tally.clean_nonfinite:
        tally.warnings.append(masking.non_finite_clean_warning(
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
        tally.warnings += masking.eps_growth_warnings(
            big_eps if big_eps is not None else 0.0, big_acc,
            [plan.eps[k] for k in order], [tally.robust[k] / n for k in order])
        tally.time("checks", time.perf_counter() - t0)
    for name, count in tally.invalid.items():
        if count:
            tally.warnings.append(masking.invalid_warning(name, count))
    for name, count in tally.nonfinite.items():
        tally.warnings.append(masking.non_finite_warning(
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
            if masking.significant(count, n):
                tally.warnings.append(masking.black_box_warning(
                    eps, black, count, n))
        if plan.fgsm_check and eps > 0:
            count = tally.fgsm_only[i]
            fgsm.append(tally.fgsm_correct[i] / n)
            only.append(count)
            if masking.significant(count, n):
                tally.warnings.append(masking.single_step_warning(eps, count,
                                                                  n))
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
