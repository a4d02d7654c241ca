"""RandomizedMixture: draw frequencies, gradient, validation, save, load and
export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import pgd
from keras_adv.models import RandomizedMixture
from tests.defenses.nets import X, mlp


def test_mixture_draw_frequencies_and_gradient():
    a = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False,
                          kernel_initializer="zeros")])
    b = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False,
                          kernel_initializer="ones")])
    mix = RandomizedMixture([a, b], probabilities=[0.3, 0.7], seed=0)
    x = np.ones((20000, 6), "float32")
    out = mix(x).numpy()
    assert np.mean(out[:, 0] == 6.0) == pytest.approx(0.7, abs=0.015)
    x_adv = pgd(mix, X, np.zeros(16, "int64"), eps=0.1, steps=2, seed=0,
                eot_samples=4)
    assert np.isfinite(x_adv.numpy()).all()


def test_mixture_validation():
    m = mlp()
    with pytest.raises(ValueError, match=r"Received: probabilities=\[0.5, 0.6\]"):
        RandomizedMixture([m, m], probabilities=[0.5, 0.6])
    with pytest.raises(ValueError, match="members must be"):
        RandomizedMixture([])


def test_mixture_save_load_export_stay_random(tmp_path):
    mix = RandomizedMixture([mlp(0), mlp(1)], probabilities=[0.5, 0.5],
                            seed=0)
    mix(X)
    path = str(tmp_path / "mix.keras")
    mix.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, RandomizedMixture)
    assert loaded.probabilities == [0.5, 0.5]
    for a, b in zip(mix.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    export_dir = str(tmp_path / "served")
    mix.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    outs = [served.serve(tf.constant(X)).numpy() for _ in range(5)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])
