"""The Example blocks of the generative modules run as written."""


import pytest

import keras_adv
from tests.conftest import run_examples

MODULES = [
    "keras_adv.generative.dcgan",
    "keras_adv.generative.networks",
    "keras_adv.generative.monitor",
    "keras_adv.generative.quality",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)


def test_public_names_have_docstrings():
    for name in keras_adv.generative.__all__:
        obj = getattr(keras_adv.generative, name)
        assert obj.__doc__ and "Example" in obj.__doc__, name
