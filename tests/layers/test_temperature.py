"""Temperature: logits divided by T, checked, saved and loaded."""

import keras
import numpy as np
import pytest

from keras_adv.layers import Temperature


def test_divides_logits_by_the_temperature():
    z = np.array([[10.0, -4.0], [0.0, 2.5]], "float32")
    np.testing.assert_allclose(Temperature(4.0)(z).numpy(), z / 4.0)
    assert Temperature(2).compute_output_shape((None, 7)) == (None, 7)


@pytest.mark.parametrize("value,needle", [
    (0.0, r"temperature must be a finite number > 0\. Received: "
          r"temperature=0\.0"),
    (-1, r"Received: temperature=-1"),
    (float("inf"), r"Received: temperature=inf"),
])
def test_bad_temperature_is_refused(value, needle):
    with pytest.raises(ValueError, match=needle):
        Temperature(value)


def test_saved_and_loaded_without_custom_objects(tmp_path):
    model = keras.Sequential([keras.Input((2,)), Temperature(20.0)])
    path = str(tmp_path / "t.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.layers[-1].get_config()["temperature"] == 20.0
    x = np.array([[40.0, -20.0]], "float32")
    np.testing.assert_allclose(loaded(x).numpy(), [[2.0, -1.0]])
