"""Fixtures of the defense tests."""

import numpy as np
import pytest

from tests.conftest import linear_model


@pytest.fixture
def linear_batch():
    """A linear logits model with its weights, a batch inside (0.1, 0.9), a
    perturbed copy in the box, labels of 4 classes and sample weights."""
    model, w, b = linear_model()
    rng = np.random.RandomState(2)
    x = rng.uniform(0.1, 0.9, (12, 6)).astype("float32")
    x_adv = np.clip(x + rng.uniform(-0.2, 0.2, x.shape), 0, 1).astype("float32")
    y = rng.randint(0, 4, 12)
    sw = rng.uniform(0, 2, 12).astype("float32")
    return model, w, b, x, x_adv, y, sw
