"""Small models and SavedModels for the serving tests and the bad-input
catalogue (tests/test_bad_input.py, [serving]): each helper builds what one
case needs in a fresh temporary directory."""

import functools
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import AdversarialModel, export_model, load_served


def tmp(name):
    """A path `name` inside a fresh temporary directory."""
    return os.path.join(tempfile.mkdtemp(), name)


def dense(in_dim=6, classes=4, seed=0):
    """Dense model with fixed weights: `in_dim` features -> logits."""
    rng = np.random.RandomState(seed)
    model = keras.Sequential([keras.Input((in_dim,)),
                              keras.layers.Dense(classes)])
    model.layers[0].set_weights([
        rng.normal(size=(in_dim, classes)).astype("float32"),
        rng.normal(size=(classes,)).astype("float32")])
    return model


def two_inputs():
    """A functional model of two inputs, `a` and `b`."""
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    out = keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], out, name="two_inputs")


def _twice(t):
    return tf.numpy_function(lambda v: v * 2, [t], tf.float32)


def numpy_lambda():
    """A model whose Lambda layer runs NumPy (Python) code."""
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Lambda(_twice, output_shape=(4,), name="numpy_twice"),
        keras.layers.Dense(2)], name="numpy_lambda")


def tf_lambda():
    """A model whose Lambda layer is TensorFlow ops only."""
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Lambda(lambda t: 2.0 * t, name="double"),
        keras.layers.Dense(2)], name="tf_lambda")


class _Twin(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def first(self, x):
        return 2.0 * x

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def second(self, x):
        return 3.0 * x


def saved_module(signatures):
    """A `tf.saved_model.save` directory of a module with two functions,
    exposing `signatures` (names among "first", "second"; "none": no
    signature at all)."""
    module = _Twin()
    path = tmp("module")
    named = {n: getattr(module, n) for n in signatures if n != "none"}
    tf.saved_model.save(module, path, signatures=named or None)
    return path


def plain_saved(model=None):
    """A Keras model written by plain `tf.saved_model.save`
    (`serving_default` only)."""
    path = tmp("plain")
    tf.saved_model.save(model or dense(), path)
    return path


@functools.cache
def served(suffix=""):
    """`load_served` of `dense()` exported as `m{suffix}` (cached)."""
    return load_served(export_model(dense(), tmp("m" + suffix)))


def adversarial(base=None, *, steps=1):
    """An AdversarialModel (PGD training, 1 step) around `base`, compiled
    and trained on one batch of 8 random examples."""
    keras.utils.set_random_seed(0)
    base = base or dense()
    model = AdversarialModel(base, defense=defenses.PGDTraining(
        eps=0.05, steps=steps))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    x = np.random.RandomState(0).rand(8, *base.input_shape[1:])
    model.fit(x.astype("float32"), np.arange(8) % base.output_shape[-1],
              batch_size=8, epochs=1, verbose=0)
    return model


def loaded_adversarial():
    """An AdversarialModel saved as .keras and loaded back, never called."""
    path = tmp("adv.keras")
    adversarial().save(path)
    return keras.models.load_model(path)


def assert_tflite_file(path):
    """`path` is a TFLite flatbuffer ("TFL3" at byte 4) that runs."""
    with open(path, "rb") as f:
        assert f.read(8)[4:] == b"TFL3"
    assert load_served(path)(np.zeros((2, 6))).shape == (2, 4)
