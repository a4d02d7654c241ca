"""`scan_training_set` (`poisoning/scan.py`): its progress lines. The
verdict's numbers are tested in `test_verdict.py` and `test_pipeline.py`."""

import keras
import numpy as np

from keras_adv import poisoning


def _tiny():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(),
        keras.layers.Dense(6, activation="relu"), keras.layers.Dense(2)])
    x = np.random.RandomState(0).rand(40, 8, 8, 1).astype("float32")
    return model, x, np.arange(40) % 2


def test_progress_names_each_stage_on_stderr(capsys):
    model, x, y = _tiny()
    quiet = poisoning.scan_training_set(model, x, y, seed=0, progress=False)
    assert capsys.readouterr().err == ""
    shown = poisoning.scan_training_set(model, x, y, seed=0, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "scan_training_set: representations of 40 rows",
        "scan_training_set: per-class test and trigger test of 2 classes",
        "scan_training_set: spectral signature",
        "scan_training_set: activation clustering"]
    assert shown.flagged("spectral_signature") == quiet.flagged(
        "spectral_signature")
    assert shown.poisoned is quiet.poisoned is False  # classes abstain
