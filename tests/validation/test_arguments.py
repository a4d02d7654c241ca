"""validation/arguments.py: every bad argument raises a one-line ValueError
naming the argument and the value, through the attacks and directly."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv import validation
from keras_adv.attacks import pgd
from tests.conftest import linear_model
from tests.validation.conftest import X, Y


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps=-0.1), r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
        (dict(eps=float("nan")), r"Received: eps=nan"),
        (dict(eps=float("inf")), r"Received: eps=inf"),
        (dict(eps="big"), r"eps must be a number\. Received: eps='big'"),
        (dict(eps=[0.1, 0.2]), r"eps must be a scalar"),
        (dict(eps=0.1, norm="l3"), r"norm must be one of .* Received: norm='l3'"),
        (dict(eps=0.1, loss="hinge"), r"Received: loss='hinge'"),
        (dict(eps=0.1, steps=0), r"steps must be >= 1\. Received: steps=0"),
        (dict(eps=0.1, steps=2.5), r"steps must be an integer\. Received: steps=2\.5"),
        (dict(eps=0.1, restarts=0), r"Received: restarts=0"),
        (dict(eps=0.1, step_size=0.0), r"Received: step_size=0\.0"),
        (dict(eps=0.1, momentum=-1.0), r"Received: momentum=-1\.0"),
        (dict(eps=0.1, clip=(1.0, 0.0)), r"Received: clip=\(1\.0, 0\.0\)"),
        (dict(eps=0.1, clip=5), r"Received: clip=5"),
        (dict(eps=0.1, seed="a"), r"Received: seed='a'"),
        (dict(eps=0.1, eot_samples=0), r"Received: eot_samples=0"),
        (dict(eps=0.1, from_logits="yes"), r"Received: from_logits='yes'"),
    ],
)
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pgd(model, X, Y, **kwargs)


def test_targeted_without_labels(model):
    with pytest.raises(ValueError, match=r"Received: y=None with targeted=True"):
        pgd(model, X, eps=0.1, targeted=True)


def test_dlr_needs_three_classes():
    two_class, _, _ = linear_model(classes=2)
    with pytest.raises(ValueError, match=r"needs at least 3 classes"):
        pgd(two_class, X, eps=0.1, loss="dlr")


def test_model_without_gradient(model):
    def hard(inputs):
        return tf.one_hot(tf.argmax(model(inputs), axis=-1), 4)

    with pytest.raises(ValueError, match=r"no gradient with respect to its input"):
        pgd(hard, X, Y, eps=0.1)


def test_model_not_callable():
    with pytest.raises(ValueError, match=r"model must be callable"):
        pgd("model.keras", X, eps=0.1)


@pytest.mark.parametrize("call,needle", [
    (lambda: validation.check_number("sigma", 0.0, positive=True),
     r"^sigma must be a finite number > 0\. Received: sigma=0\.0$"),
    (lambda: validation.check_number("rate", 1.5, upper=1.0),
     r"^rate must be a finite number in \[0, 1\.0\]\. Received: rate=1\.5$"),
    (lambda: validation.check_int("steps", True),
     r"^steps must be an integer\. Received: steps=True$"),
    (lambda: validation.check_probability("alpha", 1),
     r"^alpha must be a number in \(0, 1\)\. Received: alpha=1$"),
    (lambda: validation.check_int("num_examples", 0),
     r"^num_examples must be >= 1\. Received: num_examples=0$"),
    (lambda: validation.check_class(10, "target", 10),
     r"^target must be a class in \[0, 10\)\. Received: target=10$"),
    (lambda: validation.check_seed(-1), r"^seed must be >= 0\. "
     r"Received: seed=-1$"),
    (lambda: validation.parse_eps([]), r"Received: eps=\[\]"),
])
def test_direct_checks_name_the_argument(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_direct_checks_return_plain_values():
    assert validation.check_number("eps", np.float32(0.25)) == 0.25
    assert validation.check_int("n", np.int64(3)) == 3
    assert validation.parse_eps("0.1, 0.3") == ([0.1, 0.3], False)
    assert validation.parse_eps(0.5) == ([0.5], True)
    assert validation.check_clip((0, 1)) == (0.0, 1.0)
    t = tf.constant(0.5)
    assert validation.check_number("eps", t) is t  # a tensor unchanged
    draws = [validation.numpy_rng(7).integers(1000) for _ in range(2)]
    assert draws[0] == draws[1]
