"""Shared fixtures and helpers: a linear softmax model, a small CNN trained
on mnist5k, a one-input threshold model, NumPy references (softmax, the
input gradient of a linear model's cross-entropy) and the progress
contract of a long function."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_adv import datasets, models  # noqa: E402


@pytest.fixture(scope="session")
def mnist5k():
    return datasets.load("mnist5k")


@pytest.fixture(scope="session")
def trained_cnn(mnist5k):
    """small_cnn trained 3 epochs on the 4000 mnist5k training images
    (about 93% test accuracy, a few seconds on CPU)."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), _ = mnist5k
    model = models.small_cnn(seed=0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def cnn_test_batch(mnist5k, trained_cnn):
    """200 test images the trained CNN classifies correctly, with labels."""
    _, (x_test, y_test) = mnist5k
    pred = np.argmax(trained_cnn.predict(x_test[:300], verbose=0), axis=-1)
    keep = np.flatnonzero(pred == y_test[:300])[:200]
    return x_test[keep], y_test[keep]


def uniform_batch(seed, n, low, high, in_dim=6, classes=4):
    """`(x, y)`: n rows of in_dim uniform features in [low, high) and
    random labels of `classes`, from `np.random.RandomState(seed)` (x
    drawn first); the small batches of the linear-model tests."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(low, high, size=(n, in_dim)).astype("float32")
    return x, rng.randint(0, classes, size=n)


def linear_model(in_dim=6, classes=4, seed=0, softmax=False):
    """Dense model with fixed random weights (logits or softmax outputs)."""
    rng = np.random.RandomState(seed)
    w = rng.normal(size=(in_dim, classes)).astype("float32")
    b = rng.normal(size=(classes,)).astype("float32")
    model = keras.Sequential(
        [keras.Input((in_dim,)),
         keras.layers.Dense(classes, activation="softmax" if softmax else None)]
    )
    model.layers[0].set_weights([w, b])
    return model, w, b


def threshold_model():
    """Logits `[0.5 - x, x - 0.5]` of one input: class 1 exactly where
    x > 0.5."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.array([[-1.0, 1.0]], np.float32),
                                 np.array([0.5, -0.5], np.float32)])
    return model


def to_one(model, x, y):
    """An "attack" that makes every prediction of `threshold_model` class
    1 (eager or traced)."""
    return keras.ops.ones_like(x)


def softmax(z):
    """NumPy softmax over the last axis, in z's dtype."""
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ce_input_gradient(x, y, w, b):
    """d CE(softmax(x @ w + b), y) / dx, row by row: (p - onehot(y)) w^T,
    in the dtype of x @ w + b (pass float64 arrays for float64)."""
    p = softmax(x @ w + b)
    return (p - np.eye(w.shape[1])[y]) @ w.T


def one_line_each_way(call, capsys, start):
    """Runs `call(progress=False)` then `call(progress=True)`; asserts the
    first writes nothing to stderr and the second one line beginning with
    `start` (the end's line); returns both results."""
    quiet = call(progress=False)
    assert capsys.readouterr().err == ""
    shown = call(progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), lines
    return quiet, shown


def accuracy(model, x, y):
    pred = np.argmax(model.predict(np.asarray(x), verbose=0), axis=-1)
    return float(np.mean(pred == np.asarray(y)))


def run_examples(name):
    """Runs the doctest Example blocks of module `name` and checks that there
    were some and that none failed (shared by the docstring tests)."""
    import doctest
    import importlib

    import keras
    import tensorflow as tf

    import keras_adv

    module = importlib.import_module(name)
    globs = {"keras": keras, "keras_adv": keras_adv, "np": np, "tf": tf}
    result = doctest.testmod(module, extraglobs=globs, verbose=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def two_input_model(dict_inputs=False, seed=1, activation="tanh"):
    """Inputs "image" (4,) and "meta" (2,), concatenated, Dense(8), 3
    logits; a dict-input model with `dict_inputs=True`."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((4,), name="image")
    meta = keras.Input((2,), name="meta")
    hidden = keras.layers.Dense(8, activation=activation)(
        keras.layers.Concatenate()([image, meta]))
    out = keras.layers.Dense(3)(hidden)
    if dict_inputs:
        return keras.Model({"image": image, "meta": meta}, out)
    return keras.Model([image, meta], out)
