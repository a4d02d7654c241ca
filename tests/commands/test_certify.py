"""`keras-adv certify`: the table, JSON and plot; a SavedModel exported by
keras_adv; one line and exit 2 on bad input."""

import json

import numpy as np
import pytest

from keras_adv import cli, models
from keras_adv.certification import CertificationReport


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("certify") / "cnn.keras"
    models.small_cnn(seed=0).save(str(path))
    return path


def _fails(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "keras-adv certify: error: ")
    return err


def test_certify_writes_table_json_and_plot(saved, tmp_path, capsys):
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    assert cli.main([
        "certify", str(saved), "--sigma", "0.25", "--n", "200", "--n0", "20",
        "--num-examples", "6", "--radii", "0,0.5", "--json", str(out),
        "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "Certified accuracy (L2, sigma=0.25" in text and "6 examples" in text
    data = json.loads(out.read_text())
    assert data["n"] == 200 and data["num_examples"] == 6
    assert data["radii"] == [0.0, 0.5] and len(data["certified_accuracy"]) == 2
    assert png.read_bytes()[:4] == b"\x89PNG"
    report = CertificationReport.from_json(out)
    assert report.certificate.counts.shape == (6, 10)
    assert report.certificate.counts.sum(axis=1).tolist() == [200] * 6
    assert CertificationReport.from_json(report.to_json()) == report


def test_npz_data(saved, tmp_path, mnist5k, capsys):
    _, (x, y) = mnist5k
    path = tmp_path / "d.npz"
    np.savez(path, x=x[:4], y=y[:4])
    assert cli.main(["certify", str(saved), "--data", str(path), "--sigma",
                     "0.5", "--n", "50", "--n0", "10", "--no-progress"]) == 0
    assert "4 examples" in capsys.readouterr().out


@pytest.mark.parametrize("extra,needle", [
    (["--sigma", "0"], "--sigma must be"),
    (["--sigma", "nan"], "--sigma must be"),
    (["--sigma", "0.25", "--alpha", "1"], "--alpha must be"),
    (["--sigma", "0.25", "--n", "0"], "--n must be"),
    (["--sigma", "0.25", "--n0", "-1"], "--n0 must be"),
    (["--sigma", "0.25", "--num-examples", "0"], "--num-examples must be"),
    (["--sigma", "0.25", "--batch-size", "0"], "--batch-size must be"),
    (["--sigma", "0.25", "--radii", "0,-1"], "--radii must be"),
    (["--sigma", "0.25", "--radii", "a"], "--radii must be"),
    (["--sigma", "0.25", "--json", "/nonexistent/x.json"], "--json must be"),
    (["--sigma", "0.25", "--data", "missing.npz"], "--data must be"),
])
def test_bad_input_one_line_exit_2(saved, capsys, extra, needle):
    assert needle in _fails(capsys, ["certify", str(saved), *extra])


def test_bad_model_path(tmp_path, capsys):
    err = _fails(capsys, ["certify", str(tmp_path / "m.h5"), "--sigma",
                          "0.25"])
    assert "MODEL must be a .keras file or a SavedModel directory" in err


def test_exported_saved_model_certifies_like_the_keras_file(saved, tmp_path,
                                                             capsys):
    exported = tmp_path / "served"
    models.export_model(models.load_model(str(saved)), str(exported))
    argv = ["--sigma", "0.25", "--n", "100", "--n0", "10", "--num-examples",
            "5", "--seed", "3", "--no-progress"]
    outs = []
    for i, path in enumerate((saved, exported)):
        outs.append(tmp_path / f"{i}.json")
        assert cli.main(["certify", str(path), *argv, "--json",
                         str(outs[-1])]) == 0
    a, b = (json.loads(p.read_text()) for p in outs)
    # Same noise (same seed), same logits up to float rounding.
    assert a["certificate"]["prediction"] == b["certificate"]["prediction"]
    diff = np.abs(np.subtract(a["certificate"]["counts"],
                              b["certificate"]["counts"]))
    assert diff.max() <= 1
    assert "Certified accuracy" in capsys.readouterr().out
