"""DeepFool: exact minimal perturbations on a linear model, flips on a CNN."""

import numpy as np
import pytest

from keras_adv.attacks import deepfool
from tests.conftest import linear_model


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_linear_model_gets_the_exact_minimal_perturbation(norm):
    model, w, b = linear_model(in_dim=6, classes=4)
    x = np.random.RandomState(2).uniform(0, 1, (10, 6)).astype("float32")
    adv = deepfool(model, x, norm=norm, overshoot=0.0, clip=None).numpy()
    z = x @ w + b
    pred = z.argmax(1)
    for i in range(len(x)):
        dists = []
        for k in range(4):
            if k == pred[i]:
                continue
            wk = w[:, k] - w[:, pred[i]]
            fk = abs(z[i, k] - z[i, pred[i]])
            dual = np.linalg.norm(wk) if norm == "l2" else np.abs(wk).sum()
            dists.append(fk / dual)
        r = adv[i] - x[i]
        size = np.linalg.norm(r) if norm == "l2" else np.abs(r).max()
        # One linearisation step is exact for a linear model (plus 1e-4).
        assert size == pytest.approx(min(dists), rel=1e-3, abs=1e-3)
    assert np.all((adv @ w + b).argmax(1) != pred)


def test_flips_a_trained_cnn_with_small_l2(trained_cnn, cnn_test_batch):
    x, y = cnn_test_batch
    x, y = x[:50], y[:50]
    adv = deepfool(trained_cnn, x, y).numpy()
    pred = np.argmax(trained_cnn.predict(adv, verbose=0), -1)
    assert np.mean(pred != y) >= 0.95
    size = np.linalg.norm((adv - x).reshape(50, -1), axis=1)
    assert 0.1 < np.median(size) < 4.0
    bounded = deepfool(trained_cnn, x, y, eps=0.5).numpy()
    assert np.linalg.norm((bounded - x).reshape(50, -1), axis=1).max() <= 0.5 + 1e-5


def test_bad_arguments():
    model, _, _ = linear_model()
    x = np.full((2, 6), 0.5, "float32")
    with pytest.raises(ValueError, match=r"Received: candidates=1"):
        deepfool(model, x, candidates=1)
    with pytest.raises(ValueError, match=r"Received: overshoot=-0\.1"):
        deepfool(model, x, overshoot=-0.1)
    with pytest.raises(ValueError, match=r"Received: norm='l1'"):
        deepfool(model, x, norm="l1")
