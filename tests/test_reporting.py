"""The report protocol: every report round-trips through JSON to an equal
report, prints its table, and plots where it has a figure."""

import json
import math
import os
import tempfile

import numpy as np
import pytest

from keras_adv import reporting
from keras_adv.auditing import AuditReport
from keras_adv.certification import Certificate, CertificationReport
from keras_adv.evaluation import MaskingWarning, RobustnessReport
from keras_adv.poisoning import PoisoningReport, PoisonScanReport


def _robustness():
    return RobustnessReport(
        eps=(0.1, 0.2), norm="linf", attacks=("fgsm", "pgd"),
        num_examples=30, clean_accuracy=0.9,
        robust_accuracy_curve=(0.5, np.float32(0.25)),
        attack_accuracy_curve={"fgsm": (0.6, 0.4), "pgd": (0.5, 0.25)},
        timings={"fgsm": 1.5, "pgd": 2.0}, seconds=4.0,
        warnings=[MaskingWarning("single_step", "FGSM beats PGD")],
        diagnostics={"fgsm_accuracy": (np.float64(0.6), 0.4),
                     "gradient": {"zero": np.int64(0), "nan": math.nan}},
        metrics={"loss_sensitivity": 0.125}, scalar_eps=False,
        class_accuracy={"0": {"examples": 20, "clean": 0.95,
                              "robust": [0.5, 0.25]},
                        "1": {"examples": 10, "clean": 0.8,
                              "robust": [0.5, 0.25]}})


def _certification():
    cert = Certificate(np.array([0, 1, -1]), np.array([0.3, 0.1, 0.0]),
                       np.array([[90, 10], [5, 95], [50, 50]], np.int64))
    return CertificationReport.from_certificate(
        cert, [0, 1, 1], sigma=0.25, n0=10, n=100, alpha=0.001,
        radii=(0.0, 0.2), seconds=0.0)


SUMMARY = {"name": "m", "parameters": 10, "input_shape": [6], "source": "x",
           "data": "arrays", "train_data": None, "num_examples": 30,
           "norm": "linf", "eps": [0.1, 0.2], "sigma": 0.25, "seed": 0,
           "versions": {"keras_adv": "0", "tensorflow": "0", "keras": "0"},
           "command": "audit", "seconds": 1.5}


def _audit():
    return AuditReport(
        summary=dict(SUMMARY), evasion=_robustness(),
        examples=[{"index": 3, "label": 1, "clean": 1,
                   "adversarial": [1, 0]}],
        certification=_certification(), poisoning=REPORTS["poison_scan"](),
        suspicious=[1, 4], figures={"robustness": "iVBORw0KGgo="})


