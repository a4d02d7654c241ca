"""The evaluation driver: `evaluate_robustness` owns the flow, and every
stage is a call from here that returns (none calls back up).

In order: the plan (`plan.make_plan`; the classes and the eps range from
the first chunk), the data (`stream`), the checkpoint (`checkpoint`:
resume, then a save after every chunk and of the finished report), the
masking checks on the sample (`masking.before_attacks`), every chunk (on
one device or one per replica through `distribute`; the work of a chunk is
`run.work`), the counts (`tally.Tally`), the checks from the counts
(`masking.after_attacks`), then the metrics and the report
(`suite.summarize`). Progress is one `keras_adv.progress.Progress`.
"""

import dataclasses
import functools
import itertools
import time
import warnings

import numpy as np

from keras_adv import ops, validation
from keras_adv.evaluation import checkpoint as _ckpt
from keras_adv.evaluation import distribute, masking, run, stream, suite
from keras_adv.evaluation.plan import classes_of, make_plan, warn_eps_range
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.evaluation.tally import Tally
from keras_adv.progress import Progress

__all__ = ["evaluate_robustness"]


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
    started = time.perf_counter()
    plan = make_plan(model, eps=eps, norm=norm, attacks=attacks,
                     eot_samples=eot_samples, batch_size=batch_size,
                     seed=seed, clip=clip, from_logits=from_logits,
                     checks=checks, metrics=metrics, progress=progress)
    path = _ckpt.check_path(checkpoint)
    strategy = distribute.resolve(strategy)
    chunks = stream.open_data(data, y, batch_size=plan.batch_size,
                              num_examples=num_examples,
                              clip=plan.common["clip"], model=plan.model)
    report = _evaluate(plan, chunks, num_examples=num_examples, path=path,
                       strategy=strategy, started=started)
    for warning in report.warnings:
        warnings.warn(warning, stacklevel=2)
    return report


def _evaluate(plan, chunks, *, num_examples, path, strategy, started):
    """Everything after the plan and the data are opened: the head's
    checks, the chunk loop (resumed from `path` if it holds a run), the
    checks after it, the report (saved to `path` when given)."""
    head, rest = stream.first_examples(chunks.iterate(), stream.SAMPLE_SIZE)
    if not head:
        raise ValueError("data must contain at least one example. Received: "
                         "data with no examples")
    plan = plan.with_classes(classes_of(plan, head[0][0]))
    warn_eps_range(plan, head[0][0])
    if chunks.y is not None:  # arrays: every label checked before any work
        validation.check_labels(chunks.y, len(chunks.y), plan.common["classes"])
    state = _ckpt.load(path) if path else None
    fp = _ckpt.fingerprint(plan, num_examples, head)
    if state is not None:
        _ckpt.compare(path, state[0]["fingerprint"], fp)
        if state[0].get("report") is not None:  # a finished run
            return RobustnessReport.from_dict(state[0]["report"])
    work = None if chunks.total is None else chunks.total * len(plan.eps)
    with Progress.resolve(plan.progress, work, total=chunks.total,
                          counts=True) as progress:
        if state is None:
            loop, source, done = _start(plan, head, rest, fp, path, progress)
        else:
            loop, source, done = _resume(plan, chunks, head, state, path)
        progress.done = loop.tally.examples
        loop.run(source, done, strategy, progress)
    plan, tally, sample = loop.plan, loop.tally, loop.sample
    masking.after_attacks(plan, tally, sample)
    report = suite.summarize(plan, tally, sample, loop.before
                             + time.perf_counter() - started)
    if path:
        loop.save(report=dict(report.to_dict(), scalar_eps=plan.scalar_eps))
    return report


@dataclasses.dataclass
class Sample:
    """The first `stream.SAMPLE_SIZE` examples: inputs, labels used, and
    whether each is classified correctly with finite clean outputs."""

    x: np.ndarray
    y: np.ndarray
    correct: np.ndarray


def _start(plan, head, rest, fp, path, progress):
    """A new run: the seed (drawn once when a checkpoint keeps it), the
    sample's clean predictions and the checks before the attacks. Returns
    `(loop, source, first chunk)`."""
    if path and plan.seed is None:  # drawn once, kept in the checkpoint
        plan = dataclasses.replace(
            plan, seed=int(ops.seed_tensor(None).numpy()[0]))
    fp["seed"] = plan.seed
    meta = {"fingerprint": fp, "seconds": 0.0, "report": None}
    tally = Tally.start(plan)
    progress.doing("clean predictions and checks on the first examples")
    cleaned = [run.clean_chunk(plan, x, y) for x, y in head]
    n = stream.SAMPLE_SIZE
    sample = Sample(np.concatenate([x for x, _ in head])[:n],
                    np.concatenate([c[0] for c in cleaned])[:n],
                    np.concatenate([c[1] for c in cleaned])[:n])
    masking.before_attacks(plan, tally, sample)
    source = itertools.chain(zip(head, cleaned), ((c, None) for c in rest))
    return _Loop(plan, tally, [], meta, sample, path), source, 0


def _resume(plan, chunks, head, state, path):
    """A run resumed from its checkpoint `state` (the stored seed, tally,
    flags and sample). Returns `(loop, source, first chunk)`."""
    meta, flags, saved = state
    plan = dataclasses.replace(plan, seed=meta["fingerprint"]["seed"])
    tally, done = Tally.from_json(meta["tally"]), meta["chunks"]
    x = np.concatenate([c[0] for c in head])[:stream.SAMPLE_SIZE]
    loop = _Loop(plan, tally, [flags], meta, Sample(x, *saved), path)
    return loop, ((c, None) for c in chunks.iterate(done)), done


class _Loop:
    """The state of the chunk loop (plan, tally, per-example flags, the
    checkpoint's meta, the sample); runs the chunks and saves."""

    def __init__(self, plan, tally, flags, meta, sample, path):
        self.plan, self.tally, self.flags = plan, tally, flags
        self.meta, self.sample, self.path = meta, sample, path
        self.before = meta["seconds"]  # spent by earlier calls

    def run(self, source, index, strategy, progress):
        """Evaluates every `((x, y), clean)` of `source`, chunk `index`
        onwards, in groups of one chunk per replica of `strategy`."""
        work = functools.partial(run.work, self.plan, self.tally.white_ok,
                                 progress)
        replicas = 1 if strategy is None else strategy.num_replicas_in_sync
        t0 = time.perf_counter()
        while group := list(itertools.islice(source, replicas)):
            items = [(index + k, x, y, clean)
                     for k, ((x, y), clean) in enumerate(group)]
            if strategy is None:
                results = [work(item) for item in items]
            else:
                results = distribute.run_group(
                    strategy, work, items, run.ChunkResult.to_bytes,
                    run.ChunkResult.from_bytes)
            for result in results:
                self.tally.merge(self.plan, result)
                self.flags.append(result.flags)
                index += 1
                progress.step(len(result.flags),
                              self.tally.robust[-1] / self.tally.examples)
            if self.path:
                now = time.perf_counter()
                self.meta["seconds"] += now - t0
                t0 = now
                self.save(index)
        self.meta["seconds"] += time.perf_counter() - t0

    def save(self, chunks_done=None, report=None):
        """Writes the checkpoint (chunks done, tally, flags, sample, and
        the report's dict once finished)."""
        if chunks_done is not None:
            self.meta["chunks"] = chunks_done
        self.meta.update(tally=self.tally.to_json(), report=report)
        s = self.sample
        _ckpt.save(self.path, self.meta, np.concatenate(self.flags),
                   (s.y, s.correct))
