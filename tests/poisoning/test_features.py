"""The representations the detectors read (`poisoning/features.py`) and
the feature model beneath them."""

import keras
import numpy as np
import pytest

from keras_adv import models
from keras_adv.models import feature_model
from keras_adv.poisoning import (
    activation_clustering,
    features,
    spectral_signature,
)
from tests.poisoning.planted import flat_model, planted


def test_feature_model_layers():
    m = models.small_cnn(seed=0)
    assert feature_model(m).output_shape == (None, 128)
    assert feature_model(m, layer=m.layers[2].name).output_shape == (None, 3136)
    fx = keras.Input((4, 5, 1))
    h = keras.layers.Flatten(name="f")(fx)
    func = keras.Model(fx, keras.layers.Dense(2)(keras.layers.Dense(7)(h)))
    assert feature_model(func).output_shape == (None, 7)
    x = np.random.RandomState(0).normal(size=(3, 4, 5, 1)).astype("float32")
    np.testing.assert_allclose(feature_model(flat_model())(x),
                               x.reshape(3, 20))


def test_extract_is_the_flattened_representation_in_float64_batches():
    x = np.random.RandomState(0).rand(7, 4, 5, 1).astype("float32")
    out = features.extract(flat_model(), x, batch_size=3)
    assert out.dtype == np.float64 and out.shape == (7, 20)
    np.testing.assert_allclose(out, x.reshape(7, 20), rtol=1e-6)


@pytest.mark.parametrize("call", [spectral_signature, activation_clustering])
def test_bad_inputs_of_both_detectors(call):
    x, y, _ = planted()
    model = flat_model()
    extra = {"expected_fraction": 0.1} if call is spectral_signature else {}
    with pytest.raises(ValueError, match="Received: layer='nope'"):
        call(model, x, y, layer="nope", **extra)
    with pytest.raises(ValueError, match="y must have one label per image"):
        call(model, x, y[:-1], **extra)
    with pytest.raises(ValueError, match="x must not be empty"):
        call(model, x[:0], y[:0], **extra)
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        call(lambda t: t, x, y, **extra)
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="model must be built"):
        call(unbuilt, x, y, **extra)
