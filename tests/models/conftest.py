"""Shared by the models tests: a batch for the linear model and the linear
model wrapped in a compiled `AdversarialModel`."""

import keras
import pytest

from keras_adv.models import AdversarialModel
from tests.conftest import linear_model, uniform_batch

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def linear_adv_model(defense, seed=0, lr=0.5, loss=SPARSE_CE, **compile_kw):
    """`AdversarialModel(linear_model(seed), defense)` compiled with SGD(lr);
    returns it with the linear model's weights `w` and `b`."""
    base, w, b = linear_model(seed=seed)
    model = AdversarialModel(base, defense=defense)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, **compile_kw)
    return model, w, b


@pytest.fixture
def batch():
    return uniform_batch(1, 16, 0.05, 0.95)
