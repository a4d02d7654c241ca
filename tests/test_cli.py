"""The keras-adv command line on a tiny saved model: valid JSON, and one-line
errors with a non-zero status on bad input."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_adv import cli


@pytest.fixture(scope="module")
def saved(tmp_path_factory, mnist5k):
    (x_train, y_train), _ = mnist5k
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train[:2000], y_train[:2000], epochs=2, verbose=0)
    root = tmp_path_factory.mktemp("cli")
    path = root / "tiny.keras"
    model.save(path)
    exported = root / "exported"
    model.export(str(exported), verbose=False)
    return path, exported, root


ARGS = ["--n", "30", "--eps", "0.05,0.1", "--attacks", "fgsm,pgd",
        "--no-progress"]


def test_evaluate_keras_file_writes_json_and_plot(saved, capsys):
    path, _, root = saved
    out_json, out_png = root / "r.json", root / "r.png"
    status = cli.main(["evaluate", str(path), "--data", "mnist5k", *ARGS,
                       "--json", str(out_json), "--plot", str(out_png)])
    assert status == 0
    report = json.loads(out_json.read_text())
    assert report["eps"] == [0.05, 0.1]
    assert report["attacks"] == ["fgsm", "pgd"]
    assert report["num_examples"] == 30
    assert 0.5 < report["clean_accuracy"] <= 1.0
    rob = report["robust_accuracy"]
    assert rob[0] >= rob[1] and rob[0] <= report["clean_accuracy"]
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "robust" in printed and "0.05" in printed


def test_evaluate_saved_model_directory_and_npz(saved, mnist5k, capsys):
    path, exported, root = saved
    _, (x, y) = mnist5k
    data = root / "data.npz"
    np.savez(data, x=x[:30], y=y[:30])
    out_a, out_b = root / "a.json", root / "b.json"
    for model_path, out in ((path, out_a), (exported, out_b)):
        assert cli.main(["evaluate", str(model_path), "--data", str(data),
                         *ARGS, "--json", str(out)]) == 0
    a, b = json.loads(out_a.read_text()), json.loads(out_b.read_text())
    # The exported model returns probabilities; they are detected, so the
    # attacks see the same logits (up to a constant) and agree.
    assert b["clean_accuracy"] == a["clean_accuracy"]
    assert abs(b["robust_accuracy"][1] - a["robust_accuracy"][1]) <= 0.1


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["evaluate", "missing.keras", "--eps", "0.1"], "model not found"),
        (["evaluate", "{model}", "--eps", "0.1", "--attacks", "pgd,bogus"],
         "unknown: 'bogus'"),
        (["evaluate", "{model}", "--eps", "0.1,abc"], "--eps must be numbers"),
        (["evaluate", "{model}", "--eps", "0.1", "--data", "{bad}"],
         "does not match the model input"),
        (["evaluate", "{model}", "--eps", "0.1", "--data", "nope.npz"],
         "data file not found"),
        (["evaluate", "{model}"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_fails_in_one_line(saved, capsys, argv, needle):
    path, _, root = saved
    bad = root / "bad.npz"
    np.savez(bad, x=np.zeros((4, 32, 32, 3), "float32"), y=np.zeros(4, int))
    argv = [a.format(model=path, bad=bad) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keras-adv: error: ")
    assert needle in err


def test_entry_point_exits_cleanly_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_adv.cli", "evaluate",
         str(tmp_path / "none.keras"), "--eps", "0.1"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"keras-adv: error: model not found: {tmp_path / 'none.keras'}")
