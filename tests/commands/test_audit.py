"""`keras-adv audit`: the page and the JSON of a saved model (a SavedModel
too), --compare, an --out that holds other files, and one-line errors."""

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


def test_audit_writes_page_and_json_with_every_section(saved, mnist5k,
                                                       capsys):
    root, model = saved
    out = root / "a"
    assert cli.main(["audit", str(root / "m.keras"), *ARGS, "--sigma", "0.25",
                     "--n", "100", "--train-data", "mnist5k:train",
                     "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"evasion", "certification", "poisoning"} <= set(report)
    _, (x, y) = mnist5k
    pred = model.predict(x[:40], verbose=0).argmax(-1)
    assert report["evasion"]["clean_accuracy"] == np.mean(pred == y[:40])
    assert report["summary"]["command"].startswith("keras-adv audit ")
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "sigma 0.25" in page
    assert "wrote" in capsys.readouterr().out


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
    assert "No space left" in err and not (out / "report.html").exists()


@pytest.mark.parametrize("extra,needle", [
    (["--eps", "x"], "--eps must be comma-separated"),
    (["--eps", "0.1", "--sigma", "0"], "--sigma must be > 0"),
    (["--eps", "0.1", "--train-data", "none.npz"],
     "--train-data must be mnist5k"),
    (["--eps", "0.1", "--attacks", "pgd,bogus"], "unknown: 'bogus'"),
    (["--eps", "0.1", "--num-examples", "0"], "--num-examples must be >= 1"),
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
              if line.startswith("keras-adv audit: ")]
    assert stages == [
        "keras-adv audit: loading the data",
        "keras-adv audit: loading the model",
        "keras-adv audit: attacks on 20 examples at eps 0.1",
        "keras-adv audit: the example grid",
        "keras-adv audit: certification",
        "keras-adv audit: writing the page"]
