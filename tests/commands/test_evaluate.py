"""The keras-adv command line on a tiny saved model: valid JSON, one-line errors
with a non-zero status on bad input, a SavedModel that would write a file
refused before it runs, and no TensorFlow for --help."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_adv import cli
from tests.models.test_loading import save_writer

ROOT = Path(__file__).resolve().parents[2]


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


ARGS = ["--num-examples", "30", "--eps", "0.05,0.1", "--attacks", "fgsm,pgd",
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
        (["evaluate", "missing.keras", "--eps", "0.1"], "(model not found)"),
        (["evaluate", "{model}", "--eps", "0.1", "--attacks", "pgd,bogus"],
         "unknown: 'bogus'"),
        (["evaluate", "{model}", "--eps", "0.1,abc"],
         "--eps must be comma-separated finite numbers >= 0. Received: "
         "--eps 0.1,abc"),
        (["evaluate", "{model}", "--eps", "0.1", "--data", "{bad}"],
         "does not match the model input"),
        (["evaluate", "{model}", "--eps", "0.1", "--data", "nope.npz"],
         "(data file not found)"),
        (["evaluate", "{model}", "--eps", "0.1", "--data", "tfds::test"],
         "--data must be tfds:NAME or tfds:NAME:SPLIT. Received: --data "
         "tfds::test"),
        (["evaluate", "{model}", "--eps", "0.1", "--checkpoint",
          "/no/such/dir/run.ckpt"], "--checkpoint must be in an existing "),
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
    prefix = "keras-adv: " if argv[0] == "frobnicate" else "keras-adv evaluate: "
    lines = err.splitlines()  # stage lines, then the one error line
    assert all(line.startswith(prefix) for line in lines)
    assert [line for line in lines if ": error: " in line] == lines[-1:]
    assert needle in lines[-1]


def test_entry_point_exits_cleanly_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_adv.cli", "evaluate",
         str(tmp_path / "none.keras"), "--eps", "0.1"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "keras-adv evaluate: error: MODEL must be a .keras file or a "
        f"SavedModel directory. Received: {tmp_path / 'none.keras'} (model "
        "not found)")


# ---------------------------------------------------------------------------
# A SavedModel from elsewhere: scanned before it runs; --trust-model
# ---------------------------------------------------------------------------


@pytest.fixture
def writer(tmp_path):
    """A SavedModel that writes `target` when called, its data and outputs."""
    target = tmp_path / "written.txt"
    folder = save_writer(tmp_path / "writer", str(target))
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "data.npz", x=rng.rand(8, 4).astype("float32"),
             y=np.arange(8) % 3)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["evaluate", str(folder), "--data", str(tmp_path / "data.npz"),
            "--eps", "0.1", "--attacks", "fgsm", "--num-examples", "8",
            "--no-progress",
            "--json", str(out / "r.json"), "--plot", str(out / "r.png")]
    return argv, target, out


def test_writing_saved_model_is_refused_before_it_runs(writer, capsys):
    argv, target, out = writer
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 2
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        "keras-adv evaluate: error: refusing to load SavedModel ")
    assert "op WriteFile in function __inference_serve_" in captured.err
    assert "--trust-model" in captured.err
    assert captured.out == ""
    assert not target.exists()
    assert list(out.iterdir()) == []


def test_trust_model_runs_it_with_a_warning_line(writer, capsys):
    argv, target, out = writer
    assert cli.main([*argv, "--trust-model"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "keras-adv evaluate: warning: --trust-model: a SavedModel is loaded without "
        "the op scan; its ops run as written\n")
    assert target.read_text() == "written by the model"
    report = json.loads((out / "r.json").read_text())
    assert report["num_examples"] == 8 and report["attacks"] == ["fgsm"]


def _python(code, tmp_path, **env):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)


def test_a_normal_run_prints_no_tensorflow_log_lines(saved, tmp_path):
    path, _, _ = saved
    code = ("import sys\nfrom keras_adv import cli\nsys.exit(cli.main(%r))"
            % ["evaluate", str(path), "--eps", "0.1", "--num-examples", "8",
               "--attacks", "fgsm", "--no-progress"])
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "robust" in done.stdout
    assert done.stderr == ""


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(saved,
                                                               tmp_path):
    path, _, _ = saved
    code = ("import sys\nfrom keras_adv import cli\nsys.exit(cli.main(%r))"
            % ["evaluate", str(path), "--eps", "0.1", "--num-examples", "30",
               "--batch-size", "10", "--attacks", "fgsm"])
    done = _python(code, tmp_path)  # stderr is a pipe
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines()
             if "still running" not in line]  # a slow stage's heartbeat
    assert [re.sub(r" \(\d+ s\)$", "", line) for line in lines[:5]] == [
        "keras-adv evaluate: loading TensorFlow",
        "keras-adv evaluate: loading the data (mnist5k:test)",
        "keras-adv evaluate: data: mnist5k:test (30 examples)",
        "keras-adv evaluate: loading the model",
        "keras-adv evaluate: attacking (fgsm, eps 0.1)"]
    # No bar redraws (carriage returns); the last line counts every example.
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert lines[-1].startswith("evaluated 30/30 examples, robust ")
    assert 6 <= len(lines) <= 9  # at most one line per 5 s, and the last


def test_eps_beyond_the_data_range_is_one_warning_line(saved, capsys):
    path, _, _ = saved
    assert cli.main(["evaluate", str(path), "--eps", "0.1,3",
                     "--num-examples", "10", "--attacks", "fgsm",
                     "--data", "mnist5k:test"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "keras-adv evaluate: warning: eps 3 is larger than the data's " \
        "range under linf (1: box [0, 1], its width): every input of the " \
        "box is in reach, so the robust accuracy there measures only where " \
        "the model is constant" in err
    assert any(line.startswith("keras-adv evaluate: data: mnist5k:test (10 "
                               "examples) (") for line in err)


def test_evaluate_tfds_stream_and_checkpoint(saved, mnist5k, monkeypatch,
                                             tmp_path, capsys):
    import tensorflow as tf

    from keras_adv import datasets

    _, (x, y) = mnist5k
    asked = []

    def fake_stream(name, split="test", **kwargs):  # tfds needs the network
        asked.append((name, split))
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(7)

    monkeypatch.setattr(datasets, "stream_tfds", fake_stream)
    path = saved[0]
    ckpt = tmp_path / "run.ckpt"
    argv = ["evaluate", str(path)] + ARGS + ["--batch-size", "12"]
    assert cli.main(argv + ["--data", "tfds:mnist:test[:5%]", "--checkpoint",
                            str(ckpt), "--json", str(tmp_path / "s.json")]) == 0
    assert asked == [("mnist", "test[:5%]")] and ckpt.is_file()
    assert cli.main(argv + ["--json", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()

    def plain(name):
        report = json.loads((tmp_path / name).read_text())
        return {k: v for k, v in report.items()
                if k not in ("timings", "seconds", "seconds_per_example")}

    assert plain("s.json") == plain("a.json")
    assert plain("s.json")["num_examples"] == 30
    # Run again: the finished checkpoint gives the same report.
    with pytest.raises(SystemExit):  # other arguments: refused
        cli.main(argv + ["--data", "tfds:mnist:test[:5%]", "--checkpoint",
                         str(ckpt), "--num-examples", "20"])
    assert "num_examples differs" in capsys.readouterr().err
    assert cli.main(argv + ["--data", "tfds:mnist:test[:5%]", "--checkpoint",
                            str(ckpt), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(
        (tmp_path / "s.json").read_text())


def test_evaluate_tfds_unavailable_is_one_line(saved, monkeypatch, capsys):
    from keras_adv import datasets

    def offline(name, split="test", **kwargs):
        raise datasets.DatasetUnavailableError(f"{name} is not prepared")

    monkeypatch.setattr(datasets, "stream_tfds", offline)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(saved[0]), "--eps", "0.1", "--data",
                  "tfds:cifar10"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.splitlines()[-1]
    assert "cifar10 is not prepared" in err
    assert "Received: --data tfds:cifar10" in err


# --------------------------------------------------------------------------
# The command line: one line naming the path, no partial output
# --------------------------------------------------------------------------


@pytest.fixture
def cli_files(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.save(tmp_path / "ok.keras")
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "data.npz", x=rng.rand(8, 4).astype("float32"),
             y=np.arange(8) % 3)
    (tmp_path / "corrupt.keras").write_bytes(b"\x00not a zip\xff" * 16)
    (tmp_path / "empty.keras").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path, out


def _run_cli(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert info.value.code == 2
    assert [line for line in lines if ": error: " in line] == lines[-1:]
    assert lines[-1].startswith("keras-adv evaluate: error: ")
    return lines[-1]


@pytest.mark.parametrize(
    "model,extra,needle",
    [
        pytest.param("missing.keras", [], "Received: {root}/missing.keras "
                     "(model not found)", id="missing-model"),
        pytest.param("corrupt.keras", [],
                     "Received: {root}/corrupt.keras (not a .keras archive: "
                     "not a zip file)", id="corrupt-model"),
        pytest.param("empty.keras", [],
                     "Received: {root}/empty.keras (not a .keras archive: "
                     "not a zip file)", id="empty-model"),
        pytest.param("ok.keras", ["--plot", "{root}/nodir/r.png"],
                     "--plot must be in an existing directory. Received: "
                     "--plot {root}/nodir/r.png", id="plot-dir-missing"),
        pytest.param("ok.keras", ["--json", "{out}"],
                     "--json must be a file path, not a directory. "
                     "Received: --json {out}", id="json-is-directory"),
    ],
)
def test_cli_bad_model_or_output_leaves_nothing(cli_files, capsys, model,
                                                extra, needle):
    root, out = cli_files
    extra = [a.format(root=root, out=out) for a in extra]
    argv = ["evaluate", str(root / model), "--data", str(root / "data.npz"),
            "--eps", "0.1", "--attacks", "fgsm", "--no-progress",
            "--json", str(out / "r.json"), *extra]
    err = _run_cli(capsys, argv)
    assert needle.format(root=root, out=out) in err
    assert "Traceback" not in err
    assert list(out.iterdir()) == []


def test_cli_failed_write_removes_partial_output(cli_files, capsys,
                                                 monkeypatch):
    from keras_adv.evaluation.report import RobustnessReport

    def broken_plot(self, path):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError(f"No space left on device: {path!r}")

    monkeypatch.setattr(RobustnessReport, "plot", broken_plot)
    root, out = cli_files
    err = _run_cli(capsys, [
        "evaluate", str(root / "ok.keras"), "--data", str(root / "data.npz"),
        "--eps", "0.1", "--attacks", "fgsm", "--no-progress",
        "--json", str(out / "r.json"), "--plot", str(out / "r.png")])
    assert "No space left on device" in err and str(out / "r.png") in err
    assert list(out.iterdir()) == []