REPORTS = {
    "audit": _audit,
    "robustness": _robustness,
    "certification": _certification,
    "poisoning": lambda: PoisoningReport(
        target=0, trigger="patch", num_examples=100, clean_accuracy=0.95,
        attack_success_rate=np.float64(0.99), triggered_accuracy=0.01,
        seconds=1.0),
    "poison_scan": lambda: PoisonScanReport(
        num_examples=6, expected_fraction=0.5, layer=None,
        methods={"spectral_signature": {"flagged": [1, 4],
                                        "per_class": {"0": [1], "1": [4]}}},
        seconds=0.5),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_round_trip_through_json_text_and_file(name, tmp_path):
    report = REPORTS[name]()
    cls = type(report)
    assert isinstance(report, reporting.Report)
    text = report.to_json()
    json.loads(text)  # strict JSON: no NaN
    assert "NaN" not in text
    again = cls.from_json(text)
    assert again == report and again.to_dict() == report.to_dict()
    path = tmp_path / "r.json"
    assert report.to_json(path) == text
    assert cls.from_json(path) == report == cls.from_json(str(path))
    assert cls.from_dict(report.to_dict()) == report
    assert str(again) == report.table() and report.table().strip()


def test_details_survive_the_round_trip():
    r = RobustnessReport.from_json(_robustness().to_json())
    assert r.robust_accuracy == [0.5, 0.25] and r.scalar_eps is False
    assert r.warnings == [MaskingWarning("single_step", "FGSM beats PGD")]
    c = CertificationReport.from_json(_certification().to_json())
    assert c.certificate.counts.dtype == np.int64
    assert c.certificate.counts.tolist() == [[90, 10], [5, 95], [50, 50]]
    assert c.labels.tolist() == [0, 1, 1]
    assert math.isnan(c.samples_per_second)
    assert c.certified_accuracy_curve == (2 / 3, 1 / 3)


def test_different_reports_are_not_equal():
    a, b = _robustness(), _robustness()
    b.clean_accuracy = 0.8
    assert a != b and a != "a report"
    assert REPORTS["poisoning"]() != REPORTS["poison_scan"]()


@pytest.mark.parametrize("name", ["robustness", "certification"])
def test_plot_writes_a_png(name, tmp_path):
    path = tmp_path / "p.png"
    assert REPORTS[name]().plot(path) == path
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("bad,needle", [
    ("not json at all {", "readable JSON file"),
    ("{not json", "must hold JSON"),
    ('{"target": 0}', "must have the field 'trigger' (a string)"),
    ("[1, 2]", "PoisoningReport JSON must be an object"),
    ("", "Received: text, empty"),
    ('{"target": 0, "trigger": "patch", "num_examples": 5, '
     '"clean_accuracy": "high", "attack_success_rate": 0.5, '
     '"triggered_accuracy": 0.5, "seconds": 1}',
     "'clean_accuracy' as a number or null for NaN. Received: "
     "clean_accuracy='high'"),
    ('{"target": 0.5, "trigger": "patch", "num_examples": 5, '
     '"clean_accuracy": 1, "attack_success_rate": 0.5, '
     '"triggered_accuracy": 0.5, "seconds": 1}',
     "'target' as an integer. Received: target=0.5"),
])
def test_bad_json_is_one_clear_error(bad, needle):
    with pytest.raises(ValueError, match=None) as info:
        PoisoningReport.from_json(bad)
    assert needle in str(info.value) and "\n" not in str(info.value)


def _without(values, key):
    return {k: v for k, v in values.items() if k != key}


def _with(values, key, value):
    return {**values, key: value}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_names_the_missing_or_mistyped_field(name, tmp_path):
    report = REPORTS[name]()
    cls, values = type(report), report.to_dict()
    for bad, needle in [
            ({}, f"{cls.__name__} JSON must have the field"),
            ([], f"{cls.__name__} JSON must be an object. Received: []"),
            (_without(values, next(iter(values))),
             f"must have the field {next(iter(values))!r}")]:
        with pytest.raises(ValueError, match=None) as info:
            cls.from_dict(bad)
        assert needle in str(info.value).replace(" (a dict of its fields)",
                                                 "")
        assert "Received" in str(info.value)
        assert "\n" not in str(info.value)
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "page.html").write_text("<html></html>")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    for path, needle in [("empty.json", "empty"),
                         ("page.html", "does not parse"),
                         ("image.png", "readable JSON file")]:
        with pytest.raises(ValueError, match=path.replace(".", r"\.")):
            cls.from_json(tmp_path / path)
        with pytest.raises(ValueError, match=needle):
            cls.from_json(tmp_path / path)


# A field of the wrong type in each report: (report, JSON key, bad value).
MISTYPED = [
    ("robustness", "clean_accuracy", "0.9"),
    ("robustness", "robust_accuracy", 0.5),
    ("robustness", "attack_accuracy", {"pgd": ["a"]}),
    ("robustness", "num_examples", 2.5),
    ("robustness", "scalar_eps", "no"),
    ("robustness", "warnings", [{"check": "x"}]),
    ("certification", "certified_accuracy", "0.5"),
    ("certification", "n", "100"),
    ("certification", "certificate", {"prediction": [0]}),
    ("certification", "labels", ["a", "b"]),
    ("poisoning", "trigger", 3),
    ("poison_scan", "methods", [1]),
    ("audit", "evasion", {"eps": [0.1]}),
    ("audit", "suspicious", "1, 4"),
    ("audit", "summary", {"name": "m"}),
]


@pytest.mark.parametrize("name,key,value", MISTYPED)
def test_a_mistyped_field_is_refused_by_name(name, key, value):
    report = REPORTS[name]()
    with pytest.raises(ValueError, match=None) as info:
        type(report).from_json(json.dumps(_with(report.to_dict(), key,
                                                value)))
    message = str(info.value)
    assert type(report).__name__ in message and key in message
    assert "Received" in message and "\n" not in message


