"""FGSMTraining: the FGSM point and the mixed objective against NumPy."""

import numpy as np
import pytest

from keras_adv import defenses
from keras_adv.defenses import adversarial_loss
from tests.conftest import ce_input_gradient, softmax
from tests.defenses.unlabeled import ce_np


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturb_is_one_gradient_step_of_eps(linear_batch, norm):
    model, w, b, x, _, y, _ = linear_batch
    g = ce_input_gradient(x, y, w, b)
    step = (np.sign(g) if norm == "linf"
            else g / np.linalg.norm(g, axis=1, keepdims=True))
    x_adv = defenses.FGSMTraining(eps=0.05, norm=norm).perturb(model, x, y)
    np.testing.assert_allclose(x_adv.numpy(), x + 0.05 * step, atol=1e-6)


def test_loss_mixes_clean_and_adversarial_losses(linear_batch):
    model, w, b, x, x_adv, y, sw = linear_batch
    d = defenses.FGSMTraining(eps=0.2, clean_weight=0.25)
    r = adversarial_loss(model, x, y, d, x_adv=x_adv, sample_weight=sw)
    clean = np.mean(sw * ce_np(softmax(x @ w + b), y))
    adv = np.mean(sw * ce_np(softmax(x_adv @ w + b), y))
    assert float(r.terms["clean_loss"]) == pytest.approx(clean, rel=1e-5)
    assert float(r.terms["adv_loss"]) == pytest.approx(adv, rel=1e-5)
    assert float(r.loss) == pytest.approx(0.25 * clean + 0.75 * adv,
                                          rel=1e-5)
