"""`keras-adv audit`: the page and the JSON of a saved model (a SavedModel
too), --compare, an --out that holds other files, and one-line errors."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from keras_adv import cli, models

ARGS = ["--eps", "0.05,0.1", "--attacks", "apgd-ce", "--num-examples", "40",
        "--no-progress"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, mnist5k):
    (x_train, y_train), _ = mnist5k
    keras.utils.set_random_seed(0)
    m = models.small_cnn(seed=0, width=8)
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    m.fit(x_train[:2000], y_train[:2000], epochs=1, batch_size=64, verbose=0)
    root = tmp_path_factory.mktemp("audit")
    m.save(root / "m.keras")
    models.export_model(m, str(root / "served"))
    return root, m


def _fails(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if ": error: " in line] == lines[-1:]
    assert lines[-1].startswith("keras-adv audit: error: ")
    return lines[-1]


@pytest.fixture(scope="module")
def scanned(saved):
    """The audit with every section: certification and the poisoning scan
    of 4000 training rows at --poison-alpha 0.01. Returns the output
    directory and what the command printed."""
    root, _ = saved
    out = root / "a"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["audit", str(root / "m.keras"), *ARGS, "--sigma",
                         "0.25", "--n", "100", "--train-data",
                         "mnist5k:train", "--poison-alpha", "0.01",
                         "--out", str(out)]) == 0
    return out, printed.getvalue()


def test_audit_writes_page_and_json_with_every_section(saved, scanned,
                                                       mnist5k):
    _, model = saved
    out, printed = scanned
    report = json.loads((out / "report.json").read_text())
    assert {"evasion", "certification", "poisoning"} <= set(report)
    _, (x, y) = mnist5k
    pred = model.predict(x[:40], verbose=0).argmax(-1)
    assert report["evasion"]["clean_accuracy"] == np.mean(pred == y[:40])
    assert report["summary"]["command"].startswith("keras-adv audit ")
    page = (out / "report.html").read_text()
    poison = report["poisoning"]
    # The scan ran at --poison-alpha, its share estimated (no
    # --expected-fraction); the suspicious grid only when poisoned.
    assert (poison["alpha"], poison["expected_fraction"]) == (0.01, None)
    assert page.count("data:image/png;base64,") == 3 + poison["poisoned"]
    assert "sigma 0.25" in page
    verdict = ("Poisoned: class" if poison["poisoned"]
               else "No evidence of poisoning at alpha 0.01")
    assert f'id="verdict"><strong>{verdict}' in page
    headline = report["headline"]
    assert headline["poisoned"] is poison["poisoned"]
    assert headline["suspect_classes"] == poison["suspect_classes"]
    assert "at alpha=0.01" in printed and "wrote" in printed


def _rewritten(path, dest, change):
    """The report.json at `path`, changed by `change(values)`, at `dest`."""
    values = json.loads(path.read_text())
    change(values)
    dest.write_text(json.dumps(values))
    return dest


def test_compare_shows_a_change_of_verdict(saved, scanned, capsys):
    """A baseline that found every class poisoned, against this audit's
    scan (which did not): the table and the page say the verdict
    changed."""
    root, _ = saved
    out, _ = scanned

    def all_poisoned(values):
        p = values["poisoning"]
        p["poisoned"], p["suspect_classes"] = True, list(range(10))
        for c, entry in p["classes"].items():
            entry.update(suspect=True, estimated_fraction=0.5,
                         flagged=[int(c)])

    before = _rewritten(out / "report.json", root / "before.json",
                        all_poisoned)
    second = root / "verdict"
    assert cli.main(["audit", str(root / "m.keras"), *ARGS, "--train-data",
                     "mnist5k:train", "--poison-alpha", "0.01", "--out",
                     str(second), "--compare", str(before)]) == 0
    report = json.loads((second / "report.json").read_text())
    assert report["baseline"]["poisoned"] is True
    assert report["headline"]["poisoned"] is False  # as the scan above
    table = capsys.readouterr().out
    assert "poisoned: no (before yes, CHANGED)" in table
    assert ("suspect_classes: none (before 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "
            "CHANGED)") in table
    assert "rows_to_remove: 0 (before 10, -10)" in table
    page = (second / "report.html").read_text()
    assert ("<strong>The verdict changed</strong>: the earlier audit found "
            "poisoned: classes 0, 1, 2, 3, 4, 5, 6, 7, 8, 9.") in page


def test_a_report_from_before_the_verdict_is_a_baseline(saved, scanned):
    """An earlier version's report.json (no alpha, verdict or per-class
    test in its poisoning section, no verdict in its headline) passes
    --compare's check and gives a baseline without a verdict."""
    from keras_adv.commands import audit as command

    root, _ = saved
    out, _ = scanned

    def old(values):
        for key in ("alpha", "poisoned", "suspect_classes", "classes"):
            del values["poisoning"][key]
        for key in ("poisoned", "suspect_classes", "rows_to_remove"):
            del values["headline"][key]
        values["poisoning"]["expected_fraction"] = 0.1

    path = _rewritten(out / "report.json", root / "old.json", old)
    args = cli.build_parser().parse_args([
        "audit", str(root / "m.keras"), "--eps", "0.1", "--out",
        str(root / "next"), "--compare", str(path)])
    command.check(args)
    baseline = command._baseline(str(path))
    assert "poisoned" not in baseline and "flagged" in baseline
    assert baseline["clean_accuracy"] == json.loads(
        (out / "report.json").read_text())["headline"]["clean_accuracy"]


