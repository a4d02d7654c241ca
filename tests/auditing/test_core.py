"""keras_adv.audit on a small trained CNN: every section holds the numbers
of the function it calls, the report round-trips, and the page is one
self-contained file."""

import dataclasses
import html
import html.parser
import json
import re
import sys

import numpy as np
import pytest

import keras_adv
from keras_adv.auditing import AuditReport, core
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
        model, x_train[:600], y_train[:600], seed=0)
    assert report.poisoning.methods == scan.methods
    assert report.poisoning.classes == scan.classes
    assert (report.poisoning.poisoned, report.poisoning.alpha,
            report.poisoning.expected_fraction) == (scan.poisoned, 0.05, None)
    assert report.summary["num_examples"] == 60
    assert report.summary["eps"] == [0.05, 0.1]
    assert report.summary["parameters"] == model.count_params()
    # `describe` names the run; what it leaves out keeps the defaults.
    assert (report.summary["data"], report.summary["source"],
            report.summary["train_data"], report.summary["command"]) == (
        "mnist5k:test", "model.keras", None,
        "keras_adv.audit(...) from Python")


def test_a_progress_callable_hears_every_stage(model, mnist5k):
    (x_train, y_train), (x, y) = mnist5k
    stages = []
    keras_adv.audit(model, x[:8], y[:8], eps=0.05, attacks=["fgsm"],
                    seed=0, progress=stages.append)
    assert stages[0].startswith("attacks on 8 examples at eps 0.05")
    assert stages[1:] == ["the example grid"]


def test_example_grid_rows_and_suspicious_rows(report):
    rows = report.examples
    assert 1 <= len(rows) <= 8
    for row in rows:
        assert len(row["adversarial"]) == 2 and 0 <= row["index"] < 60
    # The rows shown are the verdict's rows to remove, none when clean.
    poison = report.poisoning
    assert set(report.suspicious) <= set(poison.flagged())
    assert len(report.suspicious) == min(16, len(poison.flagged()))
    assert ("suspicious" in report.figures) == poison.poisoned


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
    assert len(page.images) == 3 + ("suspicious" in report.figures)
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


def test_bad_arguments_are_refused_before_any_work(model, mnist5k):
    _, (x, y) = mnist5k
    stages = []
    for kwargs, match in [
            ({"num_examples": -1}, r"Received: num_examples=-1"),
            ({"num_examples": 0}, r"Received: num_examples=0"),
            ({"num_examples": 2.5}, r"Received: num_examples=2\.5"),
            ({"num_examples": True}, r"Received: num_examples=True")]:
        with pytest.raises(ValueError, match=match) as info:
            keras_adv.audit(model, x[:5], y[:5], eps=0.1,
                            progress=stages.append, **kwargs)
        assert "positive" in str(info.value) or "> 0" in str(info.value)
    with pytest.raises(ValueError, match=r"labels of x.* Received: y=None"):
        keras_adv.audit(model, x[:5], None, eps=0.1, progress=stages.append)
    with pytest.raises(ValueError, match=r"Received: y of length 4"):
        keras_adv.audit(model, x[:5], y[:4], eps=0.1, progress=stages.append)
    assert stages == []


@pytest.mark.parametrize("module", ["jinja2", "matplotlib", "sklearn"])
def test_missing_page_modules_are_named_before_any_work(module, model,
                                                        mnist5k, monkeypatch):
    (x_train, y_train), (x, y) = mnist5k
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    stages = []
    extra = "poisoning" if module == "sklearn" else "audit"
    with pytest.raises(ModuleNotFoundError,
                       match=rf"pip install 'keras_adv\[{extra}\]'\. "
                       rf"Received: {module} not installed"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, x_train=x_train[:50],
                        y_train=y_train[:50], progress=stages.append)
    assert stages == []
    if module == "sklearn":  # needed by the poisoning scan only
        with pytest.raises(ValueError, match="Received: eps=-1"):
            keras_adv.audit(model, x[:5], y[:5], eps=-1)


def test_one_hot_labels_name_the_true_classes(model, mnist5k, monkeypatch):
    """One-hot y and y_train are made sparse once: the example grid's rows
    and the suspicious images' titles name the true classes, and the
    evasion counts the same correct examples as sparse labels."""
    (x_train, y_train), (x, y) = mnist5k
    titles = []
    grid_png = core._grid_png
    monkeypatch.setattr(core, "_grid_png", lambda images, t: (
        titles.append(list(t)), grid_png(images, t))[1])
    # 100 rows are too few for a verdict (the scan abstains on every class):
    # the rows shown are set here, so that their titles are drawn.
    monkeypatch.setattr(core, "_suspicious", lambda poison: [0, 5, 17])
    report = keras_adv.audit(model, x[:16], np.eye(10)[y[:16]], eps=[0.1],
                             seed=0, attacks=SUITE[:1], num_examples=12,
                             x_train=x_train[:100],
                             y_train=np.eye(10)[y_train[:100]])
    rows = report.examples
    assert rows and [r["label"] for r in rows] == [int(y[r["index"]])
                                                   for r in rows]
    pred = model.predict(x[:12], verbose=0).argmax(-1)
    assert report.evasion.num_examples == 12
    assert report.evasion.clean_accuracy == np.mean(pred == y[:12])
    assert report.suspicious == [0, 5, 17] and titles == [
        [f"row {i}, label {int(y_train[i])}" for i in report.suspicious]]


