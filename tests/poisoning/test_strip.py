"""STRIP entropy and threshold (`poisoning/strip.py`), exact on tiny
models."""

import keras
import numpy as np
import pytest

from keras_adv.poisoning import strip_entropy, strip_threshold
from tests.conftest import one_line_each_way
from tests.poisoning.test_report import patch_detector


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


def test_strip_progress_counts_the_inputs_on_stderr(capsys):
    model = patch_detector()
    rng = np.random.RandomState(0)
    clean = rng.uniform(0, 0.05, size=(20, 5, 5, 1)).astype("float32")
    x = rng.uniform(0, 0.5, size=(7, 5, 5, 1)).astype("float32")
    kwargs = dict(overlays=4, seed=0, batch_size=8)  # 2 inputs per pass
    quiet, shown = one_line_each_way(
        lambda progress: strip_entropy(model, x, clean, progress=progress,
                                       **kwargs),
        capsys, "strip_entropy: blended 7/7 inputs (")  # the end's line
    np.testing.assert_array_equal(quiet, shown)
