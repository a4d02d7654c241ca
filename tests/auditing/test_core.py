"""keras_adv.audit on a small trained CNN: every section holds the numbers
of the function it calls, the report round-trips, and the page is one
self-contained file."""

import html.parser
import re

import numpy as np
import pytest

import keras_adv
from keras_adv.auditing import AuditReport
from tests.auditing.conftest import SUITE


def test_sections_hold_the_numbers_of_the_functions_they_call(report, model,
                                                              mnist5k):
    (x_train, y_train), (x, y) = mnist5k
    pred = model.predict(x[:60], verbose=0).argmax(-1)
    assert report.evasion.clean_accuracy == np.mean(pred == y[:60])
    alone = keras_adv.evaluate_robustness(model, x[:60], y[:60],
                                          eps=[0.05, 0.1], attacks=SUITE,
                                          seed=0, progress=False)
    assert report.evasion.robust_accuracy_curve == alone.robust_accuracy_curve
    certified = keras_adv.certification.evaluate_certified(
        model, x[:60], y[:60], sigma=0.25, n=200, seed=0)
    assert (report.certification.certified_accuracy_curve
            == certified.certified_accuracy_curve)
    scan = keras_adv.poisoning.scan_training_set(
        model, x_train[:600], y_train[:600], expected_fraction=0.1, seed=0)
    assert report.poisoning.methods == scan.methods
    assert report.summary["num_examples"] == 60
    assert report.summary["eps"] == [0.05, 0.1]
    assert report.summary["parameters"] == model.count_params()


def test_example_grid_rows_and_suspicious_rows(report):
    rows = report.examples
    assert 1 <= len(rows) <= 8
    for row in rows:
        assert len(row["adversarial"]) == 2 and 0 <= row["index"] < 60
    flagged = [set(m["flagged"]) for m in report.poisoning.methods.values()]
    assert set(report.suspicious) <= set().union(*flagged)
    assert len(report.suspicious) <= 16


def test_round_trip_and_table(report, tmp_path):
    again = AuditReport.from_json(report.to_json(tmp_path / "a.json"))
    assert again == report
    assert again.to_html() == report.to_html()
    text = report.table()
    assert "Audit of small_cnn" in text and "Certified accuracy" in text
    assert "Robustness per class" in text


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings, self.images, self.refs, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith(("data:", "#")):
                self.refs.append(attrs[key])


def test_page_is_self_contained_and_accessible(report, tmp_path):
    path = tmp_path / "report.html"
    text = report.to_html(path)
    assert path.read_text() == text
    page = _Page()
    page.feed(text)
    assert page.refs == [] and "script" not in page.tags
    assert "link" not in page.tags and "@import" not in text
    assert len(page.images) >= 4
    assert all(img["src"].startswith("data:image/png;base64,")
               and len(img.get("alt", "")) > 20 for img in page.images)
    # Headings in order: one h1, and no level skipped on the way down.
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(page.headings, page.headings[1:]))
    assert '<html lang="en">' in text and "prefers-color-scheme" in text
    assert "@media print" in text and 'scope="col"' in text


def test_without_sigma_or_training_data_the_sections_are_left_out(model,
                                                                  mnist5k):
    _, (x, y) = mnist5k
    r = keras_adv.audit(model, x[:20], y[:20], eps=0.1, seed=1,
                        attacks=SUITE[:1])
    assert r.certification is None and r.poisoning is None
    assert sorted(r.figures) == ["examples", "robustness"]
    text = r.to_html()
    assert "Certification" not in text and "Poisoning" not in text


def test_bad_input_is_the_called_functions_one_line_error(model, mnist5k):
    _, (x, y) = mnist5k
    with pytest.raises(ValueError, match="Received: eps=-0.1"):
        keras_adv.audit(model, x[:5], y[:5], eps=-0.1)
    with pytest.raises(ValueError, match="Received: sigma=0"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, sigma=0)
    with pytest.raises(ValueError, match="Received: x_train alone"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, x_train=x[:5])
