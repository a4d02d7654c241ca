"""The attacks of `evaluate_robustness` on one chunk: each attack, per eps,
on the examples still robust, keeping the worst case per example.

An example is robust when `ops.robust_hits` holds at its clean point
(finite outputs predicting the label) and at every adversarial point that
counts. An adversarial example counts only if it is valid (finite, inside
the eps-ball and the box) and the model's output there is finite. When an
attack raises `ValueError("model gave non-finite ...")`, the examples of
that call are isolated (those non-finite at the clean point first, then
halves of the rest) and the ones that still fail count as not broken; the
count ends up in a `"non_finite"` warning.
"""

import dataclasses
import json
import time

import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.evaluation.metrics import input_gradient
from keras_adv.evaluation.plan import ATTACKS

ATTACK_FGSM = ATTACKS["fgsm"]

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


def chunk_seed(seed, chunk, i, j):
    """The seed of attack `j` at the `i`-th eps on chunk `chunk`: a function
    of these numbers alone, so arrays and streams, interrupted and resumed
    runs, one device and several replicas draw the same random numbers.

    Example:

    >>> chunk_seed(0, 2, 1, 3)
    2001003
    """
    return None if seed is None else seed + 1_000_000 * chunk + 1000 * i + j


@dataclasses.dataclass
class ChunkResult:
    """What one chunk contributes: per-example flags and per-eps counts.

    `flags[:, 0]` marks the examples classified correctly with finite clean
    outputs; `flags[:, 1 + i * A + j]` those still robust after attack `j`
    (and every attack before it) at the `i`-th eps (`A` attacks). `y` holds
    the labels used (the predictions when none were given); `points` the
    `(name, Points, counts_invalid)` of every attack call.
    """

    y: np.ndarray
    flags: np.ndarray
    clean_nonfinite: int
    black_only: list
    fgsm_correct: list
    fgsm_only: list
    points: list = dataclasses.field(default_factory=list)
    timings: dict = dataclasses.field(default_factory=dict)

    @property
    def correct(self):
        """Correct with finite clean outputs, per example."""
        return self.flags[:, 0]

    def to_bytes(self):
        """The result as JSON bytes (no pickle), for exchange between
        workers.

        Example: `ChunkResult.from_bytes(result.to_bytes())`.
        """
        return json.dumps({
            "y": self.y.tolist(), "y_dtype": str(self.y.dtype),
            "flags": self.flags.astype(int).tolist(),
            "shape": list(self.flags.shape),
            "clean_nonfinite": self.clean_nonfinite,
            "black_only": self.black_only, "fgsm_correct": self.fgsm_correct,
            "fgsm_only": self.fgsm_only, "timings": self.timings,
            "points": [[name, dataclasses.asdict(points) | {
                "broken": [np.asarray(b).tolist() for b in points.broken]},
                count] for name, points, count in self.points],
        }).encode()

    @classmethod
    def from_bytes(cls, data):
        """The `ChunkResult` that `to_bytes` wrote."""
        d = json.loads(data.decode())
        points = []
        for name, p, count in d["points"]:
            p["broken"] = [np.asarray(b, np.int64) for b in p["broken"]]
            points.append((name, Points(**p), count))
        flags = np.asarray(d["flags"], bool).reshape(d["shape"])
        return cls(y=np.asarray(d["y"], d["y_dtype"]), flags=flags,
                   clean_nonfinite=d["clean_nonfinite"],
                   black_only=d["black_only"], fgsm_correct=d["fgsm_correct"],
                   fgsm_only=d["fgsm_only"], points=points,
                   timings=d["timings"])


def clean_chunk(plan, x, y):
    """Clean predictions on a chunk: `(labels used, correct and finite,
    number of non-finite outputs)`.

    Example: `y_used, correct, nonfinite = clean_chunk(plan, x, y)`.
    """
    clean = ops.batched_logits(plan.model, x, plan.batch_size,
                               plan.common["from_logits"])
    if y is None:
        y = np.argmax(clean, axis=-1)
    else:
        y = validation.check_labels(y, len(x), clean.shape[-1]).numpy()
    finite = np.isfinite(clean).all(axis=-1)
    return y, ops.robust_hits(y, clean).numpy(), int((~finite).sum())


