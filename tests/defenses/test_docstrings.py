"""The Example blocks of the defense modules run as written (smoothing's run
with the certification modules, tests/certification/test_docstrings.py)."""

import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.defenses.combined",
    "keras_adv.defenses.data_sparsity",
    "keras_adv.defenses.distillation",
    "keras_adv.defenses.fast_training",
    "keras_adv.defenses.fgsm_training",
    "keras_adv.defenses.free_training",
    "keras_adv.defenses.functional",
    "keras_adv.defenses.mart",
    "keras_adv.defenses.mixture",
    "keras_adv.defenses.pgd_training",
    "keras_adv.defenses.protocol",
    "keras_adv.defenses.sap",
    "keras_adv.defenses.tensors",
    "keras_adv.defenses.trades",
    "keras_adv.defenses.vat",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
