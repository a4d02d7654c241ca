"""models/features.py: `feature_model`, the penultimate representation or a
named layer's output, also through an `AdversarialModel`."""

import keras
import numpy as np
import pytest

from keras_adv import defenses
from keras_adv.models import AdversarialModel, feature_model, small_cnn


def test_penultimate_features_feed_the_last_layer():
    model = small_cnn(seed=0)
    x = np.random.RandomState(0).rand(3, 28, 28, 1).astype("float32")
    features = feature_model(model)(x)
    assert features.shape == (3, 128)
    logits = model.layers[-1](features)
    np.testing.assert_allclose(logits, model(x), rtol=1e-5, atol=1e-5)
    named = feature_model(model, layer=model.layers[2].name)
    assert named.output_shape == (None, 7 * 7 * 64)


def test_an_adversarial_model_gives_its_wrapped_model_features():
    base = small_cnn(seed=0)
    wrapped = AdversarialModel(base, defense=defenses.FGSMTraining(eps=0.1))
    x = np.random.RandomState(1).rand(2, 28, 28, 1).astype("float32")
    np.testing.assert_allclose(feature_model(wrapped)(x),
                               feature_model(base)(x))


def test_bad_layer_and_model_without_graph():
    with pytest.raises(ValueError, match=r"Received: layer='nope'"):
        feature_model(small_cnn(), layer="nope")

    class Net(keras.Model):
        def call(self, x):
            return x

    net = Net()
    net(np.zeros((1, 2), "float32"))
    with pytest.raises(ValueError, match=r"must be built with known inputs"):
        feature_model(net)
