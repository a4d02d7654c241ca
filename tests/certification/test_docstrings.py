"""The Example blocks of the certification modules, the smoothing defenses
and the smoothing attack run as written."""


import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.certification._certify",
    "keras_adv.certification.report",
    "keras_adv.certification.smoothed",
    "keras_adv.certification.thresholds",
    "keras_adv.defenses.smoothing",
    "keras_adv.attacks._smooth",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
