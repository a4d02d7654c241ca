"""The Example blocks of the defense, model and data modules run as written."""


import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.defenses.protocol",
    "keras_adv.defenses.tensors",
    "keras_adv.defenses.fgsm_training",
    "keras_adv.defenses.pgd_training",
    "keras_adv.defenses.fast_training",
    "keras_adv.defenses.free_training",
    "keras_adv.defenses.trades",
    "keras_adv.defenses.mart",
    "keras_adv.defenses.functional",
    "keras_adv.defenses.vat",
    "keras_adv.defenses.data_sparsity",
    "keras_adv.layers.temperature",
    "keras_adv.models.mixture",
    "keras_adv.models.features",
    "keras_adv.reporting",
    "keras_adv.models.adversarial",
    "keras_adv.callbacks",
    "keras_adv.datasets",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)
