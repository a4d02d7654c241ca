"""The result of `evaluate_robustness`: accuracies, timings and warnings."""

import dataclasses
import math

from keras_adv import reporting


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


@dataclasses.dataclass(eq=False)
class RobustnessReport(reporting.Report):
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
        class_accuracy: per label (a string, e.g. `"3"`): `{"examples": n,
            "clean": accuracy, "robust": [worst-case accuracy per eps]}`
            (labels are the predictions where none were given); empty in
            reports written before it existed.

    Example:

    >>> report = evaluate_robustness(model, x, y, eps=0.3)  # doctest: +SKIP
    >>> report.robust_accuracy <= report.clean_accuracy  # doctest: +SKIP
    True
    >>> report.to_json("report.json")  # doctest: +SKIP
    """

    eps: tuple[float, ...]
    norm: str
    attacks: tuple[str, ...]
    num_examples: int
    clean_accuracy: float
    robust_accuracy_curve: tuple[float, ...]
    attack_accuracy_curve: dict[str, tuple[float, ...]]
    timings: dict[str, float]
    seconds: float
    warnings: list[MaskingWarning] = dataclasses.field(default_factory=list)
    diagnostics: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    scalar_eps: bool = True
    class_accuracy: dict = dataclasses.field(default_factory=dict)

    json_keys = {"robust_accuracy_curve": "robust_accuracy",
                 "attack_accuracy_curve": "attack_accuracy"}

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
            "diagnostics": reporting.plain(self.diagnostics),
            "metrics": reporting.plain(self.metrics),
            "scalar_eps": bool(self.scalar_eps),
            "class_accuracy": reporting.plain(self.class_accuracy),
        }

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described (warnings as `MaskingWarning`
        again, null accuracies as NaN); without a `"scalar_eps"` entry, a
        single eps is scalar.

        Raises:
            ValueError: a missing or mistyped field, named in one line.

        Example: `RobustnessReport.from_dict(json.load(open("r.json")))`.
        """
        fields = cls.read_fields(values)
        try:
            fields["warnings"] = [MaskingWarning(w["check"], w["message"])
                                  for w in fields.get("warnings", [])]
        except (KeyError, TypeError):
            raise ValueError(
                "RobustnessReport JSON must have the field 'warnings' as a "
                "list of objects with a 'check' and a 'message'. Received: "
                f"warnings={reporting.shown(values['warnings'])}") from None
        fields.setdefault("scalar_eps", len(fields["eps"]) == 1)
        return cls(**fields)

    def table(self):
        """A plain-text table: accuracy per eps after each attack, then the
        warnings. Example: `print(report.table())`."""
        names = list(self.attack_accuracy_curve)
        rows = [[f"{e:g}", f"{self.clean_accuracy:.2%}"]
                + [f"{self.attack_accuracy_curve[n][i]:.2%}" for n in names]
                + [f"{self.robust_accuracy_curve[i]:.2%}"]
                for i, e in enumerate(self.eps)]
        out = [f"Robustness ({self.norm}, {self.num_examples} examples, "
               f"{self.seconds:.1f} s)"]
        out += reporting.columns(["eps", "clean"] + names + ["robust"], rows)
        er = self.metrics.get("empirical_robustness")
        if er:
            out.append(
                f"Empirical robustness (DeepFool rho): median "
                f"{_number(er['median']):.4g}, mean {_number(er['mean']):.4g}"
            )
        if "loss_sensitivity" in self.metrics:
            out.append("Loss sensitivity: "
                       f"{_number(self.metrics['loss_sensitivity']):.4g}")
        if self.warnings:
            out.append("Warnings:")
            out += [f"  - {w}" for w in self.warnings]
        else:
            out.append("No gradient-masking warnings.")
        return "\n".join(out)

    def class_table(self):
        """A plain-text table of clean and worst-case robust accuracy per
        class and eps. Example: `print(report.class_table())`."""
        head = ["class", "examples", "clean"] + [f"eps {e:g}" for e in self.eps]
        rows = [[c, str(v["examples"]), f"{_number(v['clean']):.2%}"]
                + [f"{_number(r):.2%}" for r in v["robust"]]
                for c, v in self.class_accuracy.items()]
        return "\n".join([f"Robustness per class ({self.norm})"]
                         + reporting.columns(head, rows))

    def plot(self, path):
        """Draws accuracy against eps for each attack (cumulative) and the
        worst case, and saves it as a PNG at `path`.

        Example: `report.plot("robustness.png")`.
        """
        title = (f"{len(self.warnings)} gradient-masking warning(s)"
                 if self.warnings else None)
        with reporting.figure(path, xlabel=f"eps ({self.norm})",
                              ylabel="accuracy", title=title,
                              title_color="darkred") as ax:
            eps = [0.0] + [float(e) for e in self.eps]
            clean = [self.clean_accuracy]
            for name, curve in self.attack_accuracy_curve.items():
                ax.plot(eps, clean + list(curve), marker="o",
                        label=f"after {name}")
            ax.plot(eps, clean + list(self.robust_accuracy_curve), marker="s",
                    color="black", linewidth=2, label="robust (worst case)")
        return path


def _number(value):
    """A number of a plain dict (`metrics`, `class_accuracy`), where JSON
    wrote NaN as null, as a float."""
    return math.nan if value is None else float(value)
