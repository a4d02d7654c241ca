"""AdversarialModel's step with unlabeled rows (-1): the same step as on the
labeled rows, clear errors for defenses that need labels, evaluation on
labeled rows, save and load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv import datasets
from keras_adv.defenses import (
    TRADES,
    VAT,
    DataSparsity,
    PGDTraining,
)
from keras_adv.models import AdversarialModel
from tests.conftest import linear_model
from tests.defenses.unlabeled import SCE
from tests.tensorboard_events import tensorboard_scalars


def test_fit_step_with_unlabeled_rows_equals_step_on_labeled_rows_only():
    """With weight 0, one SGD step of AdversarialModel(VAT) on a batch with
    -1 labels gives exactly the weights of a plain step on the labeled rows."""
    rng = np.random.RandomState(4)
    x = rng.rand(16, 6).astype("float32")
    y = np.where(rng.rand(16) < 0.4, rng.randint(0, 4, 16), -1)
    keep = y >= 0
    a, _, _ = linear_model(seed=7)
    b, _, _ = linear_model(seed=7)
    model = AdversarialModel(a, defense=VAT(eps=1.0, weight=0.0))
    model.compile(keras.optimizers.SGD(0.5), SCE, metrics=["accuracy"])
    logs = model.fit(x, y, batch_size=16, epochs=1, shuffle=False,
                     verbose=0).history
    b.compile(keras.optimizers.SGD(0.5), SCE, metrics=["accuracy"])
    ref = b.fit(x[keep], y[keep], batch_size=16, epochs=1, shuffle=False,
                verbose=0).history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    # Accuracy counts the labeled rows only (computed before the step in
    # both cases).
    assert logs["accuracy"][0] == pytest.approx(ref["accuracy"][0])
    assert logs["clean_loss"][0] == pytest.approx(ref["loss"][0], rel=1e-6)


def test_defense_that_needs_labels_rejects_minus_one_clearly():
    model = AdversarialModel(linear_model()[0],
                             defense=PGDTraining(eps=0.1, steps=2))
    model.compile("sgd", SCE)
    x = np.random.rand(8, 6).astype("float32")
    y = np.array([0, 1, -1, 2, 0, 1, 2, 3])
    weights = model.get_weights()
    # Arrays are checked before training, tf.data batches in the graph.
    with pytest.raises(ValueError, match="-1 marks an unlabeled example"):
        model.fit(x, y, epochs=1, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="-1 marks an unlabeled example"):
        model.fit(ds, epochs=1, verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_evaluate_counts_labeled_rows_only():
    model = AdversarialModel(linear_model(seed=8)[0], defense=VAT(eps=1.0))
    model.compile("sgd", SCE, metrics=["accuracy"])
    x = np.random.RandomState(5).rand(12, 6).astype("float32")
    y = np.array([0, -1, 1, -1, 2, 3, -1, 0, 1, -1, 2, 3])
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    keep = y >= 0
    pred = np.argmax(model.predict(x[keep], verbose=0), -1)
    assert got["accuracy"] == pytest.approx(np.mean(pred == y[keep]))


DEFENSES = {
    "vat": VAT(eps=2.0),
    "vat_entmin": VAT(eps=2.0, entropy_weight=1.0),
    "data_sparsity": DataSparsity(),
    "pgd+vat": PGDTraining(eps=0.1, steps=2) + VAT(eps=2.0),
    "pgd+data_sparsity": PGDTraining(eps=0.1, steps=2) + DataSparsity(),
    "trades+vat": TRADES(eps=0.1, steps=2) + VAT(eps=2.0),
    "vat+data_sparsity": VAT(eps=2.0) + DataSparsity(),
}


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_fit_finite_then_save_load_round_trip(name, tmp_path, mnist5k):
    (x_train, y_train), _ = mnist5k
    x, y = x_train[:96], datasets.hide_labels(y_train[:96], labels_per_class=2, seed=0)
    keras.utils.set_random_seed(0)
    model = AdversarialModel(keras_adv.models.small_cnn(width=8, seed=0),
                             defense=DEFENSES[name])
    model.compile(keras.optimizers.Adam(1e-3), SCE, metrics=["accuracy"])
    logs = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    for key in model.defense.loss_terms + ("loss", "accuracy"):
        assert np.isfinite(logs[key][0]), key
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.defense == model.defense
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0),
                               model.predict(x[:8], verbose=0), rtol=1e-5,
                               atol=1e-6)
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)  # trains on


# --------------------------------------------------------------------------
# The logs of an eps warm-up: no adv_* value before it is measured
# --------------------------------------------------------------------------

def _warmup_model(defense):
    model = AdversarialModel(linear_model()[0], defense=defense)
    model.compile(keras.optimizers.SGD(0.1), SCE, metrics=["accuracy"])
    return model


def _warmup_data():
    rng = np.random.RandomState(0)
    return rng.uniform(0.1, 0.9, (40, 6)).astype("float32"), rng.randint(
        0, 4, 40)


def test_warmup_logs_every_adv_metric_of_every_epoch():
    """PGD-AT with a 2-epoch warm-up, 3 epochs: the compiled adv_ metrics
    (measured at the warm-up eps from the first batch) and the robust
    validation accuracy have one finite value per epoch, each the value
    measured in that epoch."""
    x, y = _warmup_data()
    keras.utils.set_random_seed(0)
    model = _warmup_model(PGDTraining(eps=0.1, steps=2, warmup_epochs=2))
    seen = []

    class Measured(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(model.metrics[-1].result()))  # adv_accuracy

    robust = keras_adv.callbacks.RobustValidation((x[:20], y[:20]), steps=2,
                                                  seed=0)
    hist = model.fit(x, y, batch_size=20, epochs=3, verbose=0,
                     callbacks=[Measured(), robust]).history
    assert sorted(hist) == ["accuracy", "adv_accuracy", "adv_loss", "loss",
                            "val_adv_accuracy"]
    assert all(len(v) == 3 and np.all(np.isfinite(v)) for v in hist.values())
    assert hist["adv_accuracy"] == pytest.approx(seen)
    assert hist["val_adv_accuracy"][-1] == pytest.approx(
        keras_adv.callbacks.robust_accuracy(model, (x[:20], y[:20]), steps=2,
                                            seed=0))


@keras.saving.register_keras_serializable(package="tests")
class _AtFullEps(PGDTraining):
    """PGD-AT that measures its adversarial accuracy only once eps is
    full: during the warm-up nothing updates `adv_accuracy`."""

    def train_step(self, step, x, y, sample_weight=None):
        result = super().train_step(step, x, y, sample_weight)

        def record():
            step.record_adversarial(y, result.y_pred_adv, sample_weight)
            return tf.constant(0)

        tf.cond(step.eps >= tf.cast(self.eps, tf.float32), record,
                lambda: tf.constant(0))
        # Recorded here: the model records nothing more; clean metrics from
        # the inference-mode pass, as before.
        return result._replace(y_pred=None, y_pred_adv=None, x_adv=None)


def test_an_unmeasured_adv_metric_is_left_out_not_logged_as_zero(tmp_path):
    """2 batches per epoch, warm-up over 2 epochs: eps is full from the
    last batch of epoch 1, so epoch 0 measures no adversarial accuracy.
    Its key is left out of that epoch's logs (History and TensorBoard
    hold epochs 1 and 2 only), never a 0.0."""
    x, y = _warmup_data()
    keras.utils.set_random_seed(0)
    model = _warmup_model(_AtFullEps(eps=0.1, steps=2, warmup_epochs=2))
    batches = []

    class Batches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append("adv_accuracy" in logs)

    hist = model.fit(x, y, batch_size=20, epochs=3, verbose=0,
                     validation_data=(x, y), callbacks=[
                         Batches(), keras.callbacks.TensorBoard(tmp_path)])
    assert len(hist.history["loss"]) == len(hist.history["adv_loss"]) == 3
    assert len(hist.history["adv_accuracy"]) == 2
    assert 0.0 < hist.history["adv_accuracy"][0] <= 1.0
    assert batches == [False, False, False, True, True, True]
    steps = tensorboard_scalars(tmp_path / "train", "step")
    assert steps["epoch_adv_accuracy"] == [1, 2]
    assert steps["epoch_loss"] == [0, 1, 2]