def test_saved_model_and_compare(saved, capsys):
    root, _ = saved
    first, second = root / "first", root / "second"
    assert cli.main(["audit", str(root / "m.keras"), *ARGS, "--out",
                     str(first)]) == 0
    assert cli.main(["audit", str(root / "served"), *ARGS, "--out",
                     str(second), "--compare",
                     str(first / "report.json")]) == 0
    report = json.loads((second / "report.json").read_text())
    assert report["baseline"]["clean_accuracy"] == report["headline"][
        "clean_accuracy"]
    page = (second / "report.html").read_text()
    assert "Against the earlier audit" in page
    capsys.readouterr()


def test_out_holding_other_files_is_refused_unless_overwrite(saved, capsys):
    root, _ = saved
    out = root / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = _fails(capsys, ["audit", str(root / "m.keras"), *ARGS, "--out",
                          str(out)])
    assert "holding 'notes.txt'" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert cli.main(["audit", str(root / "m.keras"), *ARGS, "--out", str(out),
                     "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    capsys.readouterr()


def test_failure_midway_leaves_no_page(saved, capsys, monkeypatch):
    from keras_adv.auditing import AuditReport

    def broken(self, path=None):
        raise OSError("No space left on device")

    monkeypatch.setattr(AuditReport, "to_html", broken)
    root, _ = saved
    out = root / "broken"
    err = _fails(capsys, ["audit", str(root / "m.keras"), *ARGS, "--out",
                          str(out)])
    assert "No space left" in err
    # Neither file, not even the JSON made before the page failed.
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("extra,needle", [
    (["--eps", "x"], "--eps must be comma-separated"),
    (["--eps", "0.1", "--sigma", "0"], "--sigma must be a finite number > 0"),
    (["--eps", "0.1", "--train-data", "none.npz"],
     "--train-data must be mnist5k"),
    (["--eps", "0.1", "--train-data", "mnist5k"],
     "--train-data must name training data (mnist5k:train, an .npz file or "
     "tfds:NAME:SPLIT). Received: --train-data mnist5k (the test split "
     "mnist5k:test)"),
    (["--eps", "0.1", "--attacks", "pgd,bogus"], "unknown: 'bogus'"),
    (["--eps", "0.1", "--num-examples", "0"], "--num-examples must be >= 1"),
    (["--eps", "0.1", "--poison-alpha", "0"],
     "--poison-alpha must be in (0, 1). Received: --poison-alpha 0.0"),
    (["--eps", "0.1", "--poison-alpha", "1"], "Received: --poison-alpha 1.0"),
    (["--eps", "0.1", "--poison-alpha", "nan"],
     "--poison-alpha must be a finite number"),
    (["--eps", "0.1", "--expected-fraction", "1.5"],
     "--expected-fraction must be in [0, 1]. Received: --expected-fraction "
     "1.5"),
])
def test_bad_flags_one_line(saved, capsys, extra, needle, tmp_path):
    root, _ = saved
    err = _fails(capsys, ["audit", str(root / "m.keras"), *extra, "--out",
                          str(tmp_path / "o")])
    assert needle in err


def test_progress_per_stage(saved, capsys):
    root, _ = saved
    assert cli.main(["audit", str(root / "m.keras"), "--eps", "0.1",
                     "--attacks", "apgd-ce", "--num-examples", "20",
                     "--sigma", "0.5", "--n", "50", "--out",
                     str(root / "stages")]) == 0
    stages = [line.split(" (")[0] for line in
              capsys.readouterr().err.splitlines()
              if line.startswith("keras-adv audit: ")
              and "still running" not in line]  # a slow stage's heartbeat
    assert stages == [
        "keras-adv audit: loading the data",
        "keras-adv audit: data: mnist5k:test",
        "keras-adv audit: loading the model",
        "keras-adv audit: attacks on 20 examples at eps 0.1",
        "keras-adv audit: the example grid",
        "keras-adv audit: certification",
        "keras-adv audit: writing the page"]