def work(plan, white_ok, progress, item):
    """One chunk's whole work, `item = (index, x, y, clean)`: the clean
    predictions when `clean` is None, then `evaluate_chunk`; `progress` (a
    `progress.Progress`) is told what runs. Returns a `ChunkResult`.

    Example: `result = work(plan, True, Progress(False), (0, x, y, None))`.
    """
    index, x, y, clean = item
    if clean is None:
        progress.doing(f"clean predictions on {_span(plan, index, len(x))}")
        clean = clean_chunk(plan, x, y)
    return evaluate_chunk(plan, x, clean, index, white_ok, progress=progress)


def _span(plan, index, size):
    """The examples of chunk `index` (chunks of `batch_size`), `"1-500"`."""
    first = index * plan.batch_size + 1
    return f"{first}-{first + size - 1}"


def evaluate_chunk(plan, x, clean, index, white_ok, *, progress=None):
    """Every attack at every eps on the chunk's still-robust examples (the
    worst case per example), and the per-chunk parts of the single-step and
    black-box checks. `clean` is `clean_chunk`'s result; `progress`, if
    given, is told as each attack starts (`Progress.doing`).
    Returns a `ChunkResult`.

    Example: `result = evaluate_chunk(plan, x, clean_chunk(plan, x, y), 0,
    True)`.
    """
    y, correct, nonfinite = clean
    n_eps, n_att = len(plan.eps), len(plan.attacks)
    result = ChunkResult(
        y=y, flags=np.zeros((len(x), 1 + n_eps * n_att), bool),
        clean_nonfinite=nonfinite, black_only=[0] * n_eps,
        fgsm_correct=[0] * n_eps, fgsm_only=[0] * n_eps)
    result.flags[:, 0] = correct
    span = _span(plan, index, len(x))

    def doing(name, eps, examples):
        if progress is not None:
            progress.doing(f"{name} at eps {eps:g} on {examples} examples "
                           f"of {span}")

    for i, eps in enumerate(plan.eps):
        _chunk_eps(plan, x, result, index, i, eps, white_ok, doing)
    return result


def _chunk_eps(plan, x, result, index, i, eps, white_ok, doing):
    """The attacks of the plan at the `i`-th eps on one chunk."""
    y, n_att = result.y, len(plan.attacks)
    robust = result.correct.copy()
    after_white, broke_black = None, np.zeros(len(x), bool)
    for j, (attack, options) in enumerate(plan.attacks):
        if not attack.white_box and after_white is None:
            after_white = robust.copy()
        if attack.white_box and not white_ok:
            result.flags[:, 1 + i * n_att + j] = robust
            continue
        t0 = time.perf_counter()
        doing(attack.name, eps, int(robust.sum()))
        points = attack_points(attack, options, plan.model, x, y,
                               np.flatnonzero(robust), eps,
                               chunk_seed(plan.seed, index, i, j),
                               plan.batch_size, plan.common)
        broken = points.indices()
        robust[broken] = False
        if not attack.white_box:
            broke_black[broken] = True
        result.points.append((attack.name, points, True))
        _time(result, attack.name, t0)
        result.flags[:, 1 + i * n_att + j] = robust
    if after_white is None:
        after_white = robust.copy()
    result.black_only[i] = int((broke_black & after_white).sum())
    if plan.checks and white_ok and plan.fgsm_check and eps > 0:
        t0 = time.perf_counter()
        doing("fgsm (single-step check)", eps, int(result.correct.sum()))
        points = attack_points(ATTACK_FGSM, {}, plan.model, x, y,
                               np.flatnonzero(result.correct), eps, None,
                               plan.batch_size, plan.common)
        result.points.append(("fgsm (single-step check)", points, False))
        hit = np.zeros(len(x), bool)
        hit[points.indices()] = True
        result.fgsm_correct[i] = int((result.correct & ~hit).sum())
        result.fgsm_only[i] = int((hit & after_white).sum())
        _time(result, "checks", t0)


def _time(result, name, t0):
    result.timings[name] = result.timings.get(name, 0.0) + (
        time.perf_counter() - t0)


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
    missed = ~ops.robust_hits(job.y[part], logits).numpy()
    ok = valid_points(adv, job.x[part], job.eps, job.common["norm"],
                      job.common["clip"])
    # Only a valid point with finite outputs breaks an example; the others
    # are the attack's failures, counted apart.
    points.broken.append(part[missed & ok & finite])
    points.invalid += int((missed & ~ok).sum())
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
