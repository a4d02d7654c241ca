"""`keras-adv poison-scan`: flags planted rows, writes a PoisonScanReport
as JSON, takes an exported SavedModel, and exits 2 with one line on bad
input."""

import json

import keras
import numpy as np
import pytest

from keras_adv import cli, models
from keras_adv.poisoning import PoisonScanReport
from tests.poisoning.planted import flat_model, planted


def _fails(capsys, argv):
    """The one error line (the last; stage lines before it when the error
    is found once the run has started)."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("keras-adv poison-scan: ") for line in lines)
    assert [line for line in lines if ": error: " in line] == lines[-1:]
    return lines[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan")
    x, y, poison = planted(shift=10.0)
    model = flat_model()
    # The head has learned the planted rows' backdoor: class 0's logit is
    # 40 * (x[3] - 0.7). Blended with another row (a clipped sum), a planted
    # row (x[3] about 0.82) keeps class 0, a clean one (about 0.21) does
    # not: the verdict's trigger test sees the backdoor.
    kernel = np.zeros((20, 3), "float32")
    kernel[3, 0] = 40.0
    model.get_layer("head").set_weights(
        [kernel, np.array([-28.0, 0.0, 0.0], "float32")])
    model.save(root / "m.keras")
    np.savez(root / "train.npz", x=x, y=y)
    return root, poison


def test_scan_writes_json(files, capsys):
    root, poison = files
    out = root / "flags.json"
    assert cli.main(["poison-scan", str(root / "m.keras"), "--data",
                     str(root / "train.npz"), "--expected-fraction", "0.1",
                     "--components", "5", "--seed", "0", "--json",
                     str(out)]) == 0
    result = json.loads(out.read_text())
    report = PoisonScanReport.from_json(out)
    assert PoisonScanReport.from_json(report.to_json()) == report
    assert report.flagged("activation_clustering") == [int(i) for i in poison]
    ac = result["methods"]["activation_clustering"]
    assert ac["flagged"] == [int(i) for i in poison]
    assert ac["per_class"]["0"] == ac["flagged"] and ac["per_class"]["1"] == []
    ss = result["methods"]["spectral_signature"]
    assert len(ss["flagged"]) == 17 + 15 + 15
    assert set(poison) <= set(ss["flagged"])
    printed = capsys.readouterr().out
    assert "activation_clustering: 15 flagged" in printed


def test_scan_one_method(files, capsys):
    root, _ = files
    assert cli.main(["poison-scan", str(root / "m.keras"), "--data",
                     str(root / "train.npz"), "--expected-fraction", "0.1",
                     "--method", "spectral", "--layer", "flat"]) == 0
    assert "activation_clustering" not in capsys.readouterr().out


def test_verdict_line_first_without_expected_fraction(files, capsys):
    root, poison = files
    out = root / "verdict.json"
    assert cli.main(["poison-scan", str(root / "m.keras"), "--data",
                     str(root / "train.npz"), "--method", "verdict",
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    report = PoisonScanReport.from_json(out)
    assert report.expected_fraction is None and report.alpha == 0.05
    # The planted rows (15 of class 0's 115) are found and named.
    assert report.poisoned and report.suspect_classes == [0]
    assert set(report.flagged()) == {int(i) for i in poison}
    assert printed[0] == "poisoned: class 0 (~15 rows, estimated)"
    assert "activation_clustering" not in "\n".join(printed)


def test_clean_data_says_no_evidence(files, tmp_path, capsys):
    root, _ = files
    x, y, _ = planted(n_poison=0)
    np.savez(tmp_path / "clean.npz", x=x, y=y)
    assert cli.main(["poison-scan", str(root / "m.keras"), "--data",
                     str(tmp_path / "clean.npz"), "--method", "verdict",
                     "--alpha", "0.01"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "no evidence of poisoning at alpha 0.01"


@pytest.mark.parametrize("change, message", [
    (["--alpha", "1"], "--alpha must be in (0, 1). Received: --alpha 1.0"),
    (["--alpha", "0"], "--alpha must be in (0, 1). Received: --alpha 0.0"),
    (["--expected-fraction", "1.5"], "--expected-fraction must be in [0, 1]"),
    (["--data", "missing.npz"], "or an existing .npz file. Received: "
     "--data missing.npz"),
    (["--layer", "nope"], "Received: layer='nope'"),
    (["--json", "/no/such/dir/f.json"], "--json must be in an existing "
     "directory"),
    (["MODEL=bad.txt"], "MODEL must be"),
])
def test_bad_input_one_line(files, capsys, change, message):
    root, _ = files
    argv = {"model": str(root / "m.keras"), "--data": str(root / "train.npz"),
            "--expected-fraction": "0.1"}
    if change[0] == "MODEL=bad.txt":
        (root / "bad.txt").write_text("x")
        argv["model"] = str(root / "bad.txt")
    else:
        argv[change[0]] = change[1]
    flat = ["poison-scan", argv.pop("model")]
    for k, v in argv.items():
        flat += [k, v]
    assert message in _fails(capsys, flat)


def test_bad_npz(files, capsys):
    root, _ = files
    np.savez(root / "short.npz", x=np.zeros((3, 4, 5, 1)), y=np.zeros(2))
    np.savez(root / "nolabels.npz", x=np.zeros((3, 4, 5, 1)))
    for name, message in (("short.npz", "one label per example"),
                          ("nolabels.npz", "must be an .npz file with "
                           "arrays x and y. Received: --data")):
        assert message in _fails(capsys, [
            "poison-scan", str(root / "m.keras"), "--data", str(root / name),
            "--expected-fraction", "0.1"])


def test_unsafe_model_refused(tmp_path, capsys):
    inp = keras.Input((4, 5, 1))
    out = keras.layers.Lambda(lambda t: keras.ops.reshape(t, (-1, 20)))(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(out))
    model.save(tmp_path / "lambda.keras")
    x, y, _ = planted()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    err = _fails(capsys, ["poison-scan", str(tmp_path / "lambda.keras"),
                          "--data", str(tmp_path / "d.npz"),
                          "--expected-fraction", "0.1"])
    assert "Lambda" in err and "safe" in err


def test_exported_saved_model_is_scanned_on_its_scores(files, tmp_path,
                                                      capsys):
    # A SavedModel's inner layers are out of reach: it is scanned on its
    # output scores, as the .keras file is with --layer head (its last
    # layer), and flags the same rows.
    root, _ = files
    exported = tmp_path / "served"
    models.export_model(models.load_model(str(root / "m.keras")),
                        str(exported))
    reports = []
    for model, extra in ((root / "m.keras", ["--layer", "head"]),
                         (exported, [])):
        out = tmp_path / f"{len(reports)}.json"
        assert cli.main(["poison-scan", str(model), "--data",
                         str(root / "train.npz"), "--expected-fraction",
                         "0.1", "--components", "2", "--seed", "0",
                         "--json", str(out), "--no-progress", *extra]) == 0
        reports.append(PoisonScanReport.from_json(out))
    keras_file, saved_model = reports
    assert saved_model.methods == keras_file.methods
    assert len(saved_model.flagged("spectral_signature")) == 47
    assert "spectral_signature" in capsys.readouterr().out
