"""The issue's acceptance check: a DCGAN trained on mnist5k gives samples a
classifier recognises, covering every class, closer to the test images
than noise (slow: several minutes on a CPU)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.generative import (
    DCGAN,
    class_coverage,
    frechet_distance,
)
from keras_adv.models import feature_model


@pytest.mark.slow
def test_dcgan_on_mnist5k(mnist5k, trained_cnn, tmp_path):
    (x_train, _), (x_test, _) = mnist5k
    gan = DCGAN((28, 28, 1), width=32, seed=0)
    gan.compile()
    data = (tf.data.Dataset.from_tensor_slices(x_train)
            .shuffle(len(x_train), seed=0).repeat()
            .batch(64, drop_remainder=True))
    gan.fit(data, epochs=1, steps_per_epoch=2000, verbose=0)
    assert int(gan.optimizer.iterations) == 2000

    fake = gan.generate(2000, seed=1)
    coverage = class_coverage(trained_cnn, fake)
    assert coverage.confidence >= 0.75
    assert coverage.min_share >= 0.03
    features = feature_model(trained_cnn)
    noise = np.random.default_rng(0).random((2000, 28, 28, 1), np.float32)
    fid = frechet_distance(features, x_test, fake)
    assert fid < 0.5 * frechet_distance(features, x_test, noise)

    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.generate(16, seed=3),
                               gan.generate(16, seed=3), atol=1e-6)
