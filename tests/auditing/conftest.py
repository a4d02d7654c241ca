"""The audited model and its audit, shared by the auditing tests."""

import keras
import pytest

import keras_adv

SUITE = [("apgd-ce", {"steps": 10}), ("square", {"queries": 100})]


@pytest.fixture(scope="module")
def model(mnist5k):
    (x_train, y_train), _ = mnist5k
    keras.utils.set_random_seed(0)
    m = keras_adv.models.small_cnn(seed=0, width=8)
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    m.fit(x_train[:2000], y_train[:2000], epochs=1, batch_size=64, verbose=0)
    return m


@pytest.fixture(scope="module")
def report(model, mnist5k):
    (x_train, y_train), (x, y) = mnist5k
    return keras_adv.audit(model, x[:60], y[:60], eps=[0.05, 0.1], sigma=0.25,
                           n=200, x_train=x_train[:600],
                           y_train=y_train[:600], seed=0, attacks=SUITE,
                           describe={"data": "mnist5k:test",
                                     "source": "model.keras"})
