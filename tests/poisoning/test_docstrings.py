"""The Example blocks of the poisoning modules run as written."""


import pytest

from tests.conftest import run_examples

MODULES = [
    "keras_adv.poisoning.triggers",
    "keras_adv.poisoning.backdoor",
    "keras_adv.poisoning.spectral",
    "keras_adv.poisoning.strip",
    "keras_adv.poisoning.scan",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    run_examples(name)


def test_public_api_documented():
    from keras_adv import poisoning

    for name in poisoning.__all__:
        doc = getattr(poisoning, name).__doc__ or ""
        assert doc.strip(), name
        assert "Example" in doc or name == "Poisoned", name
