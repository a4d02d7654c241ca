"""The Example blocks of the certification modules, the smoothing defenses
and the smoothing attack run as written."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv

MODULES = [
    "keras_adv.certification._certify",
    "keras_adv.certification.report",
    "keras_adv.defenses.smoothing",
    "keras_adv.attacks._smooth",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    globs = {"keras": keras, "keras_adv": keras_adv, "np": np, "tf": tf}
    result = doctest.testmod(module, extraglobs=globs, verbose=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
