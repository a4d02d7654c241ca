"""`validation.eps_reach`, `eps_beyond_range` and `warn_eps_range`: the
largest distance in a box under each norm, and the warning beyond it."""

import math
import warnings

import pytest

from keras_adv import validation


def test_reach_per_norm():
    assert validation.eps_reach("linf", (0.0, 1.0), 784) == 1.0
    assert validation.eps_reach("linf", (0.0, 255.0), 3) == 255.0
    assert validation.eps_reach("l2", (0.0, 1.0), 784) == 28.0
    assert validation.eps_reach("l2", (-1.0, 1.0), 2) == 2 * math.sqrt(2)
    assert validation.eps_reach("l2", None, 784) is None


def test_beyond_range_names_every_budget_beyond_it():
    message = validation.eps_beyond_range([0.5, 1.0, 1.5, 2.0], "linf",
                                          (0.0, 1.0), 10)
    assert message.startswith("eps 1.5, 2 is larger than the data's range "
                              "under linf (1: box [0, 1], its width)")
    assert "\n" not in message
    assert validation.eps_beyond_range([1.0], "linf", (0.0, 1.0), 10) is None
    assert validation.eps_beyond_range([9.0], "linf", None, 10) is None


def test_warn_is_a_user_warning_subclass():
    with pytest.warns(validation.EpsRangeWarning, match="eps 30 is larger"):
        out = validation.warn_eps_range([30.0], "l2", (0.0, 1.0), 784,
                                        stacklevel=1)
    assert out.startswith("eps 30")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validation.warn_eps_range([3.0], "l2", (0.0, 1.0), 784) is None
