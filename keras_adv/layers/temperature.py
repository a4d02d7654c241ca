"""`Temperature`: the tempered-softmax layer of defensive distillation."""

import keras

from keras_adv import validation


@keras.saving.register_keras_serializable(package="keras_adv")
class Temperature(keras.layers.Layer):
    """Divides logits by a temperature T: softmax(z / T) is the tempered
    softmax of defensive distillation (Papernot et al., IEEE S&P 2016).

    Args:
        temperature: T > 0.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: logits.

    Example:

    >>> import numpy as np
    >>> Temperature(10.0)(np.array([[10.0, 0.0]], "float32")).numpy()
    array([[1., 0.]], dtype=float32)
    """

    def __init__(self, temperature, **kwargs):
        super().__init__(**kwargs)
        self.temperature = validation.check_number(
            "temperature", temperature, positive=True, allow_tensor=False)

    def call(self, inputs):
        """Returns `inputs / temperature`."""
        return inputs / self.temperature

    def compute_output_shape(self, input_shape):
        """The input shape."""
        return input_shape

    def get_config(self):
        """The base config plus `temperature`."""
        return {**super().get_config(), "temperature": self.temperature}
