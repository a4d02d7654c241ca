"""defensive_distillation: saturated softmax, the margin attack, bad arguments."""

import keras
import numpy as np
import pytest

from keras_adv.attacks import pgd
from keras_adv.defenses.distillation import defensive_distillation
from keras_adv.layers import Temperature
from tests.defenses.nets import mlp


def test_distillation_saturates_softmax_and_margin_breaks_it():
    rng = np.random.RandomState(0)
    x = rng.rand(1024, 6).astype("float32")
    y = (x[:, 0] + x[:, 1] > 1.0).astype("int64") + (x[:, 2] > 0.5)

    def adam():
        return keras.optimizers.Adam(0.01)

    keras.utils.set_random_seed(0)
    plain = mlp(0)
    plain.compile(adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.fit(x, y, epochs=30, batch_size=64, verbose=0)
    deployed = defensive_distillation(mlp(1), mlp(2), x, y, temperature=100.0,
                                      epochs=30, batch_size=64, optimizer=adam)
    # Deployed logits are about T times larger than an ordinary model's.
    ratio = np.abs(deployed(x).numpy()).mean() / np.abs(plain(x).numpy()).mean()
    assert ratio > 10
    clean = np.argmax(deployed(x), 1) == y
    assert clean.mean() > 0.75
    xs, ys = x[clean][:256], y[clean][:256]

    def acc(loss):
        x_adv = pgd(deployed, xs, ys, eps=0.15, steps=20, loss=loss, seed=0)
        return np.mean(np.argmax(deployed(x_adv), 1) == ys)

    # Cross-entropy gradients vanish in the saturated softmax; the margin on
    # the logits does not care about the scale.
    assert acc("margin") < acc("ce") - 0.2


def test_distillation_bad_arguments():
    x = np.zeros((4, 6), "float32")
    y = np.zeros(4, "int64")
    with pytest.raises(ValueError, match=r"Received: temperature=0\.0"):
        defensive_distillation(mlp(), mlp(), x, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"Received: epochs=0"):
        defensive_distillation(mlp(), mlp(), x, y, epochs=0)
    with pytest.raises(ValueError, match=r"Received: y with shape \(4, 1\)"):
        defensive_distillation(mlp(), mlp(), x, y[:, None])
    with pytest.raises(ValueError, match="temperature"):
        Temperature(float("nan"))


def test_distillation_progress_on_stderr_only(capsys):
    x = np.random.RandomState(0).rand(32, 6).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    defensive_distillation(mlp(), mlp(), x, y, epochs=1, batch_size=16,
                           progress=False)
    assert capsys.readouterr() == ("", "")
    defensive_distillation(mlp(), mlp(), x, y, epochs=2, batch_size=16,
                           progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith("defensive_distillation: training the teacher "
                               "at T=100.0 (2 epochs) (")
    assert any(line.startswith("defensive_distillation: training the "
                               "student at T=100.0 (2 epochs) (")
               for line in lines)
    # fit's own lines, one per epoch where stderr is not a terminal
    assert sum(line.startswith("Epoch ") for line in lines) == 4
