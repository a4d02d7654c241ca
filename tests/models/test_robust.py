"""models/robust.py: `evaluate(adversarial=...)`, its checks, its clean and
adversarial test step, and one traced test function per attack."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import robust
from tests.conftest import threshold_model, to_one
from tests.models.conftest import linear_adv_model


def test_evaluate_with_callable_attack(batch):
    x, y = batch
    model, _, _ = linear_adv_model(defenses.FGSMTraining(eps=0.1),
                                    metrics=["accuracy"])

    def identity(model, x, y):
        return x

    out = model.evaluate(x, y, adversarial=identity, return_dict=True,
                         verbose=0)
    assert out["adv_accuracy"] == pytest.approx(out["accuracy"])
    assert out["adv_loss"] == pytest.approx(out["loss"], rel=1e-6)
    with pytest.raises(ValueError, match=r"Received: adversarial='pgd'"):
        model.evaluate(x, y, adversarial="pgd")


def test_evaluate_with_pgd_matches_eager_attack_traced_once(batch):
    from keras_adv.attacks import pgd

    x, y = batch
    model, _, _ = linear_adv_model(defenses.PGDTraining(eps=0.1, steps=2),
                                    metrics=["accuracy"])
    traces = []

    def attack(m, xb, yb):  # Python runs only while the step is traced
        traces.append(1)
        return pgd(m, xb, yb, eps=0.3, steps=5, random_start=False)

    out = model.evaluate(x, y, adversarial=attack, batch_size=8,
                         return_dict=True, verbose=0)
    x_adv = pgd(model, x, y, eps=0.3, steps=5, random_start=False)
    adv_right = np.argmax(model.predict(x_adv, verbose=0), -1) == y
    assert out["adv_accuracy"] == pytest.approx(np.mean(adv_right))
    clean_right = np.argmax(model.predict(x, verbose=0), -1) == y
    assert out["robust_accuracy"] == pytest.approx(
        np.mean(adv_right & clean_right))
    assert out["adv_accuracy"] < out["accuracy"]
    # The robust test function is kept for the same attack; clean evaluation
    # keeps its own.
    model.evaluate(x, y, verbose=0)
    clean_fn, traced = model.test_function, len(traces)
    assert clean_fn is not None and traced >= 1
    model.evaluate(x, y, adversarial=attack, batch_size=8, verbose=0)
    assert len(traces) == traced
    assert model.test_function is clean_fn


def test_robust_accuracy_needs_the_clean_and_the_adversarial_hit():
    import keras

    from keras_adv import ops
    from keras_adv.models import AdversarialModel

    base = threshold_model()
    model = AdversarialModel(base, defense=defenses.FGSMTraining(eps=0.1))
    model.compile(optimizer="sgd", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    x = np.array([[0.9], [0.1], [0.8]], np.float32)  # class 1 where x > 0.5
    y = np.array([1, 1, 0])

    for batch_size in (3, 1):
        out = model.evaluate(x, y, adversarial=to_one, batch_size=batch_size,
                             return_dict=True, verbose=0)
        # adv_accuracy is Keras' accuracy on the attacked batch alone;
        # example 1, wrong clean, is right there but not robust.
        assert out["accuracy"] == pytest.approx(1 / 3)
        assert out["adv_accuracy"] == pytest.approx(2 / 3)
        assert out["robust_accuracy"] == pytest.approx(1 / 3)
    hits = ops.robust_hits(y, base(x), base(np.ones_like(x)))
    assert out["robust_accuracy"] == pytest.approx(np.mean(hits))


def test_check_attack_and_batch_size():
    robust.check_attack(True)
    robust.check_attack(False)
    robust.check_attack(lambda m, x, y: x)
    with pytest.raises(ValueError, match=r"Received: adversarial=1$"):
        robust.check_attack(1)
    parts = [tf.zeros((5, 3)), tf.zeros((5, 2))]
    assert int(robust.batch_size(parts)) == 5


def test_unlabeled_rows_are_left_out_of_the_adversarial_metrics(batch):
    x, y = batch
    model, _, _ = linear_adv_model(
        defenses.PGDTraining(eps=0.1, steps=2) + defenses.VAT(eps=0.5),
        metrics=["accuracy"])
    y_part = np.where(np.arange(len(y)) < 8, y, -1)
    out = model.evaluate(x, y_part, adversarial=lambda m, xb, yb: xb,
                         batch_size=16, return_dict=True, verbose=0)
    first = model.evaluate(x[:8], y[:8], adversarial=lambda m, xb, yb: xb,
                           batch_size=16, return_dict=True, verbose=0)
    assert out["adv_accuracy"] == pytest.approx(first["adv_accuracy"])
    assert out["adv_loss"] == pytest.approx(first["adv_loss"], rel=1e-6)