def _with_nan(name):
    """The report with NaN in its numbers: accuracies of no examples, an
    unknown time."""
    r = REPORTS[name]()
    nan = math.nan
    if name == "audit":
        r.evasion.clean_accuracy = nan
        r.certification.abstain_rate = nan
        r.summary["seconds"] = nan
    elif name == "robustness":
        r.clean_accuracy, r.seconds = nan, nan
        r.robust_accuracy_curve = (nan, 0.25)
        r.attack_accuracy_curve["pgd"] = (nan, 0.25)
        r.metrics = {"loss_sensitivity": nan,
                     "empirical_robustness": {"median": nan, "mean": 1.0}}
        r.class_accuracy["1"]["robust"] = [nan, 0.25]
    elif name == "certification":
        r.abstain_rate = nan
        r.certified_accuracy_curve = (nan, 1 / 3)
        r.certificate = r.certificate._replace(
            radius=np.array([0.3, nan, 0.0]))
    elif name == "poisoning":
        r.clean_accuracy = r.triggered_accuracy = nan
    else:
        r.seconds = nan
    return r


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_nan_survives_the_round_trip_and_prints(name):
    report = _with_nan(name)
    text = report.to_json()
    json.loads(text)  # strict JSON: NaN is null
    assert "NaN" not in text and "null" in text
    again = type(report).from_json(text)
    assert again == report and again.to_json() == text
    assert "nan" in again.table() and again.table() == report.table()
    assert report != REPORTS[name]()  # NaN is not any number


def test_infinity_reads_back_as_nan():
    """JSON has no infinity: to_json writes it as null, like NaN, and null
    reads back as NaN (the same JSON, so the reports are equal)."""
    report = REPORTS["poisoning"]()
    report.seconds = math.inf
    again = PoisoningReport.from_json(report.to_json())
    assert math.isnan(again.seconds) and again == report


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"

    class Broken(reporting.Report):
        def to_dict(self):
            return {"x": object()}  # not JSON

    with pytest.raises(TypeError):
        Broken().to_json(path)
    assert list(tmp_path.iterdir()) == []


def test_write_text_writes_str_as_utf8_and_bytes_as_they_are(tmp_path):
    reporting.write_text(tmp_path / "a.txt", "σ = 0.25\n")
    assert (tmp_path / "a.txt").read_bytes() == "σ = 0.25\n".encode()
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    reporting.write_text(tmp_path / "a.png", png)
    assert (tmp_path / "a.png").read_bytes() == png
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.txt"]


def test_read_field_reads_one_nested_field_by_its_annotation():
    assert reporting.read_field("R", "counts", list[list[int]],
                                [[1, 2], [3, 4]]) == [[1, 2], [3, 4]]
    radius = reporting.read_field("R", "radius", list[float], [0.5, None])
    assert radius[0] == 0.5 and math.isnan(radius[1])
    with pytest.raises(ValueError, match=r"^R JSON must have the field "
                       r"'labels' as a list of integers\. Received: "
                       r"labels=\[0, 1\.5\]$"):
        reporting.read_field("R", "labels", list[int], [0, 1.5])


def test_examples_run():
    from tests.conftest import run_examples

    run_examples("keras_adv.reporting")


# The calls of the catalogue (tests/test_bad_input.py, [reports]).

def read_back(name, text=None, **changes):
    """`from_json` of report `name`'s class: on `text`, or on the report's
    JSON with the fields `changes` replaced."""
    report = REPORTS[name]()
    if text is None:
        text = json.dumps({**report.to_dict(), **changes})
    return type(report).from_json(text)


def read_file(name, content):
    """`from_json` of report `name`'s class on a file holding `content`
    (text or bytes)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "report.json")
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return type(REPORTS[name]()).from_json(path)


def read_nan(name):
    """Report `name` holding NaN, read back from its JSON."""
    report = _with_nan(name)
    return type(report).from_json(report.to_json())


def nan_check(name):
    """A check that a report read back is `_with_nan(name)`, NaN printed."""
    def check(report):
        assert report == _with_nan(name) and "nan" in report.table()
        assert report.to_json() == _with_nan(name).to_json()
    return check
