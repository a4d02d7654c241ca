"""MaskingWarning is a UserWarning that users can filter or escalate, and a
structured, comparable, JSON-serialisable record in the report."""

import json
import pickle
import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.evaluation import MaskingWarning, RobustnessReport, evaluate_robustness
from tests.conftest import linear_model


def _quantized():
    """A linear model behind tf.round: no input gradient, so the report
    always carries one "gradients" warning (and only square runs)."""
    base = linear_model(in_dim=6, classes=4)[0]
    x = np.random.RandomState(0).uniform(0.3, 0.7, (6, 6)).astype("float32")
    y = np.argmax(base(x).numpy(), -1)
    return (lambda v: base(tf.round(v * 8.0) / 8.0)), x, y  # noqa: E731


KW = dict(eps=0.1, attacks=[("square", {"queries": 10})], checks=False,
          metrics=False, seed=0)


def test_masking_warning_is_a_structured_user_warning():
    w = MaskingWarning("gradients", "no input gradient")
    assert isinstance(w, UserWarning)
    assert (w.check, w.message) == ("gradients", "no input gradient")
    assert w == MaskingWarning("gradients", "no input gradient")
    assert w != MaskingWarning("randomness", "no input gradient")
    assert hash(w) == hash(MaskingWarning("gradients", "no input gradient"))
    assert str(w) == "[gradients] no input gradient"
    assert pickle.loads(pickle.dumps(w)) == w


def test_escalated_to_an_error():
    model, x, y = _quantized()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MaskingWarning)
        with pytest.raises(MaskingWarning, match="no input gradient") as info:
            evaluate_robustness(model, x, y, **KW)
    assert info.value.check == "gradients"


def test_ignored_and_still_in_the_report_and_json():
    model, x, y = _quantized()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("ignore", MaskingWarning)
        report = evaluate_robustness(model, x, y, **KW)
    assert record == []
    assert isinstance(report, RobustnessReport)
    assert report.warnings == [MaskingWarning("gradients", report.warnings[0].message)]
    d = json.loads(report.to_json())
    assert d["warnings"] == [{"check": "gradients",
                              "message": report.warnings[0].message}]
    assert "[gradients]" in report.table()
