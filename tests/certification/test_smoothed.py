"""SmoothedClassifier: its table travels in the config, the saved model
predicts as the original, inputs are checked and cast."""

import time

import keras
import numpy as np
import pytest

from keras_adv.certification import SmoothedClassifier, smoothed
from keras_adv.certification.thresholds import decision_thresholds

X = np.random.RandomState(0).uniform(-1, 1, (5, 4)).astype("float32")


def base_model():
    """A fixed linear model: 4 features -> 3 logits."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    rng = np.random.RandomState(1)
    model.layers[0].set_weights([3 * rng.normal(size=(4, 3)).astype(
        "float32"), np.zeros(3, "float32")])
    return model


def make(**kwargs):
    """A seeded smoothed classifier of `base_model` (n = 60)."""
    return SmoothedClassifier(base_model(), sigma=0.25, n=60, alpha=0.01,
                              seed=0, **kwargs)


def test_config_carries_the_table(monkeypatch):
    model = make()
    config = model.get_config()
    assert isinstance(config["thresholds"], str)
    monkeypatch.setattr(smoothed, "decision_thresholds", None)  # not called
    again = SmoothedClassifier.from_config(config)
    np.testing.assert_array_equal(again.thresholds,
                                  decision_thresholds(60, alpha=0.01))
    config.pop("thresholds")  # a config written before the table travelled
    monkeypatch.undo()
    np.testing.assert_array_equal(
        SmoothedClassifier.from_config(config).thresholds, model.thresholds)


def test_keras_round_trip_predicts_identically(tmp_path):
    model = make(batch_size=25)
    model(X)
    path = str(tmp_path / "smoothed.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    want, got = model(X), loaded(X)  # both continue from the saved state
    for key in ("prediction", "counts", "nonfinite"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    assert (want["prediction"].numpy() >= 0).sum() >= 3  # not all abstain


def test_large_n_builds_fast_and_saves_small():
    start = time.perf_counter()
    model = SmoothedClassifier(base_model(), sigma=0.25, n=100_000)
    seconds = time.perf_counter() - start
    assert seconds < 5.0  # measured 0.15 s; the per-count binomtest: hours
    assert len(model.get_config()["thresholds"]) < 10_000


def test_float64_inputs_are_cast():
    want = make()(X)
    got = make()(X.astype("float64"))
    for key in ("prediction", "counts"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


@pytest.mark.parametrize("shape,needle", [
    ((5, 3), r"inputs must match the input shape of the model \(None, 4\)\. "
             r"Received: inputs with shape \(5, 3\)$"),
    ((4,), r"inputs must have a batch axis: the model takes inputs of shape "
           r"\(None, 4\)\. Received: inputs with shape \(4,\)"),
    ((2, 4, 3), r"Received: inputs with shape \(2, 4, 3\)$"),
])
def test_wrong_shapes_are_one_line_errors(shape, needle):
    with pytest.raises(ValueError, match=needle) as info:
        make()(np.zeros(shape, "float32"))
    assert "\n" not in str(info.value)


def test_symbolic_call_keeps_working():
    outputs = make()(keras.Input((4,)))
    assert sorted(outputs) == ["counts", "nonfinite", "prediction"]
    assert tuple(outputs["counts"].shape) == (None, 3)


def test_a_table_of_another_n_is_refused():
    text = make().get_config()["thresholds"]
    with pytest.raises(ValueError, match=(
            r"decision table of n=61 as get_config writes it\. Received")):
        SmoothedClassifier(base_model(), sigma=0.25, n=61, thresholds=text)
