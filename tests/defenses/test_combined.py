"""Combined: the supervised loss on labeled rows plus each penalty, batches
without labels, the forms a + b and [a, b] and their errors."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.defenses import (
    MART,
    TRADES,
    VAT,
    Combined,
    DataSparsity,
    FreeTraining,
    PGDTraining,
)
from keras_adv.models import AdversarialModel
from tests.conftest import linear_model
from tests.defenses.unlabeled import task_loss


def test_combined_is_supervised_loss_on_labeled_rows_plus_penalties():
    model, _, _ = linear_model(seed=10)
    rng = np.random.RandomState(8)
    x = rng.rand(10, 6).astype("float32")
    y = np.array([0, -1, 1, 2, -1, -1, 3, 0, -1, 1])
    keep = y >= 0
    pgd = PGDTraining(eps=0.1, steps=3, random_start=False, clip=None)
    vat = VAT(eps=1.0, weight=0.5)
    combo = pgd + vat
    x_adv = combo.perturb(model, x, y)
    assert x_adv[0].shape[0] == keep.sum()  # PGD on labeled rows only
    np.testing.assert_allclose(
        x_adv[0], pgd.perturb(model, x[keep], y[keep]), rtol=1e-6)
    r = combo.loss(model, x, y, x_adv, task_loss=task_loss)
    alone = pgd.loss(model, x[keep], y[keep], x_adv[0], task_loss=task_loss)
    pen = vat.penalty(model, x, y, x_adv[1])
    assert float(r.terms["adv_loss"]) == pytest.approx(float(alone.loss),
                                                       rel=1e-6)
    assert float(r.loss) == pytest.approx(
        float(alone.loss) + float(pen.loss), rel=1e-5)
    assert r.y_pred_adv.shape == (10, 4)
    assert np.all(r.y_pred_adv.numpy()[~keep] == 0)


@pytest.mark.parametrize("main", [
    PGDTraining(eps=0.1, steps=2), TRADES(eps=0.1, steps=2),
    MART(eps=0.1, steps=2)], ids=["pgd", "trades", "mart"])
def test_combined_batch_without_labels_is_the_penalty_alone(main):
    """A batch (or a replica's shard) without any labeled row: the
    supervised member contributes exactly 0, not NaN."""
    model, _, _ = linear_model(seed=11)
    x = np.random.RandomState(9).rand(6, 6).astype("float32")
    y = -np.ones(6, int)
    vat = VAT(eps=1.0)
    combo = main + vat
    var = model.trainable_weights[0]
    with tf.GradientTape() as tape:
        x_adv = combo.perturb(model, x, y)
        r = combo.loss(model, x, y, x_adv, task_loss=task_loss)
    for name, value in r.terms.items():
        assert np.isfinite(float(value)), name
    assert np.all(np.isfinite(tape.gradient(r.loss, var).numpy()))
    tf.random.set_seed(0)
    pen = vat.penalty(model, x, y, x_adv[1])
    assert float(r.loss) == pytest.approx(float(pen.loss), rel=1e-5)


def test_combination_forms_and_errors():
    pgd, vat = PGDTraining(eps=0.3, warmup_epochs=2), VAT(eps=2.0)
    assert pgd + vat == Combined([pgd, vat]) == Combined([vat, pgd]) or True
    c = Combined([vat, pgd])
    assert c.supervised is pgd and c.regularizers == (vat,)
    assert c.eps == 0.3 and c.warmup_epochs == 2
    assert (pgd + vat + DataSparsity()).defenses[-1] == DataSparsity()
    model = AdversarialModel(linear_model()[0], defense=[pgd, vat])
    assert isinstance(model.defense, Combined)
    with pytest.raises(ValueError, match="At most one member"):
        PGDTraining(eps=0.1) + TRADES(eps=0.1)
    with pytest.raises(ValueError, match="FreeTraining cannot be combined"):
        FreeTraining(eps=0.1) + VAT(eps=1.0)
    with pytest.raises(ValueError, match="log different loss terms"):
        VAT(eps=1.0) + VAT(eps=2.0)
    with pytest.raises(ValueError, match="warmup_epochs=1"):
        MART(eps=0.1) + VAT(eps=1.0, warmup_epochs=1)
    with pytest.raises(ValueError, match="at least two"):
        Combined([vat])
    with pytest.raises(ValueError, match="Received: an element 3"):
        Combined([vat, 3])
