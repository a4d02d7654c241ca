"""The defense protocol: every ball defense's configuration (checks,
normalisation, serialisation, the eps schedule), the `perturb` contract
(ball, box, objective), `AdversarialOnly`'s loss and the result tuples."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.defenses import adversarial_loss, protocol
from tests.conftest import softmax
from tests.defenses.unlabeled import ce_np, kl_np

ALL = [
    defenses.FGSMTraining(eps=0.3, clean_weight=0.25, norm="l2"),
    defenses.PGDTraining(eps=0.3, steps=40, step_size=0.01),
    defenses.FastTraining(eps=0.2, step_size=0.25, warmup_epochs=2),
    defenses.FreeTraining(eps=0.3, replays=8, clip=None),
    defenses.TRADES(eps=0.031, steps=10, step_size=0.007, beta=6.0),
    defenses.MART(eps=0.3, steps=5, beta=5.0, clip=(-1, 1)),
]


@pytest.mark.parametrize("defense", ALL, ids=lambda d: type(d).__name__)
def test_keras_serialisation_round_trip(defense):
    blob = keras.saving.serialize_keras_object(defense)
    assert blob["registered_name"] == f"keras_adv>{type(defense).__name__}"
    back = keras.saving.deserialize_keras_object(blob, safe_mode=True)
    assert back == defense and type(back) is type(defense)
    assert type(defense).from_config(defense.get_config()) == defense


@pytest.mark.parametrize("defense", ALL, ids=lambda d: type(d).__name__)
def test_frozen(defense):
    with pytest.raises(Exception, match="cannot assign"):
        defense.eps = 1.0


def test_normalisation():
    d = defenses.PGDTraining(eps=1, norm="inf", clip=[0, 255], steps=3)
    assert d.eps == 1.0 and isinstance(d.eps, float)
    assert d.norm == "linf" and d.clip == (0.0, 255.0)
    assert defenses.TRADES(eps=0.1, norm=2).norm == "l2"


def test_eps_at_linear_warmup():
    d = defenses.TRADES(eps=0.3, warmup_epochs=4)
    assert [d.eps_at(e) for e in (0, 1, 2, 4, 9)] == pytest.approx(
        [0.0, 0.075, 0.15, 0.3, 0.3])
    assert defenses.MART(eps=0.3).eps_at(0) == 0.3


NAN = float("nan")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: defenses.PGDTraining(eps=-0.1),
         r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
        (lambda: defenses.FGSMTraining(eps=NAN), r"Received: eps=nan"),
        (lambda: defenses.TRADES(eps=math.inf), r"Received: eps=inf"),
        (lambda: defenses.MART(eps="0.3"), r"eps must be a number\. "
         r"Received: eps='0\.3'"),
        (lambda: defenses.PGDTraining(eps=0.3, steps=0),
         r"steps must be >= 1\. Received: steps=0"),
        (lambda: defenses.TRADES(eps=0.3, steps=2.5),
         r"steps must be an integer\. Received: steps=2\.5"),
        (lambda: defenses.MART(eps=0.3, steps=0), r"Received: steps=0"),
        (lambda: defenses.TRADES(eps=0.3, beta=-1.0),
         r"beta must be a finite number >= 0\. Received: beta=-1\.0"),
        (lambda: defenses.MART(eps=0.3, beta=NAN), r"Received: beta=nan"),
        (lambda: defenses.FreeTraining(eps=0.3, replays=0),
         r"replays must be >= 1\. Received: replays=0"),
        (lambda: defenses.PGDTraining(eps=0.3, norm="l1"),
         r"norm must be one of .* Received: norm='l1'"),
        (lambda: defenses.FastTraining(eps=0.3, norm="L3"),
         r"Received: norm='L3'"),
        (lambda: defenses.FGSMTraining(eps=0.3, clean_weight=1.5),
         r"clean_weight must be a finite number in \[0, 1\.0\]\. "
         r"Received: clean_weight=1\.5"),
        (lambda: defenses.FGSMTraining(eps=0.3, clean_weight=-0.1),
         r"Received: clean_weight=-0\.1"),
        (lambda: defenses.PGDTraining(eps=0.3, step_size=0.0),
         r"step_size must be a finite number > 0\. Received: step_size=0\.0"),
        (lambda: defenses.FastTraining(eps=0.3, step_size=-1),
         r"Received: step_size=-1"),
        (lambda: defenses.PGDTraining(eps=0.3, clip=(1, 0)),
         r"Received: clip=\(1, 0\)"),
        (lambda: defenses.TRADES(eps=0.3, warmup_epochs=-2),
         r"warmup_epochs must be a finite number >= 0\. "
         r"Received: warmup_epochs=-2"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


PERTURBING = [
    defenses.FGSMTraining(eps=0.1),
    defenses.PGDTraining(eps=0.1, steps=4),
    defenses.FastTraining(eps=0.1),
    defenses.FreeTraining(eps=0.1),
    defenses.TRADES(eps=0.1, steps=4),
    defenses.MART(eps=0.1, steps=4),
]


@pytest.mark.parametrize("defense", PERTURBING, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturb_stays_in_ball_and_box(linear_batch, defense, norm):
    model, _, _, x, _, y, _ = linear_batch
    d = type(defense).from_config({**defense.get_config(), "norm": norm,
                                   "eps": 0.5})
    x_adv = d.perturb(model, x, y).numpy()
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta,
                                                                       axis=1)
    assert np.all(size <= 0.5 + 1e-5)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert size.max() > 0.05
    np.testing.assert_allclose(d.perturb(model, x, y, eps=0.0).numpy(), x)


@pytest.mark.parametrize("defense", PERTURBING, ids=lambda d: type(d).__name__)
def test_perturb_increases_its_objective(linear_batch, defense):
    model, w, b, x, _, y, _ = linear_batch
    x_adv = defense.perturb(model, x, y).numpy()
    p, q = softmax(x @ w + b), softmax(x_adv @ w + b)
    if isinstance(defense, defenses.TRADES):
        assert kl_np(p, q).mean() > 1e-3
    else:
        assert ce_np(q, y).mean() > ce_np(p, y).mean() + 0.05


def test_adversarial_only_loss_is_the_task_loss_at_x_adv(linear_batch):
    model, w, b, x, x_adv, y, sw = linear_batch
    r = adversarial_loss(model, x, y, defenses.PGDTraining(eps=0.2),
                         x_adv=x_adv, sample_weight=sw)
    adv = np.mean(sw * ce_np(softmax(x_adv @ w + b), y))
    assert float(r.loss) == pytest.approx(adv, rel=1e-5)
    assert list(r.terms) == ["adv_loss"] and r.y_pred is None


def test_step_result_is_loss_result_and_the_perturbed_batch():
    assert protocol.StepResult._fields == (*protocol.LossResult._fields,
                                           "x_adv")
    r = protocol.StepResult(tf.constant(2.0), {}, None, None, "x")
    assert r._replace(x_adv=None).x_adv is None and float(r.loss) == 2.0