def refused_audit(hide=None, **kwargs):
    """`keras_adv.audit` of a tiny linear model on 4 examples with
    `kwargs` (the catalogue's calls, tests/test_bad_input.py [audit]);
    `hide` names a module made unimportable for the call."""
    from tests.conftest import linear_model

    x = np.full((4, 6), 0.5, "float32")
    args = {"y": np.arange(4), "eps": 0.1, **kwargs}
    saved = sys.modules.get(hide, False) if hide else False
    if hide:
        sys.modules[hide] = None
    try:
        return keras_adv.audit(linear_model()[0], x, args.pop("y"), **args)
    finally:
        if hide and saved is False:
            del sys.modules[hide]
        elif hide:
            sys.modules[hide] = saved


def scan_report(poisoned, *, expected_fraction=None, alpha=0.05):
    """A `PoisonScanReport` made by hand (no training): class 0 of 750 rows
    poisoned (250 rows flagged, estimated share 0.33) or clean, class 1
    too small to test, class 2 clean."""
    from keras_adv.poisoning import PoisonScanReport

    def entry(rows, statistic, p_value, suspect=False, flagged=()):
        return {"rows": rows, "statistic": statistic, "p_value": p_value,
                "suspect": suspect,
                "estimated_fraction": 1 / 3 if suspect else None,
                "flagged": list(flagged), "abstained": None}

    classes = {"0": entry(750, 4.2, 1e-12, True, range(500, 750))
               if poisoned else entry(750, 1.31, 0.62),
               "1": dict(entry(30, None, None),
                         abstained="30 rows, fewer than the 50 the test "
                         "needs"),
               "2": entry(200, 1.17, 0.91)}
    spectral = list(range(600, 750)) + [760]
    methods = {"spectral_signature": {
        "flagged": spectral, "per_class": {"0": spectral[:-1], "1": [],
                                           "2": [760]}}}
    return PoisonScanReport(
        num_examples=980, expected_fraction=expected_fraction, layer=None,
        methods=methods, seconds=0.5, alpha=alpha, poisoned=poisoned,
        suspect_classes=[0] if poisoned else [], classes=classes)


def _with_scan(report, poison):
    """`report` with the poisoning scan `poison` and the rows and figure the
    audit would show for it."""
    suspicious = core._suspicious(poison)
    figures = {k: v for k, v in report.figures.items() if k != "suspicious"}
    if suspicious:
        figures["suspicious"] = report.figures["robustness"]
    return dataclasses.replace(report, poisoning=poison,
                               suspicious=suspicious, figures=figures,
                               baseline=None)


def _poisoning_card(page):
    """The text of the page's poisoning section, tags removed."""
    card = page[page.index('<h2 id="poisoning">'):]
    card = card[:card.index("</section>")]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", card)).split())
    return re.sub(r" ([.,:;)])", r"\1", text)


def test_poisoning_card_leads_with_the_verdict_when_poisoned(report):
    r = _with_scan(report, scan_report(True))
    assert r.suspicious == list(range(500, 516))
    card = _poisoning_card(r.to_html())
    # The verdict first, then the test per class, the detectors after.
    assert card.startswith(
        "Poisoning Poisoned: class 0 (~250 rows, estimated share 0.33). "
        "16 of the 250 rows the verdict recommends removing are shown below.")
    assert "0 (suspect) 750 4.20 1e-12 250" in card
    assert "1 30 not tested: 30 rows, fewer than the 50 the test needs" in card
    assert "2 200 1.17 0.91 The detectors' own rows" in card  # none here
    assert card.index("The test per class") < card.index("secondary")
    assert "1.5 × the estimated poisoned share of each suspect class" in card
    assert "None" not in card
    headline = r.headline()
    assert (headline["poisoned"], headline["suspect_classes"],
            headline["rows_to_remove"]) == (True, [0], 250)
    assert "POISONED: classes 0 at alpha=0.05, 250 rows to remove" in (
        r.table())


