"""`AuditReport`: the whole threat model of a model in one report, with its
figures, written as JSON (`to_json`) and as one self-contained web page
(`to_html`)."""

import dataclasses
import os

from keras_adv import reporting
from keras_adv.certification.report import CertificationReport
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.poisoning.scan import PoisonScanReport

TEMPLATE = "page.html.j2"


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
        suspicious: training rows shown as the most suspicious.
        figures: PNG figures as base64 text (`"robustness"`, `"examples"`,
            `"certified"`, `"suspicious"`), so that the JSON alone can
            write the page again.
        baseline: headline numbers of an earlier audit (`--compare`), or
            None.

    Example:

    >>> report = keras_adv.audit(model, x, y, eps=[0.1])  # doctest: +SKIP
    >>> report.to_html("audit/report.html")  # doctest: +SKIP
    """

    summary: dict
    evasion: RobustnessReport
    examples: list
    certification: CertificationReport = None
    poisoning: PoisonScanReport = None
    suspicious: list = dataclasses.field(default_factory=list)
    figures: dict = dataclasses.field(default_factory=dict)
    baseline: dict = None

    def headline(self):
        """The numbers an audit is compared on: clean accuracy, robust
        accuracy per eps, certified accuracy per radius, flagged rows.

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
        if self.poisoning is not None:
            out["flagged"] = {name: len(m["flagged"]) for name, m
                              in self.poisoning.methods.items()}
        return out

    def comparison(self):
        """Rows `(measure, now, before, difference)` against `baseline`
        (an empty list without one). Example: `report.comparison()`."""
        if not self.baseline:
            return []
        rows = []
        for key, now, before in _pairs(self.headline(), self.baseline):
            diff = (now - before) if isinstance(now, (int, float)) and \
                isinstance(before, (int, float)) else None
            rows.append((key, now, before, diff))
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
        """The report that `to_dict` described. Example:
        `AuditReport.from_json("audit/report.json")`."""
        cert, poison = values.get("certification"), values.get("poisoning")
        return cls(
            summary=values["summary"],
            evasion=RobustnessReport.from_dict(values["evasion"]),
            examples=values["examples"],
            certification=(None if cert is None
                           else CertificationReport.from_dict(cert)),
            poisoning=None if poison is None else PoisonScanReport.from_dict(
                poison),
            suspicious=values.get("suspicious", []),
            figures=values.get("figures", {}),
            baseline=values.get("baseline"))

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
        html = env.get_template(TEMPLATE).render(
            r=self, s=self.summary, ev=self.evasion,
            cert=self.certification, poison=self.poisoning,
            headline=self.headline(), comparison=self.comparison(),
            advice=advice(self.evasion))
        if path is not None:
            reporting.write_text(path, html)
        return html


def _pairs(now, before, prefix=""):
    """`(key, now, before)` for every number present in both headlines."""
    for key, value in now.items():
        if key not in before:
            continue
        if isinstance(value, dict) and isinstance(before[key], dict):
            yield from _pairs(value, before[key], f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", value, before[key]


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
