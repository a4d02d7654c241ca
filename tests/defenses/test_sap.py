"""insert_sap: layout, weights, unbiasedness, named layers, save and load."""

import keras
import numpy as np
import pytest

from keras_adv.defenses.sap import insert_sap
from keras_adv.layers import StochasticActivationPruning as SAP
from tests.defenses.nets import X, mlp


def _functional(seed=0):
    keras.utils.set_random_seed(seed)
    i = keras.Input((6,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(i)
    return keras.Model(i, keras.layers.Dense(3, name="out")(h))


def test_insert_sap_sequential_layout_and_weights():
    base = mlp()
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
    base = mlp()
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
