"""`evaluate_robustness`: worst-case robust accuracy over an attack suite,
with gradient-masking checks, in four stages: plan (`plan.make_plan`), the
chunk loop (`driver.run_chunks`: data from `stream`, attacks from `run`,
progress in `checkpoint`, replicas through `distribute`), checks (`checks`)
and report (`_report`)."""

import os
import time
import warnings

import numpy as np

from keras_adv.evaluation import checks as _checks
from keras_adv.evaluation import distribute, driver, masking, stream
from keras_adv.evaluation.metrics import empirical_robustness, loss_sensitivity
from keras_adv.evaluation.plan import ATTACKS, STANDARD, make_plan, parse_attacks
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.evaluation.run import is_non_finite_error

__all__ = ["ATTACKS", "STANDARD", "evaluate_robustness", "parse_attacks"]


def evaluate_robustness(
    model,
    data,
    y=None,
    *,
    eps,
    norm="linf",
    attacks="standard",
    eot_samples=None,
    batch_size=None,
    seed=None,
    clip=(0.0, 1.0),
    from_logits=None,
    checks=True,
    metrics=True,
    progress=None,
    num_examples=None,
    checkpoint=None,
    strategy=None,
):
    """Worst-case robust accuracy under a suite of attacks, with
    gradient-masking checks.

    The `"standard"` suite is AutoAttack's (Croce & Hein 2020): APGD-CE,
    then APGD-T (targeted DLR against the 9 most likely other classes),
    then FAB-T (targeted FAB toward the same 9 classes, kept within eps),
    then Square (5000 queries), each run only on the examples
    that are still correctly classified, so an example counts as robust
    only if every attack failed on it (the worst case per example). Every
    adversarial example is checked (finite, inside the eps-ball and the box)
    before it counts.

    With `checks=True` the report carries a `MaskingWarning` for each sign of
    gradient masking (Carlini et al. 2019): input gradients that are zero,
    missing or NaN; outputs that change between identical calls while
    `eot_samples` is not set; single-step FGSM beating the iterative
    attacks; the black-box attack beating the white-box ones; accuracy that
    does not fall toward zero as eps grows (checked with PGD from x at a
    budget covering the whole box, and along the eps curve). These
    diagnostics do not enter the robust accuracy; a normal undefended model
    gets no warning. Each warning is kept in `report.warnings` and also
    emitted with `warnings.warn` (pointing at the caller's line) once the
    run is over, so `warnings.simplefilter("error", MaskingWarning)` turns
    the first one into an exception and `"ignore"` silences them.

    The data are cut into chunks of `batch_size` consecutive examples
    (arrays, or a `tf.data.Dataset` of batches of any size, re-cut with
    `rebatch`); each chunk goes through every eps and every attack before
    the next one is read, so memory holds one chunk, per-example outcome
    flags and the sample: the first `SAMPLE_SIZE` (500) examples, on which
    the gradient and randomness checks, the large-eps check and the metrics
    run. The seed of each attack call is a function of `(seed, chunk index,
    eps index, attack index)`: arrays and a dataset of the same examples,
    a resumed and an uninterrupted run, one device and several replicas
    give the same report for the same `batch_size`. (Before chunking, each
    attack ran eps by eps over the whole data in batches of the still-robust
    examples: numbers of random attacks differ slightly from those runs.)

    Never a silent NaN: an example whose clean outputs are NaN or inf
    counts as misclassified; an example on which an attack meets
    non-finite outputs or input gradients (the attack's `ValueError("model
    gave non-finite ...")`, or NaN/inf outputs at the adversarial point)
    counts as not broken. Either way a `MaskingWarning` with check
    `"non_finite"` says how many.

    Args:
        model: a Keras model or callable returning logits or probabilities
            `(batch, classes)` (softmax outputs of Keras models detected).
        data: inputs inside `clip` (an array or tensor), or a finite
            `tf.data.Dataset` of batches: `(x, y)`, `(x, y, sample_weight)`
            (the weights are ignored) or `x` alone (labels = predictions).
        y: labels for array inputs, sparse or one-hot; `None` uses the
            model's predictions. Must be `None` with a dataset.
        eps: a budget, or a list of budgets (a robustness curve).
        norm: `"linf"` or `"l2"`.
        attacks: `"standard"`, a comma-separated string, or a list of names
            from `ATTACKS` (`"fgsm"`, `"pgd"`, `"apgd-ce"`, `"apgd-dlr"`,
            `"apgd-t"`, `"fab"`, `"fab-t"`, `"deepfool"`, `"square"`), each
            optionally a `(name, options)` pair whose options go to the
            attack function (e.g. `("square", {"queries": 1000})`), run in
            that order. `"standard"` is AutoAttack's order: APGD-CE,
            APGD-T, FAB-T, Square.
        eot_samples: `None` for deterministic models; for randomised ones
            the number of forward passes each gradient averages over (EOT).
        batch_size: examples per chunk, the unit of work, of each attack
            call and of each checkpoint; with several replicas, the chunk
            of one replica (`None`: 500).
        seed: integer for a repeatable evaluation.
        clip: `(min, max)` box of valid inputs, or `None`.
        from_logits: see `keras_adv.attacks.pgd` (`False` when the model
            returns probabilities that are not a detectable softmax).
        checks: run the gradient-masking checks.
        metrics: compute the empirical robustness (DeepFool) and loss
            sensitivity on up to 500 examples.
        progress: show progress on stderr counting the examples done: a
            `keras.utils.Progbar` on a terminal (with no target for a
            stream of unknown length), plain lines at most every 5 s
            elsewhere (CI logs, `nohup`);
            `None` shows it on a terminal when the run covers 200 or more
            example-eps pairs (or an unknown number).
        num_examples: evaluate only the first `num_examples` examples of
            the arrays or the dataset; required for an infinite dataset.
        checkpoint: a file path, or `None`. The progress is written there
            atomically after every chunk (an `.npz` archive of JSON and
            boolean arrays, read with `allow_pickle=False`); called again
            with the same arguments, model weights and data, the run skips
            the chunks done and gives the report of an uninterrupted run
            (wall-clock timings aside). The file is kept when the run
            finishes, and a finished checkpoint returns its report at once.
            With `seed=None`, a seed is drawn once and stored.
        strategy: a `tf.distribute.Strategy` whose replicas each take one
            chunk per step (`strategy.run`); `None` uses the strategy whose
            `scope()` is active, if any. The report equals the one-device
            report with the same `batch_size`. Under
            `MultiWorkerMirroredStrategy` every worker makes the same call
            on the same data and gets the whole report (`docs/distributed.md`).

    Returns:
        A `RobustnessReport`.

    Raises:
        ValueError: naming the argument, for a model that is not
            callable, an unknown attack, attack option or norm, a negative
            or non-numeric eps, bad labels, or `x` that is empty,
            non-finite, outside `clip` or not of the model's input shape
            (for a dataset: when the bad chunk is read); `y` given with a
            dataset; an infinite dataset without `num_examples`; a
            `checkpoint` written with other arguments, weights or data (the
            message names the field that differs).
        MaskingWarning: only when a warnings filter escalates it
            (`warnings.simplefilter("error", MaskingWarning)`).

    Example:

    >>> (_, _), (x, y) = keras_adv.datasets.load("mnist5k")  # doctest: +SKIP
    >>> report = evaluate_robustness(model, x[:500], y[:500],
    ...                              eps=[0.1, 0.2, 0.3])  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
    >>> report.plot("robustness.png")  # doctest: +SKIP

    A stream, resumable after an interruption, on two devices:

    >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)  # doctest: +SKIP
    >>> strategy = tf.distribute.MirroredStrategy()  # doctest: +SKIP
    >>> report = evaluate_robustness(model, ds, eps=0.3, seed=0,
    ...                              checkpoint="run.ckpt",
    ...                              strategy=strategy)  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    plan = make_plan(model, eps=eps, norm=norm, attacks=attacks,
                     eot_samples=eot_samples, batch_size=batch_size,
                     seed=seed, clip=clip, from_logits=from_logits,
                     checks=checks, metrics=metrics, progress=progress)
    path = _check_path(checkpoint)
    strategy = distribute.resolve(strategy)
    chunks = stream.open_data(data, y, batch_size=plan.batch_size,
                              num_examples=num_examples,
                              clip=plan.common["clip"], model=plan.model)
    outcome = driver.run_chunks(plan, chunks, num_examples=num_examples,
                                path=path, strategy=strategy)
    if outcome.finished is not None:
        report = RobustnessReport.from_dict(outcome.finished)
    else:
        plan, tally, sample = outcome.plan, outcome.tally, outcome.sample
        _checks.after_attacks(plan, tally, sample)
        metric_values = _metrics(plan, tally, sample)
        seconds = outcome.seconds_before + time.perf_counter() - t_start
        report = _report(plan, tally, metric_values, seconds)
        if path:
            outcome.saver.save(report=dict(report.to_dict(),
                                          scalar_eps=plan.scalar_eps))
    for warning in report.warnings:
        warnings.warn(warning, stacklevel=2)
    return report


def _check_path(checkpoint):
    """`checkpoint` as a path (or None); its folder must exist."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)) or os.path.isdir(
        checkpoint
    ) or not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        raise ValueError(
            "checkpoint must be a file path in an existing folder, or None. "
            f"Received: checkpoint={checkpoint!r}")
    return os.fspath(checkpoint)


def _metrics(plan, tally, sample):
    """The eps-free metrics (DeepFool's empirical robustness, the loss
    sensitivity) on the sample (the first `stream.SAMPLE_SIZE` examples),
    or `{}`."""
    if not (plan.metrics and tally.white_ok and tally.correct):
        return {}
    t0 = time.perf_counter()
    idx = np.arange(len(sample.x))
    common = dict(batch_size=plan.batch_size,
                  from_logits=plan.common["from_logits"])
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
