"""The last stage of `evaluate_robustness`: the eps-free metrics on the
sample (DeepFool's empirical robustness, the loss sensitivity) and the
`RobustnessReport` assembled from the `Tally`, called by the driver once
every chunk is done and the masking checks have run."""

import time

import numpy as np

from keras_adv.evaluation import masking
from keras_adv.evaluation.metrics import empirical_robustness, loss_sensitivity
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.evaluation.run import is_non_finite_error


def summarize(plan, tally, sample, seconds):
    """The `RobustnessReport` of a finished run: the metrics (when
    `plan.metrics`) on `sample`, then every count of `tally`; `seconds` is
    the run's wall-clock time so far (the metrics' time is added).

    Example: `report = summarize(plan, tally, sample, 12.5)`.
    """
    t0 = time.perf_counter()
    values = _metrics(plan, tally, sample)
    return _report(plan, tally, values, seconds + time.perf_counter() - t0)


def _metrics(plan, tally, sample):
    """The eps-free metrics (DeepFool's empirical robustness, the loss
    sensitivity) on the sample (the first `stream.SAMPLE_SIZE` examples),
    or `{}`."""
    if not (plan.metrics and tally.white_ok and tally.correct):
        return {}
    t0 = time.perf_counter()
    idx = np.arange(len(sample.x))
    common = dict(batch_size=plan.batch_size,
                  from_logits=plan.common["from_logits"], progress=False)
    try:
        values = {
            "empirical_robustness": empirical_robustness(
                plan.model, sample.x[idx], sample.y[idx], norm=plan.norm,
                clip=plan.common["clip"], **common)._asdict(),
            "loss_sensitivity": loss_sensitivity(
                plan.model, sample.x[idx], sample.y[idx], **common),
        }
    except Exception as error:  # noqa: BLE001 (re-raised below)
        if not is_non_finite_error(error):
            raise
        values = {}
        tally.warnings.append(masking.non_finite_warning(
            "deepfool (metrics)", len(idx), str(error).strip().splitlines()[0]))
    tally.time("metrics", time.perf_counter() - t0)
    return values


def _report(plan, tally, metric_values, seconds):
    """Assembles the `RobustnessReport`."""
    n = tally.examples
    return RobustnessReport(
        eps=tuple(plan.eps), norm=plan.norm, attacks=tuple(plan.names),
        num_examples=n, clean_accuracy=tally.correct / n,
        robust_accuracy_curve=tuple(r / n for r in tally.robust),
        attack_accuracy_curve={k: tuple(c / n for c in v)
                               for k, v in tally.curves.items()},
        timings=tally.timings, seconds=seconds, warnings=tally.warnings,
        diagnostics=tally.diagnostics, metrics=metric_values,
        scalar_eps=plan.scalar_eps,
        class_accuracy={
            c: {"examples": v[0], "clean": v[1] / v[0],
                "robust": [r / v[0] for r in v[2:]]}
            for c, v in sorted(tally.per_class.items(), key=lambda kv: int(kv[0]))},
    )
