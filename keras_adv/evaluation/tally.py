"""What `evaluate_robustness` accumulates over the chunks: counts per eps
and per attack, timings, the checks' findings. Plain numbers only, so that
a checkpoint stores it as JSON."""

import dataclasses

import numpy as np

from keras_adv.evaluation.report import MaskingWarning


@dataclasses.dataclass
class Tally:
    """Counts over the chunks done so far.

    `curves[name][i]` counts the examples still robust after attack `name`
    (and every attack before it) at the `i`-th eps, `robust[i]` those robust
    after every attack (the flags of `run`, set by `ops.robust_hits`: right
    with finite outputs clean and at every counted adversarial point; the
    robust accuracy is `robust[i] / examples`); `black_only`,
    `fgsm_correct` and `fgsm_only` are the per-eps counts behind the
    black-box and single-step checks; `early`
    holds the warnings of the checks run before the attacks; `per_class`
    maps each label (a string) to `[examples, correct, robust at each
    eps]`.

    Example: `tally = Tally.start(plan); tally.merge(plan, result)`.
    """

    curves: dict
    robust: list
    black_only: list
    fgsm_correct: list
    fgsm_only: list
    timings: dict
    examples: int = 0
    correct: int = 0
    clean_nonfinite: int = 0
    invalid: dict = dataclasses.field(default_factory=dict)
    nonfinite: dict = dataclasses.field(default_factory=dict)
    errors: dict = dataclasses.field(default_factory=dict)
    early: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    diagnostics: dict = dataclasses.field(default_factory=dict)
    white_ok: bool = True
    per_class: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def start(cls, plan):
        """An empty tally for `plan`."""
        n_eps = len(plan.eps)
        return cls(curves={name: [0] * n_eps for name in plan.names},
                   robust=[0] * n_eps, black_only=[0] * n_eps,
                   fgsm_correct=[0] * n_eps, fgsm_only=[0] * n_eps,
                   timings={name: 0.0 for name in plan.names})

    def add(self, name, points, count_invalid=True):
        """Adds the invalid and non-finite counts of one `attack_points`."""
        if count_invalid:
            self.invalid[name] = self.invalid.get(name, 0) + points.invalid
        if points.nonfinite:
            self.nonfinite[name] = self.nonfinite.get(name, 0) + points.nonfinite
            if points.error and name not in self.errors:
                self.errors[name] = points.error

    def time(self, name, seconds):
        """Adds `seconds` to the timing `name`."""
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def merge(self, plan, result):
        """Adds one chunk's `run.ChunkResult`."""
        n_att = len(plan.attacks)
        flags = result.flags
        self.examples += len(flags)
        self.correct += int(flags[:, 0].sum())
        self.clean_nonfinite += result.clean_nonfinite
        for i in range(len(plan.eps)):
            for j, name in enumerate(plan.names):
                self.curves[name][i] += int(flags[:, 1 + i * n_att + j].sum())
            self.robust[i] += int(flags[:, n_att * (i + 1)].sum())
            self.black_only[i] += result.black_only[i]
            self.fgsm_correct[i] += result.fgsm_correct[i]
            self.fgsm_only[i] += result.fgsm_only[i]
        self._merge_classes(plan, result)
        for name, points, count_invalid in result.points:
            self.add(name, points, count_invalid)
        for name, seconds in result.timings.items():
            self.time(name, seconds)

    def _merge_classes(self, plan, result):
        """Adds one chunk's examples, correct and robust counts per label."""
        n_att, flags = len(plan.attacks), result.flags
        labels = np.asarray(result.y).reshape(-1)
        for c in np.unique(labels):
            rows = flags[labels == c]
            counts = [len(rows), int(rows[:, 0].sum())] + [
                int(rows[:, n_att * (i + 1)].sum())
                for i in range(len(plan.eps))]
            key = str(int(c))
            old = self.per_class.get(key, [0] * len(counts))
            self.per_class[key] = [a + b for a, b in zip(old, counts)]

    def to_json(self):
        """The tally as JSON-friendly values (warnings as dicts)."""
        out = dataclasses.asdict(self)
        out["early"] = [dataclasses.asdict(w) for w in self.early]
        out["warnings"] = [dataclasses.asdict(w) for w in self.warnings]
        return out

    @classmethod
    def from_json(cls, values):
        """The inverse of `to_json`."""
        values = dict(values)
        values["early"] = [MaskingWarning(**w) for w in values["early"]]
        values["warnings"] = [MaskingWarning(**w) for w in values["warnings"]]
        return cls(**values)
