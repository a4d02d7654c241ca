"""insert_sap, the randomised mixture and its game, defensive distillation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import pgd
from keras_adv.defenses.distillation import defensive_distillation
from keras_adv.defenses.mixture import payoff_matrix, solve_zero_sum
from keras_adv.defenses.sap import insert_sap
from keras_adv.layers import StochasticActivationPruning as SAP
from keras_adv.layers import Temperature
from keras_adv.models import RandomizedMixture

X = np.random.RandomState(0).rand(16, 6).astype("float32")


def _mlp(seed=0, softmax=False):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16),
        keras.layers.ReLU(),
        keras.layers.Dense(3, activation="softmax" if softmax else None),
    ])


def _functional(seed=0):
    keras.utils.set_random_seed(seed)
    i = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(i)
    return keras.Model(i, keras.layers.Dense(3, name="out")(h))


def test_insert_sap_sequential_layout_and_weights():
    base = _mlp()
    sap = insert_sap(base, seed=0)
    kinds = [type(layer).__name__ for layer in sap.layers]
    assert kinds == ["Dense", "StochasticActivationPruning", "Dense", "ReLU",
                     "StochasticActivationPruning", "Dense"]
    for a, b in zip(base.get_weights(), sap.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sap.layers[0] is not base.layers[0]  # a copy, base untouched


def test_insert_sap_single_layer_is_unbiased():
    base = _functional()
    sap = insert_sap(base, seed=1)
    mean = np.mean([sap(X).numpy() for _ in range(1000)], axis=0)
    ref = base(X).numpy()
    np.testing.assert_allclose(mean, ref, atol=0.03 * np.abs(ref).max())
    assert not np.array_equal(sap(X).numpy(), sap(X).numpy())


def test_insert_sap_keeps_clean_predictions_on_average():
    """With SAP after two ReLUs (a ReLU between them), the mean output is no
    longer exactly unbiased, but the averaged prediction keeps the class."""
    base = _mlp()
    sap = insert_sap(base, seed=1)
    mean = np.mean([sap(X).numpy() for _ in range(400)], axis=0)
    agree = np.mean(np.argmax(mean, 1) == np.argmax(base(X).numpy(), 1))
    assert agree >= 0.9


def test_insert_sap_named_layers_and_errors():
    base = _functional()
    sap = insert_sap(base, layers=["out"], seed=0)
    assert any(isinstance(layer, keras.Sequential) and layer.name == "out_with_sap"
               for layer in sap.layers)
    with pytest.raises(ValueError, match=r"unknown layers \['nope'\]"):
        insert_sap(base, layers=["nope"])
    linear = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="no ReLU"):
        insert_sap(linear)
    with pytest.raises(ValueError, match="model must be a built"):
        insert_sap("model.keras")


def test_insert_sap_save_load(tmp_path):
    sap = insert_sap(_functional(), seed=0)
    path = str(tmp_path / "f.keras")
    sap.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    inner = [m for m in loaded.layers if isinstance(m, keras.Sequential)][0]
    assert isinstance(inner.layers[-1], SAP)


def test_solve_zero_sum_known_games():
    q, v = solve_zero_sum([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(q, [0.5, 0.5], atol=1e-9)
    assert v == pytest.approx(0.5)
    q, v = solve_zero_sum([[0.9, 0.8], [0.2, 0.3]])  # row 0 dominates
    np.testing.assert_allclose(q, [1.0, 0.0], atol=1e-9)
    assert v == pytest.approx(0.8)
    a = np.array([[0.2, 0.6, 0.5], [0.7, 0.1, 0.4], [0.4, 0.5, 0.3]])
    q, v = solve_zero_sum(a)
    assert (q @ a).min() == pytest.approx(v, abs=1e-9)
    for row in np.eye(3):  # no pure strategy does better than the value
        assert (row @ a).min() <= v + 1e-9
    with pytest.raises(ValueError, match="payoff"):
        solve_zero_sum([1.0, 2.0])


def test_payoff_matrix_identity_attack():
    a, b = _mlp(0), _mlp(1)
    y = np.argmax(a(X).numpy(), axis=1)
    pay = payoff_matrix([a, b], X, y, attack=lambda m, x, t: x)
    assert pay[0, 0] == 1.0 and pay[0, 1] == 1.0
    assert pay[1, 0] == pay[1, 1] == np.mean(np.argmax(b(X), 1) == y)


def test_mixture_draw_frequencies_and_gradient():
    a = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False,
                          kernel_initializer="zeros")])
    b = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False,
                          kernel_initializer="ones")])
    mix = RandomizedMixture([a, b], probabilities=[0.3, 0.7], seed=0)
    x = np.ones((20000, 6), "float32")
    out = mix(x).numpy()
    assert np.mean(out[:, 0] == 6.0) == pytest.approx(0.7, abs=0.015)
    x_adv = pgd(mix, X, np.zeros(16, "int64"), eps=0.1, steps=2, seed=0,
                eot_samples=4)
    assert np.isfinite(x_adv.numpy()).all()


def test_mixture_validation():
    m = _mlp()
    with pytest.raises(ValueError, match=r"Received: probabilities=\[0.5, 0.6\]"):
        RandomizedMixture([m, m], probabilities=[0.5, 0.6])
    with pytest.raises(ValueError, match="members must be"):
        RandomizedMixture([])


def test_mixture_save_load_export_stay_random(tmp_path):
    mix = RandomizedMixture([_mlp(0), _mlp(1)], probabilities=[0.5, 0.5],
                            seed=0)
    mix(X)
    path = str(tmp_path / "mix.keras")
    mix.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, RandomizedMixture)
    assert loaded.probabilities == [0.5, 0.5]
    for a, b in zip(mix.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    export_dir = str(tmp_path / "served")
    mix.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    outs = [served.serve(tf.constant(X)).numpy() for _ in range(5)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_distillation_saturates_softmax_and_margin_breaks_it():
    rng = np.random.RandomState(0)
    x = rng.rand(1024, 6).astype("float32")
    y = (x[:, 0] + x[:, 1] > 1.0).astype("int64") + (x[:, 2] > 0.5)

    def adam():
        return keras.optimizers.Adam(0.01)

    keras.utils.set_random_seed(0)
    plain = _mlp(0)
    plain.compile(adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.fit(x, y, epochs=30, batch_size=64, verbose=0)
    deployed = defensive_distillation(_mlp(1), _mlp(2), x, y, temperature=100.0,
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
        defensive_distillation(_mlp(), _mlp(), x, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"Received: epochs=0"):
        defensive_distillation(_mlp(), _mlp(), x, y, epochs=0)
    with pytest.raises(ValueError, match=r"Received: y with shape \(4, 1\)"):
        defensive_distillation(_mlp(), _mlp(), x, y[:, None])
    with pytest.raises(ValueError, match="temperature"):
        Temperature(float("nan"))
