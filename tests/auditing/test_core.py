"""keras_adv.audit (auditing/core.py) on a small trained CNN: every section
holds the numbers of the function it calls, the example grid, the
suspicious rows, and arguments refused before any work."""

import base64
import io
import sys

import numpy as np
import pytest

import keras_adv
from keras_adv.auditing import core
from tests.auditing.conftest import SUITE
from tests.auditing.test_report import scan_report


def test_sections_hold_the_numbers_of_the_functions_they_call(report, model,
                                                              mnist5k):
    (x_train, y_train), (x, y) = mnist5k
    pred = model.predict(x[:60], verbose=0).argmax(-1)
    assert report.evasion.clean_accuracy == np.mean(pred == y[:60])
    alone = keras_adv.evaluate_robustness(model, x[:60], y[:60],
                                          eps=[0.05, 0.1], attacks=SUITE,
                                          seed=0, progress=False)
    assert report.evasion.robust_accuracy_curve == alone.robust_accuracy_curve
    certified = keras_adv.certification.evaluate_certified(
        model, x[:60], y[:60], sigma=0.25, n=200, seed=0)
    assert (report.certification.certified_accuracy_curve
            == certified.certified_accuracy_curve)
    scan = keras_adv.poisoning.scan_training_set(
        model, x_train[:600], y_train[:600], seed=0)
    assert report.poisoning.methods == scan.methods
    assert report.poisoning.classes == scan.classes
    assert (report.poisoning.poisoned, report.poisoning.alpha,
            report.poisoning.expected_fraction) == (scan.poisoned, 0.05, None)
    assert report.summary["num_examples"] == 60
    assert report.summary["eps"] == [0.05, 0.1]
    assert report.summary["parameters"] == model.count_params()
    # `describe` names the run; what it leaves out keeps the defaults.
    assert (report.summary["data"], report.summary["source"],
            report.summary["train_data"], report.summary["command"]) == (
        "mnist5k:test", "model.keras", None,
        "keras_adv.audit(...) from Python")


def test_a_progress_callable_hears_every_stage(model, mnist5k):
    (x_train, y_train), (x, y) = mnist5k
    stages = []
    keras_adv.audit(model, x[:8], y[:8], eps=0.05, attacks=["fgsm"],
                    seed=0, progress=stages.append)
    assert stages[0].startswith("attacks on 8 examples at eps 0.05")
    assert stages[1:] == ["the example grid"]


def test_example_grid_rows_and_suspicious_rows(report):
    rows = report.examples
    assert 1 <= len(rows) <= 8
    for row in rows:
        assert len(row["adversarial"]) == 2 and 0 <= row["index"] < 60
    # The rows shown are the verdict's rows to remove, none when clean.
    poison = report.poisoning
    assert set(report.suspicious) <= set(poison.flagged())
    assert len(report.suspicious) == min(16, len(poison.flagged()))
    assert ("suspicious" in report.figures) == poison.poisoned


def test_without_sigma_or_training_data_the_sections_are_left_out(model,
                                                                  mnist5k):
    _, (x, y) = mnist5k
    r = keras_adv.audit(model, x[:20], y[:20], eps=0.1, seed=1,
                        attacks=SUITE[:1])
    assert r.certification is None and r.poisoning is None
    assert sorted(r.figures) == ["examples", "robustness"]
    text = r.to_html()
    assert "Certification" not in text and "Poisoning" not in text


def test_bad_input_is_the_called_functions_one_line_error(model, mnist5k):
    _, (x, y) = mnist5k
    with pytest.raises(ValueError, match="Received: eps=-0.1"):
        keras_adv.audit(model, x[:5], y[:5], eps=-0.1)
    with pytest.raises(ValueError, match="Received: sigma=0"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, sigma=0)
    with pytest.raises(ValueError, match="Received: x_train alone"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, x_train=x[:5])


def test_bad_arguments_are_refused_before_any_work(model, mnist5k):
    _, (x, y) = mnist5k
    stages = []
    for kwargs, match in [
            ({"num_examples": -1}, r"Received: num_examples=-1"),
            ({"num_examples": 0}, r"Received: num_examples=0"),
            ({"num_examples": 2.5}, r"Received: num_examples=2\.5"),
            ({"num_examples": True}, r"Received: num_examples=True")]:
        with pytest.raises(ValueError, match=match) as info:
            keras_adv.audit(model, x[:5], y[:5], eps=0.1,
                            progress=stages.append, **kwargs)
        assert ("must be >= 1" in str(info.value)
                or "must be an integer" in str(info.value))
    with pytest.raises(ValueError, match=r"labels of x.* Received: y=None"):
        keras_adv.audit(model, x[:5], None, eps=0.1, progress=stages.append)
    with pytest.raises(ValueError, match=r"Received: y of length 4"):
        keras_adv.audit(model, x[:5], y[:4], eps=0.1, progress=stages.append)
    assert stages == []


