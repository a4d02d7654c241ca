"""The Example blocks of the attack modules run as written."""

import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.attacks._apgd",
    "keras_adv.attacks._deepfool",
    "keras_adv.attacks._pgd",
    "keras_adv.attacks._fgsm",
    "keras_adv.attacks._square",
    "keras_adv.attacks.ascent",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
