"""The Example blocks of the poisoning modules run as written."""

import doctest
import importlib

import keras
import numpy as np
import pytest

import keras_adv

MODULES = [
    "keras_adv.poisoning.triggers",
    "keras_adv.poisoning.backdoor",
    "keras_adv.poisoning.features",
    "keras_adv.poisoning.spectral",
    "keras_adv.poisoning.strip",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    globs = {"keras": keras, "keras_adv": keras_adv, "np": np}
    result = doctest.testmod(module, extraglobs=globs, verbose=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_public_api_documented():
    from keras_adv import poisoning

    for name in poisoning.__all__:
        doc = getattr(poisoning, name).__doc__ or ""
        assert doc.strip(), name
        assert "Example" in doc or name == "Poisoned", name