@pytest.mark.parametrize("module", ["jinja2", "matplotlib", "sklearn"])
def test_missing_page_modules_are_named_before_any_work(module, model,
                                                        mnist5k, monkeypatch):
    (x_train, y_train), (x, y) = mnist5k
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    stages = []
    extra = "poisoning" if module == "sklearn" else "audit"
    with pytest.raises(ModuleNotFoundError,
                       match=rf"pip install 'keras_adv\[{extra}\]'\. "
                       rf"Received: {module} not installed"):
        keras_adv.audit(model, x[:5], y[:5], eps=0.1, x_train=x_train[:50],
                        y_train=y_train[:50], progress=stages.append)
    assert stages == []
    if module == "sklearn":  # needed by the poisoning scan only
        with pytest.raises(ValueError, match="Received: eps=-1"):
            keras_adv.audit(model, x[:5], y[:5], eps=-1)


def test_one_hot_labels_name_the_true_classes(model, mnist5k, monkeypatch):
    """One-hot y and y_train are made sparse once: the example grid's rows
    and the suspicious images' titles name the true classes, and the
    evasion counts the same correct examples as sparse labels."""
    (x_train, y_train), (x, y) = mnist5k
    titles = []
    grid_png = core._grid_png
    monkeypatch.setattr(core, "_grid_png", lambda images, t: (
        titles.append(list(t)), grid_png(images, t))[1])
    # 100 rows are too few for a verdict (the scan abstains on every class):
    # the rows shown are set here, so that their titles are drawn.
    monkeypatch.setattr(core, "_suspicious", lambda poison: [0, 5, 17])
    report = keras_adv.audit(model, x[:16], np.eye(10)[y[:16]], eps=[0.1],
                             seed=0, attacks=SUITE[:1], num_examples=12,
                             x_train=x_train[:100],
                             y_train=np.eye(10)[y_train[:100]])
    rows = report.examples
    assert rows and [r["label"] for r in rows] == [int(y[r["index"]])
                                                   for r in rows]
    pred = model.predict(x[:12], verbose=0).argmax(-1)
    assert report.evasion.num_examples == 12
    assert report.evasion.clean_accuracy == np.mean(pred == y[:12])
    assert report.suspicious == [0, 5, 17] and titles == [
        [f"row {i}, label {int(y_train[i])}" for i in report.suspicious]]


def refused_audit(hide=None, **kwargs):
    """`keras_adv.audit` of a tiny linear model on 4 examples with
    `kwargs` (the catalogue's calls, tests/test_bad_input.py [audit]);
    `hide` names a module made unimportable for the call."""
    from tests.conftest import linear_model

    x = np.full((4, 6), 0.5, "float32")
    args = {"y": np.arange(4), "eps": 0.1, **kwargs}
    saved = sys.modules.get(hide, False) if hide else False
    if hide:
        sys.modules[hide] = None
    try:
        return keras_adv.audit(linear_model()[0], x, args.pop("y"), **args)
    finally:
        if hide and saved is False:
            del sys.modules[hide]
        elif hide:
            sys.modules[hide] = saved


def test_suspicious_rows_come_from_each_suspect_class_in_turn():
    poison = scan_report(True)
    poison.classes["2"].update(suspect=True, flagged=[900, 901])
    poison.suspect_classes = [0, 2]
    assert core._suspicious(poison)[:5] == [500, 900, 501, 901, 502]
    assert len(core._suspicious(poison)) == 16
    assert core._suspicious(scan_report(False)) == []


@pytest.mark.parametrize("kwargs,match", [
    ({"poison_alpha": 0}, r"poison_alpha must be a number in \(0, 1\)\. "
     r"Received: poison_alpha=0$"),
    ({"poison_alpha": 1.0}, r"Received: poison_alpha=1\.0$"),
    ({"poison_alpha": float("nan")}, r"Received: poison_alpha=nan$"),
    ({"poison_alpha": True}, r"Received: poison_alpha=True$"),
    ({"expected_fraction": 1.5}, r"expected_fraction must be a number in "
     r"\[0, 1\]\. Received: expected_fraction=1\.5$"),
])
def test_bad_poisoning_settings_are_refused_before_any_work(kwargs, match):
    stages = []
    with pytest.raises(ValueError, match=match):
        refused_audit(progress=stages.append, **kwargs)
    assert stages == []


def assert_no_rows(rows):
    """The rows the audit shows for a clean verdict (the catalogue's
    [audit] results): none."""
    assert rows == [], rows


def test_the_grid_reads_integer_images_in_their_own_box():
    """Integer training images are drawn from (0, 255): a uint8 tile of 64
    is a dark grey (1/4) on the page, not a saturated white."""
    import matplotlib.image

    tile = np.full((12, 12, 1), 64, np.uint8)
    png = core._image_grid([[(tile, "row 0, label 3", "black")] * 2],
                           width=1.6, fontsize=7)
    pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(png)))
    grey = pixels[..., :3].mean(-1)
    assert np.sum(np.abs(grey - 64 / 255) < 0.02) > 100
    floats = core._unit([np.full((2, 2, 1), 1.5, np.float32)])
    assert floats.dtype == np.float32 and floats.max() == 1.0
