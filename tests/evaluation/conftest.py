"""Fixtures shared by the evaluation tests."""

import pytest


@pytest.fixture(scope="module")
def data(cnn_test_batch, mnist5k):
    """The first 60 mnist5k test images and labels (the trained CNN's
    fixture built first)."""
    _, (x_test, y_test) = mnist5k
    return x_test[:60], y_test[:60]
