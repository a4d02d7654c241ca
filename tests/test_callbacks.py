"""RobustValidation and CatastrophicOverfittingGuard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import callbacks, defenses
from keras_adv.attacks import pgd
from keras_adv.models import AdversarialModel
from tests.conftest import linear_model, threshold_model, to_one
from tests.tensorboard_events import tensorboard_scalars


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    x = rng.uniform(0.1, 0.9, (40, 6)).astype("float32")
    return x, rng.randint(0, 4, 40)


def _model():
    model = AdversarialModel(linear_model()[0],
                             defense=defenses.FastTraining(eps=0.1))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True), metrics=["accuracy"])
    return model


def test_robust_accuracy_equals_manual_pgd(data):
    x, y = data
    model, _, _ = linear_model()
    got = callbacks.robust_accuracy(model, (x, y), eps=0.2, steps=5,
                                    batch_size=16, seed=3)
    adv_right = np.concatenate([
        np.argmax(model(pgd(model, x[i:i + 16], y[i:i + 16], eps=0.2,
                            steps=5, seed=3)), -1) == y[i:i + 16]
        for i in range(0, 40, 16)])
    want = np.mean(adv_right & (np.argmax(model(x), -1) == y))
    assert got == pytest.approx(want)
    clean = np.mean(np.argmax(model(x), -1) == y)
    assert got < clean
    ds = tf.data.Dataset.from_tensor_slices((x, np.eye(4)[y])).batch(16)
    assert callbacks.robust_accuracy(model, ds, eps=0.2, steps=5,
                                     seed=3) == pytest.approx(want)
    assert callbacks.robust_accuracy(model, (x, y), eps=0.0) == pytest.approx(
        clean)
    with pytest.raises(ValueError, match=r"Received: eps=None"):
        callbacks.robust_accuracy(model, (x, y))


def fixed_by_attack(x0=0.9):
    """`robust_accuracy` of `threshold_model` on x = (x0, 0.1, 0.8), y =
    (1, 1, 0) under `to_one`: clean right, wrong, wrong; adversarially
    right, right, wrong. Example 1 is "fixed" by the attack: not robust."""
    x = np.array([[x0], [0.1], [0.8]], np.float32)
    return callbacks.robust_accuracy(threshold_model(), (x, [1, 1, 0]),
                                     attack=to_one, batch_size=2)


def test_an_example_the_attack_fixes_is_not_robust():
    assert fixed_by_attack() == pytest.approx(1 / 3)
    assert fixed_by_attack(np.nan) == 0.0  # a NaN output is never right


def test_robust_validation_logs_each_epoch(data):
    x, y = data
    model = _model()
    seen = []

    class After(keras.callbacks.Callback):  # e.g. TensorBoard, placed after
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["val_adv_accuracy"])

    cb = callbacks.RobustValidation((x[:20], y[:20]), steps=3, seed=0)
    hist = model.fit(x, y, epochs=2, batch_size=20, verbose=0,
                     callbacks=[cb, After()]).history
    assert len(hist["val_adv_accuracy"]) == 2 and seen == hist[
        "val_adv_accuracy"]
    want = callbacks.robust_accuracy(model, (x[:20], y[:20]), steps=3,
                                    seed=0)
    assert hist["val_adv_accuracy"][-1] == pytest.approx(want)
    with pytest.raises(ValueError, match=r"Received: freq=0"):
        callbacks.RobustValidation((x, y), freq=0)


def test_guard_stops_and_restores_best_weights(data):
    """An attack that turns destructive after the first epoch simulates
    catastrophic overfitting; the guard must stop at epoch 2 and put back
    the weights of epoch 1."""
    x, _ = data
    model = _model()
    y = np.argmax(model(x), -1)  # 100% clean accuracy at the start
    calls = []

    def attack(m, xb, yb):
        calls.append(1)
        if len(calls) == 1:
            return xb  # epoch 1: robust accuracy = clean accuracy
        return pgd(m, xb, yb, eps=1.0, steps=20, seed=0)  # whole box

    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights()[0].copy())

    guard = callbacks.CatastrophicOverfittingGuard(
        (x, y), attack=attack, max_drop=0.2, batch_size=64, verbose=0)
    hist = model.fit(x, y, epochs=5, batch_size=10, verbose=0,
                     callbacks=[Snapshot(), guard]).history
    assert guard.stopped_epoch == 1 and guard.best_epoch == 0
    assert len(hist["loss"]) == 2
    assert hist["guard_adv_accuracy"][0] > hist["guard_adv_accuracy"][1] + 0.2
    np.testing.assert_array_equal(model.get_weights()[0], snapshots[0])
    assert np.abs(snapshots[1] - snapshots[0]).max() > 0


def test_guard_keeps_training_while_robust(data):
    x, y = data
    model = _model()
    guard = callbacks.CatastrophicOverfittingGuard((x[:20], y[:20]), verbose=0)
    hist = model.fit(x, y, epochs=3, batch_size=10, verbose=0,
                     callbacks=[guard]).history
    assert guard.stopped_epoch is None and len(hist["loss"]) == 3
    assert all(0 <= a <= 1 for a in hist["guard_adv_accuracy"])
    with pytest.raises(ValueError, match=r"Received: max_drop=1\.5"):
        callbacks.CatastrophicOverfittingGuard((x, y), max_drop=1.5)


def test_tensorboard_writes_adversarialtensorboard_scalars(data, tmp_path):
    """`keras.callbacks.TensorBoard` works in the installed environment (the
    `tensorboard` extra) and logs AdversarialModel's `adv_*` metrics."""
    x, y = data
    keras.utils.set_random_seed(0)
    model = _model()
    history = model.fit(x, y, epochs=2, batch_size=20, verbose=0,
                        validation_data=(x, y),
                        callbacks=[keras.callbacks.TensorBoard(tmp_path)])
    train = tensorboard_scalars(tmp_path / "train")
    for tag in ("epoch_adv_loss", "epoch_adv_accuracy", "epoch_loss"):
        assert len(train[tag]) == 2, sorted(train)
    np.testing.assert_allclose(train["epoch_adv_loss"],
                               history.history["adv_loss"], rtol=1e-6)
    np.testing.assert_allclose(train["epoch_adv_accuracy"],
                               history.history["adv_accuracy"], rtol=1e-6)
    assert len(tensorboard_scalars(tmp_path / "validation")["epoch_loss"]) == 2


def test_skipped_epochs_leave_the_key_out(data, tmp_path):
    """RobustValidation(freq=2) over 3 epochs measures epoch 2 only: History
    and TensorBoard hold that one value, no 0.0 for the others."""
    x, y = data
    keras.utils.set_random_seed(0)
    model = _model()
    seen = []

    class After(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append("val_adv_accuracy" in logs)

    cb = callbacks.RobustValidation((x[:20], y[:20]), steps=3, seed=0, freq=2)
    hist = model.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[
        cb, After(), keras.callbacks.TensorBoard(tmp_path)]).history
    assert seen == [False, True, False]
    assert len(hist["loss"]) == 3 and len(hist["val_adv_accuracy"]) == 1
    assert 0.0 <= hist["val_adv_accuracy"][0] <= 1.0
    assert tensorboard_scalars(tmp_path / "validation")["epoch_adv_accuracy"] == \
        pytest.approx(hist["val_adv_accuracy"])
