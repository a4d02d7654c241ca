"""The report protocol: every report round-trips through JSON to an equal
report, prints its table, and plots where it has a figure."""

import json
import math

import numpy as np
import pytest

from keras_adv import reporting
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


REPORTS = {
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
    ('{"target": 0}', "without trigger, num_examples"),
    ("[1, 2]", "values must be a dict"),
])
def test_bad_json_is_one_clear_error(bad, needle):
    with pytest.raises(ValueError, match=None) as info:
        PoisoningReport.from_json(bad)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"

    class Broken(reporting.Report):
        def to_dict(self):
            return {"x": object()}  # not JSON

    with pytest.raises(TypeError):
        Broken().to_json(path)
    assert list(tmp_path.iterdir()) == []
