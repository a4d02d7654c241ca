"""`evaluate_robustness` names an eps beyond the data's range: an
`EpsRangeWarning` (a `UserWarning`) pointing at the caller's line, from the
clip box, or from the data's own range without one."""

import warnings

import numpy as np
import pytest

from keras_adv import validation
from keras_adv.evaluation import evaluate_robustness
from keras_adv.evaluation.plan import make_plan, warn_eps_range
from tests.conftest import linear_model

X = np.random.RandomState(0).uniform(0.2, 0.8, (8, 6)).astype("float32")
X[0, :2] = 0.2, 0.8  # the data's range: [0.2, 0.8]
Y = np.arange(8) % 4


def _evaluate(**kwargs):
    model = linear_model(in_dim=6, classes=4)[0]
    return evaluate_robustness(model, X, Y, attacks="fgsm", checks=False,
                               metrics=False, progress=False, **kwargs)


def _eps_warnings(**kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _evaluate(**kwargs)
    return [w for w in caught if w.category is validation.EpsRangeWarning]


def test_eps_beyond_the_box_warns_at_the_callers_line():
    with pytest.warns(validation.EpsRangeWarning) as record:
        report = _evaluate(eps=[0.1, 3.0])
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "eps 3 is larger than the data's range under linf (1: box [0, 1], "
        "its width)")
    assert record[0].filename == __file__
    assert issubclass(validation.EpsRangeWarning, UserWarning)
    assert list(report.eps) == [0.1, 3.0]  # legal: the evaluation still runs


@pytest.mark.parametrize("kwargs,warned", [
    (dict(eps=[0.5, 1.0]), None),  # the box's width itself: no warning
    (dict(eps=2.0, norm="l2"), None),  # sqrt(6) = 2.449 under L2
    (dict(eps=2.5, norm="l2"), "eps 2.5 is larger than the data's range "
     "under l2 (2.449: box [0, 1], width * sqrt(6))"),
    # Without a box: the data's own range, [0.2, 0.8] here.
    (dict(eps=0.7, clip=None), "eps 0.7 is larger than the data's range "
     "under linf (0.6: box [0.2, 0.8]"),
    (dict(eps=0.5, clip=None), None),
])
def test_range_per_norm_and_box(kwargs, warned):
    found = [str(w.message) for w in _eps_warnings(**kwargs)]
    if warned is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(warned)


def test_warn_eps_range_on_a_plan():
    model = linear_model(in_dim=6, classes=4)[0]
    plan = make_plan(model, eps=[0.1, 0.2], norm="linf", attacks="fgsm",
                     eot_samples=None, batch_size=None, seed=0,
                     clip=(0.0, 255.0), from_logits=None, checks=False,
                     metrics=False, progress=False)
    assert warn_eps_range(plan, X) is None
    assert warn_eps_range(plan, {"a": X}) is None  # several inputs: no rule
