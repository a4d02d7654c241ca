"""Everything the project writes, every function and command of the
project reads.

The files: an `AdversarialModel` (built as examples/demo.py's defended
model, tiny, trained one step) saved as `.keras` and a plain Keras model
saved as `.keras`, and `export_model`'s three formats (SavedModel, TFLite,
ONNX) of the first, loaded back and never called. The readers: the
commands `evaluate`, `certify`, `poison-scan` and `audit` (in process,
tiny settings), `load_model`, `export_model` and `load_served`. Each cell
works (a sane output) or is refused in one line saying why and what to do
(exit status 2 for a command).
"""

import json

import keras
import numpy as np
import pytest

from keras_adv import cli, defenses, models

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

FILES = ["adv.keras", "plain.keras", "saved", "m.tflite", "m.onnx"]
RUNNABLE = {"adv.keras", "plain.keras", "saved"}  # what the commands take
ONE = ["--num-examples", "8", "--no-progress"]
COMMANDS = {
    "evaluate": ["--eps", "0.1", "--attacks", "fgsm", *ONE],
    "certify": ["--sigma", "0.25", "--n", "20", "--n0", "5", *ONE],
    "poison-scan": ["--data", "mnist5k:train", "--num-examples", "60",
                    "--expected-fraction", "0.1", "--no-progress"],
    "audit": ["--eps", "0.1", "--attacks", "fgsm", *ONE],
}


def _compiled(model):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory, mnist5k):
    """The five files, and the two Keras models they hold."""
    root = tmp_path_factory.mktemp("files")
    (x_train, y_train), _ = mnist5k
    keras.utils.set_random_seed(0)
    adv = _compiled(models.AdversarialModel(
        models.small_cnn(width=4, seed=1),
        defense=defenses.PGDTraining(eps=0.1, steps=1)))
    plain = _compiled(models.small_cnn(width=4, seed=0))
    for model in (adv, plain):  # one step each
        model.fit(x_train[:32], y_train[:32], batch_size=32, verbose=0)
    adv.save(root / "adv.keras")
    plain.save(root / "plain.keras")
    loaded = keras.models.load_model(root / "adv.keras")  # never called
    for name in ("saved", "m.tflite", "m.onnx"):
        models.export_model(loaded, str(root / name))
    np.savez(root / "train.npz", x=x_train[:60], y=y_train[:60])
    return root, {"adv.keras": adv, "plain.keras": plain}


def _keras_model(models_by_file, name):
    """The Keras model a file was written from."""
    return models_by_file["plain.keras" if name == "plain.keras"
                          else "adv.keras"]


def _refused(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines and ": error: " in lines[-1]
    return lines[-1]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("name", FILES)
def test_commands_read_every_file(files, tmp_path, capsys, command, name):
    root, _ = files
    argv = [command, str(root / name), *COMMANDS[command]]
    if command == "audit":
        argv += ["--out", str(tmp_path / "audit")]
        if name == "adv.keras":  # the poisoning scan of the demo's model
            argv += ["--train-data", str(root / "train.npz")]
    else:
        argv += ["--json", str(tmp_path / "r.json")]
    if name not in RUNNABLE:
        line = _refused(capsys, argv)
        assert line == (f"keras-adv {command}: error: MODEL must be a .keras "
                        f"file or a SavedModel directory. Received: "
                        f"{root / name} (not a .keras file)")
        return
    assert cli.main(argv) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / ("audit/report.json" if command == "audit"
                                     else "r.json")).read_text())
    if command == "evaluate":
        assert 0 <= report["clean_accuracy"] <= 1
    elif command == "certify":
        assert len(report["certificate"]["prediction"]) == 8
    elif command == "poison-scan":
        flagged = report["methods"]["spectral_signature"]["flagged"]
        assert flagged and all(0 <= i < 60 for i in flagged)
    else:
        assert report["evasion"]["num_examples"] == 8
        assert (report["poisoning"] is not None) == (name == "adv.keras")


@pytest.mark.parametrize("name", FILES)
def test_load_model_reads_every_file(files, name):
    root, by_file = files
    x = np.random.RandomState(0).rand(4, 28, 28, 1).astype("float32")
    if name.endswith((".tflite", ".onnx")):
        with pytest.raises(ValueError, match=r"model must be a \.keras file "
                           r"or a SavedModel directory\. Received: path="):
            models.load_model(str(root / name))
        return
    model = models.load_model(str(root / name))
    np.testing.assert_allclose(np.asarray(model(x)),
                               _keras_model(by_file, name)(x), atol=1e-5)


@pytest.mark.parametrize("name", FILES)
def test_export_model_reads_every_model_loaded(files, tmp_path, name):
    """export_model takes a Keras model: a .keras file loaded (never
    called) exports in the three formats; a loaded SavedModel is refused in
    one line naming the way out; a path is not a model."""
    root, by_file = files
    if name.endswith(".keras"):
        model = models.load_model(str(root / name))
        x = np.random.RandomState(2).rand(3, 28, 28, 1).astype("float32")
        for out in ("m.tflite", "m.onnx", "served"):
            served = models.load_served(models.export_model(
                model, str(tmp_path / out)))
            np.testing.assert_allclose(served(x), _keras_model(by_file, name)(
                x), atol=1e-5)
        return
    given = (models.load_model(str(root / name)) if name == "saved"
             else str(root / name))
    with pytest.raises(ValueError, match=r"model must be a keras\.Model.*"
                       r"Received: model=") as err:
        models.export_model(given, str(tmp_path / "again.onnx"))
    assert "\n" not in str(err.value)
    if name == "saved":
        assert "already exported" in str(err.value)


@pytest.mark.parametrize("name", FILES)
def test_load_served_reads_every_file(files, name):
    root, by_file = files
    x = np.random.RandomState(3).rand(5, 28, 28, 1)  # float64: cast
    if name.endswith(".keras"):
        with pytest.raises(ValueError, match=r"export_model.*Received: "
                           r"path=.*\.keras'") as err:
            models.load_served(str(root / name))
        assert "\n" not in str(err.value)
        return
    served = models.load_served(str(root / name))
    np.testing.assert_allclose(served(x), by_file["adv.keras"](
        x.astype("float32")), atol=1e-5)
