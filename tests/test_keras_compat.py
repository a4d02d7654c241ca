"""The private Keras names keras_adv reads, each through `_keras_compat`:
they still mean what the package expects on the installed Keras."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _keras_compat


def test_flatten_layers_finds_nested_layers():
    inner = keras.Sequential([keras.Input((3,)),
                              keras.layers.BatchNormalization(name="bn")])
    outer = keras.Sequential([keras.Input((3,)), inner,
                              keras.layers.Dense(2, name="head")])
    names = [layer.name for layer in _keras_compat.flatten_layers(outer)]
    assert names[0] == outer.name and {"bn", "head", inner.name} <= set(names)
    assert _keras_compat.flatten_layers(object()) == []


def test_softmax_logits_reads_the_pre_softmax_values():
    z = tf.constant([[1.0, 2.0, 4.0]])
    p = keras.activations.softmax(z)
    np.testing.assert_allclose(_keras_compat.softmax_logits(p), z)
    assert _keras_compat.softmax_logits(z) is z


def test_multi_worker_is_false_on_one_process():
    assert not _keras_compat.multi_worker(tf.distribute.get_strategy())
