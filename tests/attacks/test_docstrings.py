"""The Example blocks of the attack modules changed for several inputs run
as written."""

import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.attacks._pgd",
    "keras_adv.attacks._fgsm",
    "keras_adv.attacks.ascent",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