def test_poisoning_card_leads_with_the_verdict_when_clean(report):
    r = _with_scan(report, scan_report(False, expected_fraction=0.1))
    assert r.suspicious == [] and "suspicious" not in r.figures
    page = r.to_html()
    card = _poisoning_card(page)
    assert card.startswith(
        "Poisoning No evidence of poisoning at alpha 0.05: no training rows "
        "are suspicious, and none are shown.")
    assert "0 750 1.31 0.62 1 30" in card and "1.5 × 0.1 of every class" in card
    assert "poisoning at alpha 0.05 no evidence" in " ".join(
        re.sub(r"<[^>]+>", " ", page).split())
    assert r.headline()["rows_to_remove"] == 0
    assert "data:image/png" not in page[page.index('<h2 id="poisoning">'):]


def test_suspicious_rows_come_from_each_suspect_class_in_turn():
    poison = scan_report(True)
    poison.classes["2"].update(suspect=True, flagged=[900, 901])
    poison.suspect_classes = [0, 2]
    assert core._suspicious(poison)[:5] == [500, 900, 501, 901, 502]
    assert len(core._suspicious(poison)) == 16
    assert core._suspicious(scan_report(False)) == []


def test_compare_shows_a_change_of_verdict(report):
    before = _with_scan(report, scan_report(True))
    now = _with_scan(report, scan_report(False))
    now.baseline = AuditReport.from_json(before.to_json()).headline()
    rows = {key: (a, b, d) for key, a, b, d in now.comparison()}
    assert rows["poisoned"] == (False, True, None)
    assert rows["suspect_classes"] == ([], [0], None)
    assert rows["rows_to_remove"] == (0, 250, -250)
    text = now.table()
    assert "poisoned: no (before yes, CHANGED)" in text
    assert "suspect_classes: none (before 0, CHANGED)" in text
    assert "rows_to_remove: 0 (before 250, -250)" in text
    page = now.to_html()
    assert ("<strong>The verdict changed</strong>: the earlier audit found "
            "poisoned: class 0.") in page
    assert ('<tr><th scope="row">poisoned</th><td>no</td><td>yes</td><td>'
            '<strong>changed</strong></td></tr>') in page
    same = _with_scan(report, scan_report(False))
    same.baseline = now.headline()
    assert "The verdict changed" not in same.to_html()
    assert "poisoned: no (before no, unchanged)" in same.table()


def _old_json(report):
    """`report`'s JSON as an audit made before the scan's verdict wrote it:
    no alpha, verdict or per-class test in the poisoning section."""
    values = json.loads(report.to_json())
    for key in ("alpha", "poisoned", "suspect_classes", "classes"):
        del values["poisoning"][key]
    for key in ("poisoned", "suspect_classes", "rows_to_remove"):
        del values["headline"][key]
    values["poisoning"]["expected_fraction"] = 0.1
    return json.dumps(values)


def test_an_old_report_without_a_verdict_still_loads_and_compares(
        report, tmp_path):
    old = AuditReport.from_json(_old_json(_with_scan(report,
                                                     scan_report(True))))
    assert "poisoned" not in old.headline() and old.headline()["flagged"]
    card = _poisoning_card(old.to_html())
    assert card.startswith("Poisoning No verdict: this report predates")
    assert "1.5 × 0.1 of every class" in card
    assert old.table()
    now = _with_scan(report, scan_report(True))
    now.baseline = old.headline()
    rows = {key: (a, b, d) for key, a, b, d in now.comparison()}
    assert rows["poisoned"] == (True, None, None)
    assert rows["flagged spectral_signature"] == (151, 151, 0)
    assert "poisoned: yes (before not recorded, CHANGED)" in now.table()
    page = now.to_html()
    assert "<td>yes</td><td>not recorded</td>" in page
    assert "The verdict changed" not in page  # no earlier verdict to change
    again = AuditReport.from_json(now.to_json(tmp_path / "r.json"))
    assert again == now and again.to_html() == page


@pytest.mark.parametrize("kwargs,match", [
    ({"poison_alpha": 0}, r"poison_alpha must be a number in \(0, 1\)\. "
     r"Received: poison_alpha=0$"),
    ({"poison_alpha": 1.0}, r"Received: poison_alpha=1\.0$"),
    ({"poison_alpha": float("nan")}, r"Received: poison_alpha=nan$"),
    ({"poison_alpha": True}, r"Received: poison_alpha=True$"),
    ({"expected_fraction": 1.5}, r"expected_fraction must be a number in "
     r"\[0, 1\]\. Received: expected_fraction=1\.5$"),
])
def test_bad_poisoning_settings_are_refused_before_any_work(kwargs, match):
    stages = []
    with pytest.raises(ValueError, match=match):
        refused_audit(progress=stages.append, **kwargs)
    assert stages == []


def assert_no_rows(rows):
    """The rows the audit shows for a clean verdict (the catalogue's
    [audit] results): none."""
    assert rows == [], rows


def assert_says_no_verdict(page):
    """The page of a report made before the scan's verdict says there is
    none, and words the spectral signature's share as given."""
    assert "No verdict: this report predates the scan" in page
    assert "1.5 &times; 0.5 of every class" in page
