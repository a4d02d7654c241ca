"""Fixtures and helpers shared by the evaluation tests."""

import pytest

SUITE = ["fgsm", ("pgd", {"steps": 3})]
TIMING_KEYS = ("timings", "seconds", "seconds_per_example")


def plain(report):
    """The report's dict without wall-clock figures."""
    return {k: v for k, v in report.to_dict().items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def data(cnn_test_batch, mnist5k):
    """The first 60 mnist5k test images and labels (the trained CNN's
    fixture built first)."""
    _, (x_test, y_test) = mnist5k
    return x_test[:60], y_test[:60]


@pytest.fixture(scope="module")
def test_set(mnist5k):
    """The 1000 mnist5k test images and labels."""
    _, (x, y) = mnist5k
    return x, y
