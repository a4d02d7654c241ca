"""The Example blocks of the generative modules run as written."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv

MODULES = [
    "keras_adv.generative.dcgan",
    "keras_adv.generative.networks",
    "keras_adv.generative.monitor",
    "keras_adv.generative.quality",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    globs = {"keras": keras, "keras_adv": keras_adv, "np": np, "tf": tf}
    result = doctest.testmod(module, extraglobs=globs, verbose=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_public_names_have_docstrings():
    for name in keras_adv.generative.__all__:
        obj = getattr(keras_adv.generative, name)
        assert obj.__doc__ and "Example" in obj.__doc__, name
