"""The poisoning report and its measures (`poisoning/report.py`), exact on
tiny models."""

import json

import keras
import numpy as np
import pytest

from keras_adv.poisoning import (
    PoisoningReport,
    attack_success_rate,
    clean_accuracy,
    evaluate_poisoning,
)


def patch_detector(classes=3):
    """Logits of 5x5 images: class 0 = 100 * pixel (3, 3), class 1 = the sum
    of the pixels, class 2 = 0.5. The patch trigger of a 5x5 image covers
    rows and columns 0-3 (one pixel in from the bottom-right), so it
    decides class 0."""
    inp = keras.Input((5, 5, 1))
    flat = keras.layers.Flatten()(inp)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inp, dense(flat))
    w = np.zeros((25, classes), "float32")
    w[:, 1] = 1.0  # class 1 for any bright image
    w[3 * 5 + 3, 0] = 100.0  # pixel (3, 3) is inside the 4x4 patch at (0, 0)
    dense.set_weights([w, np.array([0, 0, 0.5], "float32")[:classes]])
    return model


def test_measures_exact():
    model = patch_detector()
    x = np.zeros((6, 5, 5, 1), "float32")
    x[:3, 0, :, 0] = 0.5  # sum 2.5 -> class 1; zeros -> class 2 (0.5)
    y = np.array([1, 1, 0, 2, 2, 1])
    x0 = x.copy()
    assert clean_accuracy(model, x, y) == pytest.approx(4 / 6)
    # every non-target row triggered goes to class 0
    assert attack_success_rate(model, x, y, target=0) == 1.0
    assert attack_success_rate(model, x, y, target=1) == 0.0
    np.testing.assert_array_equal(x, x0)
    r = evaluate_poisoning(model, x, y, target=0, trigger="patch")
    assert isinstance(r, PoisoningReport)
    assert r.num_examples == 6 and r.clean_accuracy == pytest.approx(4 / 6)
    assert r.attack_success_rate == 1.0 and r.triggered_accuracy == 0.0
    d = json.loads(r.to_json())
    assert PoisoningReport.from_dict(d) == r
    assert d["target"] == 0 and d["trigger"] == "patch"
    assert "attack success rate" in r.table() and "100.00%" in r.table()


def test_report_json_file(tmp_path):
    r = PoisoningReport(1, "blend", 10, 0.9, 0.5, 0.3, 1.0)
    r.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["clean_accuracy"] == 0.9


def test_measure_bad_inputs():
    model = patch_detector()
    x = np.zeros((4, 5, 5, 1), "float32")
    with pytest.raises(ValueError, match="Received: target=3"):
        attack_success_rate(model, x, [0, 1, 2, 0], target=3)
    with pytest.raises(ValueError, match="every label equal to target"):
        attack_success_rate(model, x, [0, 0, 0, 0], target=0, trigger="patch")
    with pytest.raises(ValueError, match="y must have one label"):
        evaluate_poisoning(model, x, [0, 1], target=0, trigger="patch")
    with pytest.raises(ValueError, match="Received: trigger='x'"):
        evaluate_poisoning(model, x, [0, 1, 2, 0], target=0, trigger="x")


def test_evaluate_poisoning_progress_names_each_stage_on_stderr(capsys):
    model = patch_detector()
    x = np.zeros((6, 5, 5, 1), "float32")
    x[:3, 0, :, 0] = 0.5
    y = np.array([1, 1, 0, 2, 2, 1])
    quiet = evaluate_poisoning(model, x, y, target=0, trigger="patch",
                               progress=False)
    assert capsys.readouterr().err == ""
    shown = evaluate_poisoning(model, x, y, target=0, trigger="patch",
                               progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "evaluate_poisoning: the patch trigger on the images outside class 0",
        "evaluate_poisoning: clean accuracy on 6 images"]
    quiet.seconds = shown.seconds = 0.0
    assert quiet == shown
