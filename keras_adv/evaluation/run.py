"""The second stage of `evaluate_robustness`: each attack, per eps, on the
examples still robust, keeping the worst case per example.

An adversarial example counts only if it is valid (finite, inside the
eps-ball and the box) and the model's output there is finite. When an
attack raises `ValueError("model gave non-finite ...")`, the examples of
that call are isolated (those non-finite at the clean point first, then
halves of the rest) and the ones that still fail count as not broken; the
count ends up in a `"non_finite"` warning.
"""

import contextlib
import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops
from keras_adv.evaluation import masking
from keras_adv.evaluation.metrics import input_gradient

# How an attack says that the model's outputs or gradients are NaN or inf.
NON_FINITE = "model gave non-finite"
# Halvings allowed per attack call to isolate examples that make it fail.
MAX_SPLITS = 16


def is_non_finite_error(error):
    """Whether `error` is an attack's non-finite outputs/gradients error
    (a `ValueError`, or an assertion raised inside a `tf.function`).

    Example: `is_non_finite_error(ValueError("model gave non-finite ..."))`.
    """
    return isinstance(error, (ValueError, tf.errors.InvalidArgumentError)) \
        and NON_FINITE in str(error)


@dataclasses.dataclass
class Tally:
    """What the stages accumulate: accuracies per eps, timings, warnings,
    diagnostics and per-attack counts of invalid and non-finite points."""

    timings: dict
    curves: dict
    robust: list
    warnings: list = dataclasses.field(default_factory=list)
    diagnostics: dict = dataclasses.field(default_factory=dict)
    per_eps: dict = dataclasses.field(default_factory=lambda: {
        "fgsm_accuracy": [], "fgsm_only": [], "black_box_only": []})
    invalid: dict = dataclasses.field(default_factory=dict)
    nonfinite: dict = dataclasses.field(default_factory=dict)
    errors: dict = dataclasses.field(default_factory=dict)
    white_ok: bool = True

    @classmethod
    def start(cls, plan):
        """An empty tally for `plan`."""
        return cls(timings={name: 0.0 for name in plan.names},
                   curves={name: [0.0] * len(plan.eps) for name in plan.names},
                   robust=[0.0] * len(plan.eps))

    def add(self, name, points, count_invalid=True):
        """Adds the invalid and non-finite counts of one `attack_points`."""
        if count_invalid:
            self.invalid[name] = self.invalid.get(name, 0) + points.invalid
        if points.nonfinite:
            self.nonfinite[name] = self.nonfinite.get(name, 0) + points.nonfinite
            if points.error and name not in self.errors:
                self.errors[name] = points.error


@dataclasses.dataclass(frozen=True)
class EpsOutcome:
    """Per-example flags after one eps: still robust, robust after the
    white-box attacks, broken by a black-box attack."""

    robust: np.ndarray
    after_white: np.ndarray
    broke_black: np.ndarray


class Progress:
    """`keras.utils.Progbar` over the stages, written to stderr so that
    stdout keeps only results; does nothing when disabled."""

    def __init__(self, total, enabled):
        self.done, self.bar = 0, None
        if enabled:
            with contextlib.redirect_stdout(sys.stderr):
                self.bar = keras.utils.Progbar(total, stateful_metrics=["eps"])

    def step(self, eps=None):
        """Counts one stage done (an attack at `eps`, or a check)."""
        if self.bar is None:
            return
        self.done += 1
        with contextlib.redirect_stdout(sys.stderr):
            self.bar.update(self.done, [] if eps is None else [("eps", eps)])


