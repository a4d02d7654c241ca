"""The result of `evaluate_robustness`: accuracies, timings and warnings."""

import dataclasses
import json


@dataclasses.dataclass(eq=True, unsafe_hash=True)
class MaskingWarning(UserWarning):
    """A sign that the evaluation may overestimate robustness.

    A `UserWarning`: `evaluate_robustness` emits each one through
    `warnings.warn` (pointing at the caller's line) and also keeps it as a
    structured record in `RobustnessReport.warnings`. Filter or escalate it
    like any warning, e.g. `warnings.simplefilter("error", MaskingWarning)`.

    Attributes:
        check: which check fired: `"gradients"` (input gradients zero,
            missing or NaN), `"randomness"` (outputs change between identical
            calls without `eot_samples`), `"single_step"` (FGSM beats the
            iterative attacks), `"black_box"` (the score-based attack beats
            the white-box ones), `"eps_growth"` (accuracy does not fall
            toward zero as eps grows), `"invalid"` (an attack returned
            points outside the eps-ball, the box, or non-finite values) or
            `"non_finite"` (the model gave NaN or inf outputs or gradients;
            such examples count as misclassified when clean and as not
            broken under attack).
        message: what was seen and what to do about it.

    Example:

    >>> w = MaskingWarning("randomness", "Outputs change ...")
    >>> w.check
    'randomness'
    >>> isinstance(w, UserWarning)
    True
    """

    check: str
    message: str

    def __post_init__(self):
        # Exception machinery (pickling, tracebacks) reads `args`.
        super().__init__(self.check, self.message)

    def __str__(self):
        return f"[{self.check}] {self.message}"


class JSONReport:
    """Base of the report classes (`RobustnessReport`, `CertificationReport`,
    `PoisoningReport`): `to_json` writes what `to_dict` returns.

    Example: `class MyReport(JSONReport): def to_dict(self): ...`.
    """

    def to_dict(self):  # pragma: no cover - abstract
        """The report as JSON-friendly Python values."""
        raise NotImplementedError

    def to_json(self, path=None, indent=2):
        """The report as a JSON string; also written to `path` if given.

        Example: `report.to_json("report.json")`.
        """
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text


