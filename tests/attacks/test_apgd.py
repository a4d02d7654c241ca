"""APGD: DLR values, the checkpoint schedule, properties and strength."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import apgd, apgd_checkpoints, dlr, pgd
from keras_adv.attacks.losses import attack_objective
from tests.conftest import accuracy, linear_model


def _norm(d, norm):
    d = d.reshape(len(d), -1)
    return np.abs(d).max(1) if norm == "linf" else np.linalg.norm(d, axis=1)


def test_dlr_values_on_fixed_logits():
    z = tf.constant([[4.0, 2.0, 1.0, 0.0], [0.0, 3.0, 1.0, -1.0]])
    y = tf.constant([0, 0])
    # Row 0: -(4 - 2) / (4 - 1); row 1 (misclassified): -(0 - 3) / (3 - 0).
    np.testing.assert_allclose(dlr(z, y).numpy(), [-2 / 3, 1.0], rtol=1e-6)
    # Targeted, target 2: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
    t = tf.constant([2, 2])
    np.testing.assert_allclose(
        dlr(z, y, target=t).numpy(),
        [-(4 - 1) / (4 - 0.5), -(0 - 1) / (3 - (0 - 1) / 2)], rtol=1e-6)
    # attack_objective routes targeted DLR through the source class.
    np.testing.assert_allclose(
        attack_objective(z, t, loss="dlr", targeted=True, source=y).numpy(),
        dlr(z, y, target=t).numpy())
    # Scale invariance: the reason DLR sees through saturated softmax.
    np.testing.assert_allclose(dlr(1000 * z, y).numpy(), dlr(z, y).numpy(),
                               rtol=1e-5)


def test_checkpoint_schedule():
    # First at 0.22 K, intervals shrink by 0.03 K down to 0.06 K.
    assert apgd_checkpoints(steps=100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(steps=200) == [44, 82, 114, 140, 160, 174, 186, 198]
    assert apgd_checkpoints(steps=10)[:3] == [2, 3, 4]
    with pytest.raises(ValueError, match=r"Received: steps=0"):
        apgd_checkpoints(steps=0)


def test_reaches_the_best_corner_of_a_linear_model():
    # On a linear model with L-inf, sign steps of size 2 eps from the
    # boundary immediately hit the corner: the loss stops rising, so every
    # checkpoint halves eta. The result is the optimum: x - eps sign(w_y -
    # w_other) direction, i.e. the best corner, reached exactly.
    model, w, b = linear_model(in_dim=6, classes=3)
    x = np.full((1, 6), 0.5, "float32")
    y = np.array([int(np.argmax(x @ w + b))])
    adv = apgd(model, x, y, eps=0.1, steps=20, loss="margin", seed=0,
               clip=None).numpy()
    z = adv @ w + b
    margins = []
    for k in range(3):
        if k != y[0]:
            corner = x + 0.1 * np.sign(w[:, k] - w[:, y[0]])
            zc = corner @ w + b
            margins.append(np.delete(zc[0], y[0]).max() - zc[0, y[0]])
    got = np.delete(z[0], y[0]).max() - z[0, y[0]]
    assert got == pytest.approx(max(margins), abs=1e-4)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.8)])
def test_stays_in_ball_and_box(norm, eps):
    model, _, _ = linear_model()
    x = np.random.RandomState(0).uniform(0, 1, (16, 6)).astype("float32")
    for kw in (dict(loss="ce"), dict(loss="dlr", target_classes=2)):
        adv = apgd(model, x, eps=eps, norm=norm, steps=12, seed=1,
                   **kw).numpy()
        assert np.all(_norm(adv - x, norm) <= eps * (1 + 1e-5) + 1e-6)
        assert adv.min() >= 0 and adv.max() <= 1 and adv.dtype == x.dtype
    np.testing.assert_array_equal(apgd(model, x, eps=0.0, steps=5, seed=0), x)


def test_same_seed_same_result_and_graph_mode():
    model, _, _ = linear_model()
    x = np.random.RandomState(1).uniform(0, 1, (8, 6)).astype("float32")
    a = apgd(model, x, eps=0.2, steps=6, seed=3).numpy()
    np.testing.assert_array_equal(a, apgd(model, x, eps=0.2, steps=6, seed=3))

    @tf.function
    def inside(x):
        return apgd(model, x, eps=0.2, steps=6, seed=3)

    np.testing.assert_allclose(inside(tf.constant(x)).numpy(), a, atol=1e-6)


def test_bad_arguments():
    model, _, _ = linear_model()
    x = np.full((2, 6), 0.5, "float32")
    with pytest.raises(ValueError, match=r"Received: target_classes=2 with "
                       r"targeted=True"):
        apgd(model, x, [0, 1], eps=0.1, targeted=True, target_classes=2)
    with pytest.raises(ValueError, match=r"below the number of classes \(4\)"
                       r"\. Received: target_classes=4"):
        apgd(model, x, eps=0.1, target_classes=4)
    with pytest.raises(ValueError, match=r"Received: rho=1\.5"):
        apgd(model, x, eps=0.1, rho=1.5)
    with pytest.raises(ValueError, match=r"Received: steps=0"):
        apgd(model, x, eps=0.1, steps=0)


def test_stronger_than_pgd_and_sees_through_saturation(trained_cnn,
                                                       cnn_test_batch):
    x, y = cnn_test_batch
    x, y = x[:100], y[:100]
    eps = 0.1
    acc_pgd = accuracy(trained_cnn, pgd(trained_cnn, x, y, eps=eps, steps=20,
                                        seed=0), y)
    acc_ce = accuracy(trained_cnn, apgd(trained_cnn, x, y, eps=eps, steps=20,
                                        seed=0), y)
    assert acc_ce <= acc_pgd + 0.02
    assert acc_ce < 0.7  # the clean accuracy of this batch is 100%

    def saturated(v):  # logits x 1000: softmax saturates, CE gradient is 0
        return 1000.0 * trained_cnn(v, training=False)

    acc_sat_ce = accuracy(trained_cnn, apgd(saturated, x, y, eps=eps,
                                            steps=20, seed=0), y)
    acc_sat_t = accuracy(trained_cnn, apgd(saturated, x, y, eps=eps, steps=20,
                                           seed=0, loss="dlr",
                                           target_classes=3), y)
    assert acc_sat_ce > acc_ce + 0.2  # cross-entropy is blinded
    assert acc_sat_t <= acc_ce + 0.05  # scale-invariant DLR is not
