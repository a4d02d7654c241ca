"""The chunk loop of `evaluate_robustness`: the sample and the early checks,
then every chunk (on one device or spread over a strategy's replicas),
with the progress saved after each one when a checkpoint path is given."""

import dataclasses
import itertools
import sys
import time

import numpy as np

from keras_adv import ops, validation
from keras_adv.evaluation import checkpoint as _ckpt
from keras_adv.evaluation import checks as _checks
from keras_adv.evaluation import distribute, stream
from keras_adv.evaluation.plan import classes_of, warn_eps_range
from keras_adv.evaluation.run import (
    ChunkResult,
    Progress,
    clean_chunk,
    evaluate_chunk,
)
from keras_adv.evaluation.tally import Tally


@dataclasses.dataclass
class Sample:
    """The first `stream.SAMPLE_SIZE` examples: inputs, labels used, and
    whether each is classified correctly with finite clean outputs."""

    x: np.ndarray
    y: np.ndarray
    correct: np.ndarray


@dataclasses.dataclass
class Outcome:
    """What the loop hands to the report: the final plan (classes and seed
    known), the tally, the sample, the seconds spent by earlier calls, and
    the finished report's dict when a finished checkpoint was found."""

    plan: object
    tally: object
    sample: object
    seconds_before: float = 0.0
    finished: dict = None
    saver: object = None  # its save(chunks, report) writes the checkpoint


def run_chunks(plan, chunks, *, num_examples, path, strategy):
    """Runs the evaluation over `chunks` (a `stream.Chunks`), on the
    replicas of `strategy` (from `distribute.resolve`) if not None. Returns
    an `Outcome`.

    Example: `outcome = run_chunks(plan, chunks, num_examples=None,
    path=None, strategy=None)`.
    """
    head, rest = stream.first_examples(chunks.iterate(), stream.SAMPLE_SIZE)
    if not head:
        raise ValueError("data must contain at least one example. Received: "
                         "data with no examples")
    plan = plan.with_classes(classes_of(plan, head[0][0]))
    warn_eps_range(plan, head[0][0])
    if chunks.y is not None:  # arrays: every label checked before any work
        validation.check_labels(chunks.y, len(chunks.y), plan.common["classes"])
    progress = Progress(chunks.total, _show(plan, chunks.total))
    try:
        return _resume_or_start(plan, chunks, head, rest, progress,
                                num_examples=num_examples, path=path,
                                strategy=strategy)
    finally:
        progress.close()


def _resume_or_start(plan, chunks, head, rest, progress, *, num_examples,
                     path, strategy):
    """The chunk loop of `run_chunks` from a checkpoint or from the start."""
    state = _ckpt.load(path) if path else None
    fp = _ckpt.fingerprint(plan, num_examples, head)
    if state is not None:
        meta, flags, saved = state
        _ckpt.compare(path, meta["fingerprint"], fp)
        plan = dataclasses.replace(plan, seed=meta["fingerprint"]["seed"])
        if meta.get("report") is not None:
            return Outcome(plan, None, None, meta["seconds"], meta["report"])
        tally, done = Tally.from_json(meta["tally"]), meta["chunks"]
        x = np.concatenate([c[0] for c in head])[:stream.SAMPLE_SIZE]
        sample, flags = Sample(x, *saved), [flags]
        source = ((c, None) for c in chunks.iterate(done))
    else:
        if path and plan.seed is None:  # drawn once, kept in the checkpoint
            plan = dataclasses.replace(
                plan, seed=int(ops.seed_tensor(None).numpy()[0]))
        fp["seed"] = plan.seed
        meta = {"fingerprint": fp, "seconds": 0.0, "report": None}
        tally, done, flags = Tally.start(plan), 0, []
        progress.doing("clean predictions and checks on the first examples")
        sample, cleaned = _sample(plan, head)
        _checks.before_attacks(plan, tally, sample)
        source = itertools.chain(zip(head, cleaned), ((c, None) for c in rest))
    loop = _Loop(plan, tally, flags, meta, sample, path, strategy)
    progress.done, loop.progress = tally.examples, progress
    before = meta["seconds"]
    loop.run(source, done)
    return Outcome(plan, tally, sample, before, saver=loop)


def _sample(plan, head):
    """The sample (first `SAMPLE_SIZE` examples of `head`) and each head
    chunk's clean predictions."""
    cleaned = [clean_chunk(plan, x, y) for x, y in head]
    n = stream.SAMPLE_SIZE
    sample = Sample(np.concatenate([x for x, _ in head])[:n],
                    np.concatenate([c[0] for c in cleaned])[:n],
                    np.concatenate([c[1] for c in cleaned])[:n])
    return sample, cleaned


def _show(plan, total):
    if plan.progress is not None:
        return bool(plan.progress)
    return sys.stderr.isatty() and (total is None
                                    or total * len(plan.eps) >= 200)


class _Loop:
    """Chunks in groups of one per replica; merge, progress, checkpoint."""

    def __init__(self, plan, tally, flags, meta, sample, path, strategy):
        self.plan, self.tally, self.flags = plan, tally, flags
        self.meta, self.sample, self.path = meta, sample, path
        self.strategy, self.progress = strategy, None
        self.replicas = 1 if strategy is None else strategy.num_replicas_in_sync

    def run(self, source, index):
        """Evaluates every `((x, y), clean)` of `source`, chunk `index`
        onwards."""
        t0 = time.perf_counter()
        while True:
            group = list(itertools.islice(source, self.replicas))
            if not group:
                break
            items = [(index + k, x, y, clean)
                     for k, ((x, y), clean) in enumerate(group)]
            if self.strategy is None:
                results = [self._work(item) for item in items]
            else:
                results = distribute.run_group(
                    self.strategy, self._work, items,
                    ChunkResult.to_bytes, ChunkResult.from_bytes)
            for result in results:
                self.tally.merge(self.plan, result)
                self.flags.append(result.flags)
                index += 1
                self.progress.step(len(result.flags),
                                   self.tally.robust[-1] / self.tally.examples)
            if self.path:
                now = time.perf_counter()
                self.meta["seconds"] += now - t0
                t0 = now
                self.save(index)
        self.meta["seconds"] += time.perf_counter() - t0

    def _work(self, item):
        index, x, y, clean = item
        first = index * self.plan.batch_size + 1  # chunks of batch_size

        def on_attack(name, eps, examples):
            self.progress.doing(f"{name} at eps {eps:g} on {examples} "
                                f"examples of {first}-{first + len(x) - 1}")

        if clean is None:
            self.progress.doing(f"clean predictions on {first}-"
                                f"{first + len(x) - 1}")
            clean = clean_chunk(self.plan, x, y)
        return evaluate_chunk(self.plan, x, clean, index, self.tally.white_ok,
                              on_attack)

    def save(self, chunks_done=None, report=None):
        """Writes the checkpoint (chunks done, tally, flags, sample, and
        the report's dict once finished)."""
        if chunks_done is not None:
            self.meta["chunks"] = chunks_done
        self.meta.update(tally=self.tally.to_json(), report=report)
        s = self.sample
        _ckpt.save(self.path, self.meta, np.concatenate(self.flags),
                   (s.y, s.correct))
