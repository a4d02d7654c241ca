"""The Example blocks of the evaluation modules run as written."""

import pytest

from tests.conftest import run_examples


@pytest.mark.parametrize("name", [
    "keras_adv.evaluation.run",
    "keras_adv.evaluation.plan",
    "keras_adv.evaluation.masking",
    "keras_adv.evaluation.report",
])
def test_examples_run(name):
    run_examples(name)
