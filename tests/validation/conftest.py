"""The linear model and the batch the validation tests attack."""

import numpy as np
import pytest

from tests.conftest import linear_model

X = np.full((4, 6), 0.5, "float32")
Y = np.array([0, 1, 2, 3])


@pytest.fixture(scope="module")
def model():
    return linear_model()[0]
