"""Custom Keras layers, registered for `.keras` saving in safe mode."""

from keras_adv.layers.sap import StochasticActivationPruning
from keras_adv.layers.temperature import Temperature

__all__ = ["StochasticActivationPruning", "Temperature"]
