"""The Example blocks of the layer, model and data modules run as written
(the defense modules' run in tests/defenses/test_docstrings.py, reporting's
in tests/test_reporting.py)."""

import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.layers.temperature",
    "keras_adv.models.mixture",
    "keras_adv.models.features",
    "keras_adv.models.adversarial",
    "keras_adv.callbacks",
    "keras_adv.datasets",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
