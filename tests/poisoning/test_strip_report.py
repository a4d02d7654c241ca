"""STRIP entropy and threshold, the poisoning report and its measures, exact
on tiny models."""

import json

import keras
import numpy as np
import pytest

from keras_adv.poisoning import (
    PoisoningReport,
    attack_success_rate,
    clean_accuracy,
    evaluate_poisoning,
    strip_entropy,
    strip_threshold,
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


def test_strip_entropy_exact_on_constant_model():
    inp = keras.Input((2, 2, 1))
    out = keras.layers.Dense(4, kernel_initializer="zeros")(
        keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)  # uniform softmax: entropy log 4
    x = np.zeros((3, 2, 2, 1), "float32")
    h = strip_entropy(model, x, np.ones((5, 2, 2, 1)), overlays=4, seed=0)
    np.testing.assert_allclose(h, np.log(4.0), rtol=1e-6)


def test_strip_entropy_triggered_low():
    model = patch_detector()
    rng = np.random.RandomState(0)
    clean = rng.uniform(0, 0.05, size=(20, 5, 5, 1)).astype("float32")
    x = np.zeros((2, 5, 5, 1), "float32")
    x[1, 3, 3, 0] = 1.0  # the trigger pixel survives any superimposition
    h = strip_entropy(model, x, clean, overlays=10, seed=0)
    assert h[1] < 1e-6 < h[0]


def test_strip_threshold_quantile():
    assert strip_threshold(np.arange(100.0), frr=0.05) == pytest.approx(4.95)
    assert strip_threshold([1.0, 2.0], frr=0.5) == 1.5


@pytest.mark.parametrize("kwargs, match", [
    (dict(overlays=0), "Received: overlays=0"),
    (dict(clip=(1, 0)), r"Received: clip=\(1, 0\)"),
    (dict(clean_x=np.zeros((2, 3, 3, 1))), "clean_x must hold images of"),
])
def test_strip_bad_inputs(kwargs, match):
    args = dict(clean_x=np.zeros((2, 5, 5, 1)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        strip_entropy(patch_detector(), np.zeros((1, 5, 5, 1)), **args)
    with pytest.raises(ValueError, match="Received: frr=1.0"):
        strip_threshold([1.0], frr=1.0)
    with pytest.raises(ValueError, match="clean_entropy must be"):
        strip_threshold([])