@dataclasses.dataclass
class RobustnessReport(JSONReport):
    """Robust accuracy of a model under a suite of attacks, per eps.

    Attributes:
        eps: the budgets evaluated, a tuple.
        norm: `"linf"` or `"l2"`.
        attacks: attack names in the order they ran.
        num_examples: examples evaluated.
        clean_accuracy: accuracy on the unperturbed inputs.
        robust_accuracy_curve: worst-case accuracy per eps (aligned with
            `eps`): an example counts as robust only if it is classified
            correctly and no attack broke it.
        attack_accuracy_curve: for each attack, the accuracy after it and
            every attack before it ran (AutoAttack's cumulative numbers),
            per eps.
        timings: seconds spent in each attack (summed over eps) and in
            `"checks"` and `"metrics"`.
        seconds: total wall time.
        warnings: a list of `MaskingWarning`; empty for a normal model.
        diagnostics: numbers behind the checks (FGSM accuracy per eps,
            accuracy at a very large eps, gradient statistics).
        metrics: `"empirical_robustness"` (median and mean DeepFool
            rho = ||r|| / ||x||) and `"loss_sensitivity"`, or empty.
        scalar_eps: whether a single eps (not a list) was given; then the
            `robust_accuracy` and `attack_accuracy` properties return numbers
            instead of lists.

    Example:

    >>> report = evaluate_robustness(model, x, y, eps=0.3)  # doctest: +SKIP
    >>> report.robust_accuracy <= report.clean_accuracy  # doctest: +SKIP
    True
    >>> report.to_json("report.json")  # doctest: +SKIP
    """

    eps: tuple
    norm: str
    attacks: tuple
    num_examples: int
    clean_accuracy: float
    robust_accuracy_curve: tuple
    attack_accuracy_curve: dict
    timings: dict
    seconds: float
    warnings: list = dataclasses.field(default_factory=list)
    diagnostics: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    scalar_eps: bool = True

    @property
    def robust_accuracy(self):
        """Worst-case robust accuracy: a float for a single eps, else a list
        aligned with `eps`. Example: `report.robust_accuracy`."""
        curve = list(self.robust_accuracy_curve)
        return curve[0] if self.scalar_eps else curve

    @property
    def attack_accuracy(self):
        """Cumulative accuracy after each attack: `{name: float}` for a single
        eps, else `{name: [per eps]}`. Example: `report.attack_accuracy`."""
        if self.scalar_eps:
            return {k: v[0] for k, v in self.attack_accuracy_curve.items()}
        return {k: list(v) for k, v in self.attack_accuracy_curve.items()}

    @property
    def seconds_per_example(self):
        """Wall time per example and eps. Example:
        `report.seconds_per_example`."""
        return self.seconds / max(1, self.num_examples * len(self.eps))

    def to_dict(self):
        """A JSON-serialisable dict of the whole report.

        Example: `json.dumps(report.to_dict())`.
        """
        return {
            "eps": [float(e) for e in self.eps],
            "norm": self.norm,
            "attacks": list(self.attacks),
            "num_examples": int(self.num_examples),
            "clean_accuracy": float(self.clean_accuracy),
            "robust_accuracy": [float(a) for a in self.robust_accuracy_curve],
            "attack_accuracy": {
                k: [float(a) for a in v]
                for k, v in self.attack_accuracy_curve.items()
            },
            "timings": {k: float(v) for k, v in self.timings.items()},
            "seconds": float(self.seconds),
            "seconds_per_example": float(self.seconds_per_example),
            "warnings": [dataclasses.asdict(w) for w in self.warnings],
            "diagnostics": _plain(self.diagnostics),
            "metrics": _plain(self.metrics),
        }

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described (warnings as `MaskingWarning`
        again); a `"scalar_eps"` entry, when present, is kept.

        Example: `RobustnessReport.from_dict(json.load(open("r.json")))`.
        """
        return cls(
            eps=tuple(values["eps"]), norm=values["norm"],
            attacks=tuple(values["attacks"]),
            num_examples=values["num_examples"],
            clean_accuracy=values["clean_accuracy"],
            robust_accuracy_curve=tuple(values["robust_accuracy"]),
            attack_accuracy_curve={k: tuple(v) for k, v
                                   in values["attack_accuracy"].items()},
            timings=dict(values["timings"]), seconds=values["seconds"],
            warnings=[MaskingWarning(**w) for w in values["warnings"]],
            diagnostics=values["diagnostics"], metrics=values["metrics"],
            scalar_eps=values.get("scalar_eps", len(values["eps"]) == 1),
        )

    def table(self):
        """A plain-text table: accuracy per eps after each attack, then the
        warnings. Example: `print(report.table())`."""
        names = list(self.attack_accuracy_curve)
        head = ["eps", "clean"] + names + ["robust"]
        rows = []
        for i, e in enumerate(self.eps):
            rows.append(
                [f"{e:g}", f"{self.clean_accuracy:.2%}"]
                + [f"{self.attack_accuracy_curve[n][i]:.2%}" for n in names]
                + [f"{self.robust_accuracy_curve[i]:.2%}"]
            )
        widths = [max(len(h), *(len(r[j]) for r in rows))
                  for j, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.rjust(w) for c, w in zip(cells, widths))

        out = [f"Robustness ({self.norm}, {self.num_examples} examples, "
               f"{self.seconds:.1f} s)", line(head)]
        out += [line(r) for r in rows]
        er = self.metrics.get("empirical_robustness")
        if er:
            out.append(
                f"Empirical robustness (DeepFool rho): median "
                f"{er['median']:.4g}, mean {er['mean']:.4g}"
            )
        if "loss_sensitivity" in self.metrics:
            out.append(f"Loss sensitivity: {self.metrics['loss_sensitivity']:.4g}")
        if self.warnings:
            out.append("Warnings:")
            out += [f"  - {w}" for w in self.warnings]
        else:
            out.append("No gradient-masking warnings.")
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def plot(self, path):
        """Draws accuracy against eps for each attack (cumulative) and the
        worst case, and saves it as a PNG at `path`.

        Example: `report.plot("robustness.png")`.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        eps = [0.0] + [float(e) for e in self.eps]
        clean = [self.clean_accuracy]
        for name, curve in self.attack_accuracy_curve.items():
            ax.plot(eps, clean + list(curve), marker="o", label=f"after {name}")
        ax.plot(eps, clean + list(self.robust_accuracy_curve), marker="s",
                color="black", linewidth=2, label="robust (worst case)")
        ax.set_xlabel(f"eps ({self.norm})")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        if self.warnings:
            ax.set_title(f"{len(self.warnings)} gradient-masking warning(s)",
                         color="darkred")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)
        return path


def _plain(value):
    """Converts NumPy scalars and tuples to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
