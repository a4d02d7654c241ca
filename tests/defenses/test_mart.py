"""MART: the objective against NumPy."""

import numpy as np
import pytest

from keras_adv import defenses
from keras_adv.defenses import adversarial_loss
from tests.conftest import softmax
from tests.defenses.unlabeled import ce_np, kl_np


def test_mart_loss_equals_numpy(linear_batch):
    model, w, b, x, x_adv, y, sw = linear_batch
    d = defenses.MART(eps=0.2, beta=6.0)
    r = adversarial_loss(model, x, y, d, x_adv=x_adv, sample_weight=sw)
    p, q = softmax(x @ w + b), softmax(x_adv @ w + b)
    other = np.where(np.eye(4)[y] > 0, -1.0, q).max(1)
    adv = np.mean(sw * ce_np(q, y))
    margin = np.mean(sw * -np.log(1.0001 - other + 1e-12))
    kl = np.mean(sw * kl_np(p, q) * (1.0000001 - p[np.arange(12), y]))
    assert float(r.terms["adv_loss"]) == pytest.approx(adv, rel=1e-5)
    assert float(r.terms["margin_loss"]) == pytest.approx(margin, rel=1e-5)
    assert float(r.terms["kl_loss"]) == pytest.approx(kl, rel=1e-4)
    assert float(r.loss) == pytest.approx(adv + margin + 6.0 * kl, rel=1e-5)