def run_eps(plan, tally, progress, i, eps):
    """Runs every attack of the plan at `eps` (the i-th budget), each on the
    examples still robust. Returns an `EpsOutcome`."""
    robust = plan.correct.copy()
    after_white, broke_black = None, np.zeros(len(plan.x), bool)
    for j, (attack, options) in enumerate(plan.attacks):
        progress.step(eps)
        if not attack.white_box and after_white is None:
            after_white = robust.copy()
        if attack.white_box and not tally.white_ok:
            tally.curves[attack.name][i] = float(robust.mean())
            continue
        t0 = time.perf_counter()
        run_seed = None if plan.seed is None else plan.seed + 1000 * i + j
        points = attack_points(attack, options, plan.model, plan.x, plan.y,
                               np.flatnonzero(robust), eps, run_seed,
                               plan.batch_size, plan.common)
        broken = points.indices()
        robust[broken] = False
        if not attack.white_box:
            broke_black[broken] = True
        tally.add(attack.name, points)
        tally.timings[attack.name] += time.perf_counter() - t0
        tally.curves[attack.name][i] = float(robust.mean())
    tally.robust[i] = float(robust.mean())
    if after_white is None:
        after_white = robust.copy()
    return EpsOutcome(robust, after_white, broke_black)


@dataclasses.dataclass
class Points:
    """The result of `attack_points`: the examples broken by valid
    adversarial points, and counts of invalid and non-finite ones."""

    broken: list = dataclasses.field(default_factory=list)
    invalid: int = 0
    nonfinite: int = 0
    error: str = None
    splits: int = 0

    def indices(self):
        """The broken examples' indices, one array."""
        return np.concatenate(self.broken) if self.broken else np.zeros(0, int)


@dataclasses.dataclass(frozen=True)
class _Job:
    attack: object
    options: dict
    model: object
    x: np.ndarray
    y: np.ndarray
    eps: float
    seed: object
    batch_size: int
    common: dict


def attack_points(attack, options, model, x, y, idx, eps, seed, batch_size,
                  common):
    """Runs one attack on `x[idx]` in batches. Returns `Points`.

    Example: `points = attack_points(ATTACKS["pgd"], {}, model, x, y,
    np.arange(len(x)), 0.1, 0, 500, common)`.
    """
    job = _Job(attack, options, model, x, y, eps, seed, batch_size, common)
    points = Points()
    for start in range(0, idx.size, batch_size):
        _attack_part(job, idx[start:start + batch_size], points)
    return points


def _attack_part(job, part, points):
    """Attacks `x[part]` in one call and scores the result."""
    try:
        adv = job.attack.run(job.model, job.x[part], job.y[part], eps=job.eps,
                             seed=job.seed, **dict(job.common, **job.options))
    except Exception as error:  # noqa: BLE001 (re-raised below)
        if not is_non_finite_error(error):
            raise
        points.error = points.error or str(error).strip().splitlines()[0]
        _isolate(job, part, points)
        return
    adv = np.asarray(adv)
    logits = ops.batched_logits(job.model, adv, job.batch_size,
                                job.common["from_logits"])
    finite = np.isfinite(logits).all(axis=-1)
    wrong = np.argmax(logits, -1) != job.y[part]
    ok = masking.valid_points(adv, job.x[part], job.eps, job.common["norm"],
                              job.common["clip"])
    points.broken.append(part[wrong & ok & finite])
    points.invalid += int((wrong & ~ok).sum())
    points.nonfinite += int((ok & ~finite).sum())


def _isolate(job, part, points):
    """After a non-finite error on `x[part]`: counts the examples that are
    non-finite at the clean point and retries the rest, or retries halves
    (at most `MAX_SPLITS` times per `attack_points`), or counts them all."""
    fine = _finite_rows(job, part)
    if not fine.all():
        points.nonfinite += int((~fine).sum())
        if fine.any():
            _attack_part(job, part[fine], points)
    elif part.size > 1 and points.splits < MAX_SPLITS:
        points.splits += 1
        half = part.size // 2
        _attack_part(job, part[:half], points)
        _attack_part(job, part[half:], points)
    else:
        points.nonfinite += int(part.size)


def _finite_rows(job, part):
    """Per example of `x[part]`: finite outputs and input gradient there."""
    from_logits = job.common["from_logits"]
    logits = ops.batched_logits(job.model, job.x[part], job.batch_size,
                                from_logits)
    fine = np.isfinite(logits).all(axis=-1)
    grad = input_gradient(job.model, job.x[part], job.y[part], from_logits)
    if grad is not None:
        fine &= np.isfinite(grad.reshape(len(part), -1)).all(axis=-1)
    return fine
