"""Certified accuracy and the certification report."""

import json

import numpy as np
import pytest

from keras_adv import certification
from keras_adv.certification import Certificate, certified_accuracy
from tests.certification.test_certify import SIGMA, hyperplane_model, points_at

CERT = Certificate(
    prediction=np.array([0, 1, -1, 2, 1]),
    radius=np.array([0.3, 0.1, 0.0, 0.75, 0.5]),
    counts=np.zeros((5, 3), np.int64),
)
Y = np.array([0, 1, 1, 2, 0])


def test_certified_accuracy_exact():
    got = certified_accuracy(CERT, Y, radii=[0.0, 0.1, 0.2, 0.3, 0.75, 0.8])
    assert got == pytest.approx([0.6, 0.6, 0.4, 0.4, 0.2, 0.0])
    assert certified_accuracy(CERT, Y[:, None], radii=0.25) == pytest.approx(0.4)


@pytest.mark.parametrize("radii,needle", [
    ([-0.1], "radii"), ([float("nan")], "radii"), ([], "radii"),
    (["a"], "radii"),
])
def test_bad_radii(radii, needle):
    with pytest.raises(ValueError, match=f"Received: {needle}="):
        certified_accuracy(CERT, Y, radii=radii)


def test_bad_labels_and_certificate():
    with pytest.raises(ValueError, match="one label per example"):
        certified_accuracy(CERT, Y[:3], radii=[0.0])
    with pytest.raises(ValueError, match="integer class indices"):
        certified_accuracy(CERT, Y + 0.5, radii=[0.0])
    with pytest.raises(ValueError, match="Received: certificate="):
        certified_accuracy(tuple(CERT), Y, radii=[0.0])


def test_report_from_certificate_and_outputs(tmp_path):
    report = certification.CertificationReport.from_certificate(
        CERT, Y, sigma=0.25, n0=100, n=1000, alpha=0.001, radii=[0, 0.5],
        seconds=2.0)
    assert report.certified_accuracy_curve == pytest.approx((0.6, 0.2))
    assert report.abstain_rate == pytest.approx(0.2)
    assert report.samples_per_second == pytest.approx(5 * 1100 / 2.0)
    text = report.table()
    assert "sigma=0.25" in text and "60.00%" in text and "20.00%" in text
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert data["certified_accuracy"] == pytest.approx([0.6, 0.2])
    assert json.loads((tmp_path / "r.json").read_text()) == data
    path = report.plot(str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG" and path


def test_evaluate_certified_on_the_hyperplane():
    model, u, b = hyperplane_model()
    signed = np.array([0.5, -1.0, 0.0, 2.0]) * SIGMA
    x = points_at(u, b, signed)
    y = (signed < 0).astype(int)
    report = certification.evaluate_certified(
        model, x, y, sigma=SIGMA, radii=[0.0, 0.4 * SIGMA, 0.9 * SIGMA],
        n=20_000, seed=0)
    # The hyperplane point abstains; the others are certified near their
    # distance.
    assert report.certified_accuracy_curve == pytest.approx((0.75, 0.75, 0.5))
    assert report.abstain_rate == pytest.approx(0.25)
    assert report.num_examples == 4 and report.samples_per_second > 0
    with pytest.raises(ValueError, match="one label per example"):
        certification.evaluate_certified(model, x, y[:2], sigma=SIGMA)


def _report():
    return certification.CertificationReport.from_certificate(
        CERT, Y, sigma=0.25, n0=100, n=1000, alpha=0.001, radii=[0, 0.5],
        seconds=0.0)


@pytest.mark.parametrize("certificate,needle", [
    ({"prediction": [0, 1], "radius": [0.1]},
     "an object with 'prediction', 'radius' and 'counts'"),
    ({"prediction": [0, 1], "radius": [0.1], "counts": [[1, 2], [3, 4]]},
     "Received: 2 predictions, 1 radii and 2 rows of counts"),
    ({"prediction": [0.5], "radius": [0.1], "counts": [[1, 2]]},
     "'certificate.prediction' as a list of integers"),
    ({"prediction": [0], "radius": ["far"], "counts": [[1, 2]]},
     "'certificate.radius' as a list of numbers"),
    ({"prediction": [0, 1], "radius": [0.1, 0.2], "counts": [[1, 2], [3]]},
     "'certificate.counts' with rows of one width. Received: rows of "
     "widths [1, 2]"),
    ("certificate", "Received: certificate='certificate'"),
])
def test_a_bad_certificate_in_the_json_is_named(certificate, needle):
    values = {**_report().to_dict(), "certificate": certificate}
    with pytest.raises(ValueError, match=None) as info:
        certification.CertificationReport.from_json(json.dumps(values))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unknown_rate_and_nan_radii_read_back_as_nan():
    """seconds=0 makes the rate unknown (NaN), a NaN radius is kept: both
    are null in the JSON and NaN again after reading it."""
    report = _report()
    report.certificate = report.certificate._replace(
        radius=np.array([0.3, np.nan, 0.0, 0.75, 0.5]))
    text = report.to_json()
    assert json.loads(text)["samples_per_second"] is None
    again = certification.CertificationReport.from_json(text)
    assert np.isnan(again.samples_per_second) and again == report
    assert np.isnan(again.certificate.radius[1])
    assert again.certificate.prediction.dtype == np.int64


def test_evaluate_certified_progress(capsys):
    model, u, b = hyperplane_model()
    x = points_at(u, b, [1.0, -1.0])
    kwargs = dict(sigma=SIGMA, n0=10, n=50, seed=0)
    certification.evaluate_certified(model, x, [0, 1], progress=False,
                                     **kwargs)
    assert capsys.readouterr().err == ""
    certification.evaluate_certified(model, x, [0, 1], progress=True,
                                     **kwargs)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "certify: selecting classes from 10 noise samples of 2 examples",
        "certify: counting 50 noise samples of 2 examples"]
