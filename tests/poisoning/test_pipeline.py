"""Poison, train, detect, retrain on mnist5k with small_cnn.

The issue's acceptance run (8 epochs on all 4000 images, three trainings) is
`@pytest.mark.slow`; a smaller run of the same pipeline (2000 images, fewer
epochs, looser thresholds stated below) runs in CI.
"""

import keras
import numpy as np
import pytest

from keras_adv import models
from keras_adv.poisoning import (
    activation_clustering,
    apply_trigger,
    backdoor,
    clean_accuracy,
    evaluate_poisoning,
    spectral_signature,
    strip_entropy,
    strip_threshold,
)


def train(x, y, epochs, seed=0):
    keras.utils.set_random_seed(seed)
    model = models.small_cnn(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def pipeline(mnist5k, n_train, epochs):
    (x, y), (x_test, y_test) = mnist5k
    x, y = x[:n_train], y[:n_train]
    p = backdoor(x, y, target=0, rate=0.05, trigger="patch", seed=0)
    clean = train(x, y, epochs)
    poisoned = train(p.x, p.y, epochs)
    flagged_ac = activation_clustering(poisoned, p.x, p.y, seed=0)
    flagged_ss = spectral_signature(poisoned, p.x, p.y, expected_fraction=0.35,
                                    remove_factor=1.5)
    keep = np.setdiff1d(np.arange(len(p.x)), flagged_ac)
    retrained = train(p.x[keep], p.y[keep], epochs)
    return dict(
        p=p,
        poisoned=poisoned,
        data=(x_test, y_test),
        clean_acc=clean_accuracy(clean, x_test, y_test),
        report=evaluate_poisoning(poisoned, x_test, y_test, target=0,
                                  trigger="patch"),
        ss_recall=np.isin(p.index, flagged_ss).mean(),
        ac_recall=np.isin(p.index, flagged_ac).mean(),
        retrained=evaluate_poisoning(retrained, x_test, y_test, target=0,
                                     trigger="patch"),
    )


@pytest.fixture(scope="module")
def full(mnist5k):
    return pipeline(mnist5k, n_train=4000, epochs=8)


@pytest.fixture(scope="module")
def small(mnist5k):
    return pipeline(mnist5k, n_train=1500, epochs=3)


@pytest.mark.slow
def test_badnets_success_and_clean_accuracy(full):
    assert len(full["p"].index) == 200
    assert full["report"].attack_success_rate >= 0.9
    assert abs(full["report"].clean_accuracy - full["clean_acc"]) <= 0.03


@pytest.mark.slow
def test_detectors_recall(full):
    assert full["ss_recall"] >= 0.7
    assert full["ac_recall"] >= 0.9


@pytest.mark.slow
def test_retraining_without_flagged_rows(full):
    assert full["retrained"].attack_success_rate < 0.2


def test_small_pipeline(small):
    # 1500 images, 3 epochs: the same bars except clean accuracy (5 points)
    # and spectral recall (0.6), which a shorter training leaves noisier.
    assert len(small["p"].index) == 75
    assert small["report"].attack_success_rate >= 0.9
    assert abs(small["report"].clean_accuracy - small["clean_acc"]) <= 0.05
    assert small["ss_recall"] >= 0.6
    assert small["ac_recall"] >= 0.9
    assert small["retrained"].attack_success_rate < 0.2


def test_strip_separates_triggered_inputs(small):
    model, (x_test, y_test) = small["poisoned"], small["data"]
    clean_rows, test_rows = x_test[:100], x_test[100:300]
    other = test_rows[y_test[100:300] != 0]
    h_clean = strip_entropy(model, test_rows[:100], clean_rows, overlays=32,
                            seed=0)
    h_trig = strip_entropy(model, apply_trigger(other), clean_rows, overlays=32,
                           seed=0)
    threshold = strip_threshold(h_clean, frr=0.05)
    assert np.mean(h_clean < threshold) <= 0.05
    assert np.mean(h_trig < threshold) >= 0.8
    assert h_trig.mean() < 0.5 * h_clean.mean()
