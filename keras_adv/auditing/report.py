"""`AuditReport`: the whole threat model of a model in one report, with its
figures, written as JSON (`to_json`) and as one self-contained web page
(`to_html`)."""

import dataclasses
import math
import os

from keras_adv import reporting
from keras_adv.certification.report import CertificationReport
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.poisoning.scan import PoisonScanReport

TEMPLATE = "page.html.j2"
# The headline's poisoning verdict: compared even when the baseline lacks it.
VERDICT = ("poisoned", "suspect_classes", "rows_to_remove")
# The summary entries that the table and the page print.
SUMMARY = ("name", "parameters", "input_shape", "source", "data",
           "train_data", "num_examples", "norm", "eps", "sigma", "seed",
           "versions", "command", "seconds")


@dataclasses.dataclass(eq=False)
class AuditReport(reporting.Report):
    """What `keras_adv.audit` found.

    Attributes:
        summary: the model (`name`, `parameters`, `input_shape`, `source`),
            the data (`data`, `num_examples`), the threat model (`norm`,
            `eps`, `sigma`), the versions, the `seed`, the `command` that
            reproduces the run and the wall time `seconds`.
        evasion: the `RobustnessReport` of the attack suite.
        examples: the example grid's rows: `{"index", "label", "clean",
            "adversarial": [prediction per eps]}`.
        certification: a `CertificationReport`, or None without `sigma`.
        poisoning: a `PoisonScanReport`, or None without training data.
        suspicious: training rows shown on the page: up to 16 of the rows
            the scan's verdict recommends removing (`poisoning.flagged()`),
            none when it finds no poisoning.
        figures: PNG figures as base64 text (`"robustness"`, `"examples"`,
            `"certified"`, `"suspicious"`), so that the JSON alone can
            write the page again.
        baseline: the `headline()` of an earlier audit (`--compare`), or
            None; one made before the poisoning verdict has none.

    Example:

    >>> report = keras_adv.audit(model, x, y, eps=[0.1])  # doctest: +SKIP
    >>> report.to_html("audit/report.html")  # doctest: +SKIP
    """

    summary: dict
    evasion: RobustnessReport
    examples: list[dict]
    certification: CertificationReport = None
    poisoning: PoisonScanReport = None
    suspicious: list[int] = dataclasses.field(default_factory=list)
    figures: dict[str, str] = dataclasses.field(default_factory=dict)
    baseline: dict = None

    def headline(self):
        """The numbers an audit is compared on: clean accuracy, robust
        accuracy per eps, certified accuracy per radius, the poisoning
        verdict (`poisoned`, `suspect_classes`, `rows_to_remove`; absent
        from a report made before the scan gave one) and the rows each
        detector flagged.

        Example: `report.headline()["robust_accuracy"]`.
        """
        ev = self.evasion
        out = {"clean_accuracy": ev.clean_accuracy,
               "robust_accuracy": {f"{e:g}": a for e, a in
                                   zip(ev.eps, ev.robust_accuracy_curve)},
               "warnings": len(ev.warnings)}
        if self.certification is not None:
            c = self.certification
            out["certified_accuracy"] = {
                f"{r:g}": a for r, a in zip(c.radii,
                                            c.certified_accuracy_curve)}
            out["abstain_rate"] = c.abstain_rate
        p = self.poisoning
        if p is not None:
            if p.classes:  # every scan with a verdict lists every class
                out["poisoned"] = bool(p.poisoned)
                out["suspect_classes"] = [int(c) for c in p.suspect_classes]
                out["rows_to_remove"] = len(p.flagged())
            out["flagged"] = {name: len(m["flagged"]) for name, m
                              in p.methods.items()}
        return out

    def comparison(self):
        """Rows `(measure, now, before, difference)` against `baseline`
        (an empty list without one): every measure of both headlines, and
        the poisoning verdict whenever this audit has one (`before` None
        when the earlier audit did not record it). `difference` is
        `now - before` for numbers, None otherwise.

        Example: `[row for row in report.comparison() if row[1] != row[2]]`.
        """
        if not self.baseline:
            return []
        rows = []
        for key, now, before in _pairs(self.headline(), self.baseline):
            numbers = all(isinstance(v, (int, float))
                          and not isinstance(v, bool) for v in (now, before))
            rows.append((key, now, before, now - before if numbers else None))
        return rows

    def to_dict(self):
        """A JSON-serialisable dict: every section, the figures and the
        baseline. Example: `json.dumps(report.to_dict())`."""
        return {
            "summary": reporting.plain(self.summary),
            "headline": reporting.plain(self.headline()),
            "evasion": self.evasion.to_dict(),
            "examples": reporting.plain(self.examples),
            "certification": (None if self.certification is None
                              else self.certification.to_dict()),
            "poisoning": (None if self.poisoning is None
                          else self.poisoning.to_dict()),
            "suspicious": reporting.plain(self.suspicious),
            "figures": dict(self.figures),
            "baseline": reporting.plain(self.baseline),
        }

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described: each section by its own
        report's `from_dict`, the summary checked for what the table and
        the page print.

        Raises:
            ValueError: a missing or mistyped field or summary entry, named
                in one line.

        Example: `AuditReport.from_json("audit/report.json")`.
        """
        fields = cls.read_fields(values)
        summary = dict(fields["summary"])
        missing = [k for k in SUMMARY if k not in summary]
        if missing:
            raise ValueError(
                f"AuditReport JSON must have a summary with {missing[0]!r}. "
                f"Received: summary with {reporting.shown(sorted(summary))}")
        if summary["seconds"] is None:
            summary["seconds"] = math.nan  # JSON's form of NaN
        fields["summary"] = summary
        return cls(**fields)

    def table(self):
        """The audit as plain text: the summary, then each section's table.

        Example: `print(report.table())`.
        """
        s = self.summary
        lines = [f"Audit of {s['name']} ({s['num_examples']} examples of "
                 f"{s['data']}, {s['norm']}, eps "
                 f"{', '.join(f'{e:g}' for e in s['eps'])}, "
                 f"{s['seconds']:.1f} s)", "", self.evasion.table(), "",
                 self.evasion.class_table()]
        if self.certification is not None:
            lines += ["", self.certification.table()]
        if self.poisoning is not None:
            lines += ["", self.poisoning.table()]
        for key, now, before, diff in self.comparison():
            if diff is not None:
                lines.append(f"{key}: {now:.4g} (before {before:.4g}, "
                             f"{diff:+.4g})")
            elif key in VERDICT:
                change = "unchanged" if now == before else "CHANGED"
                lines.append(f"{key}: {shown(now)} (before {shown(before)}, "
                             f"{change})")
        return "\n".join(lines)

    def to_html(self, path=None):
        """The audit as one self-contained HTML page (figures inline, no
        script, no outside reference), from a Jinja2 template; written to
        `path` atomically when given. Returns the HTML text.

        Example: `report.to_html("audit/report.html")`.
        """
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(os.path.dirname(__file__)),
            autoescape=True, trim_blocks=True, lstrip_blocks=True,
            undefined=jinja2.StrictUndefined)
        env.globals["zip"] = zip
        env.filters["shown"] = shown
        poison = self.poisoning
        html = env.get_template(TEMPLATE).render(
            r=self, s=self.summary, ev=self.evasion,
            cert=self.certification, poison=poison,
            headline=self.headline(), comparison=self.comparison(),
            advice=advice(self.evasion),
            verdict=None if poison is None else verdict(poison),
            verdict_change=_verdict_change(self.headline(), self.baseline))
        if path is not None:
            reporting.write_text(path, html)
        return html


def _pairs(now, before, prefix=""):
    """`(key, now, before)` for every measure present in both headlines,
    and for the verdict's keys of `now` (`before` None when missing)."""
    for key, value in now.items():
        if key not in before and key not in VERDICT:
            continue
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            yield from _pairs(value, old, f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", value, old


def shown(value):
    """A headline value as the table and the page print it: numbers to 4
    significant digits, `yes`/`no`, a list joined (`none` when empty),
    `not recorded` for None.

    Example: `shown([0, 3])` is `"0, 3"`; `shown(True)` is `"yes"`.
    """
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def verdict(poison):
    """The poisoning scan's answer in one sentence, the first line of the
    page's poisoning card: `Poisoned: class 0 (~250 rows, estimated share
    0.33)`, `No evidence of poisoning at alpha 0.05`, or, for a report
    made before the scan gave a verdict, that there is none.

    Example: `verdict(report.poisoning)`.
    """
    if not poison.classes:
        return ("No verdict: this report predates the scan's verdict; "
                "only the detectors' rows are below")
    if not poison.poisoned:
        return f"No evidence of poisoning at alpha {poison.alpha:g}"
    parts = []
    for c in poison.suspect_classes:
        entry = poison.classes[str(c)]
        parts.append(f"{c} (~{len(entry['flagged'])} rows, estimated share "
                     f"{entry['estimated_fraction']:.2f})")
    word = "class" if len(parts) == 1 else "classes"
    return f"Poisoned: {word} {', '.join(parts)}"


def _verdict_change(headline, baseline):
    """`the earlier audit found ...` when the baseline recorded a verdict
    other than this audit's (poisoned or not, or other suspect classes),
    else None."""
    if not baseline or baseline.get("poisoned") is None or (
            "poisoned" not in headline):
        return None
    before = (bool(baseline["poisoned"]),
              list(baseline.get("suspect_classes") or []))
    if before == (headline["poisoned"], headline["suspect_classes"]):
        return None
    if not before[0]:
        return "no evidence of poisoning"
    word = "class" if len(before[1]) == 1 else "classes"
    return f"poisoned: {word} {shown(before[1])}"


ADVICE = {
    "gradients": "Attack with the score-based Square attack (in the "
                 "standard suite) and do not trust gradient attacks alone.",
    "randomness": "Evaluate again with eot_samples (EOT) so that each "
                  "gradient averages the model's randomness.",
    "single_step": "Iterative attacks are being misled: raise their steps "
                   "and restarts, and add the black-box Square attack.",
    "black_box": "Gradients mislead the white-box attacks: trust the "
                 "black-box figure and look for masking in the model.",
    "eps_growth": "Accuracy should fall toward zero at large eps; check "
                  "the attacks reach it before trusting the curve.",
    "invalid": "An attack left the eps-ball or the box: report it; the "
               "figures exclude those points.",
    "non_finite": "The model gives NaN or infinite outputs; fix the model "
                  "before reading the robustness figures.",
}


def advice(evasion):
    """`(check, message, what to do)` for each masking warning.

    Example: `advice(report.evasion)`.
    """
    return [(w.check, w.message, ADVICE.get(w.check, ""))
            for w in evasion.warnings]
