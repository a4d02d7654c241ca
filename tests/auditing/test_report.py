"""AuditReport (auditing/report.py): the round trip, the self-contained
page, the poisoning card's verdict and the comparison with an earlier
audit."""

import dataclasses
import html
import html.parser
import json
import re

from keras_adv.auditing import AuditReport, core


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


def assert_says_no_verdict(page):
    """The page of a report made before the scan's verdict says there is
    none, and words the spectral signature's share as given."""
    assert "No verdict: this report predates the scan" in page
    assert "1.5 &times; 0.5 of every class" in page
