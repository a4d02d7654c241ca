"""Custom Keras layers, registered for `.keras` saving in safe mode."""

from keras_adv.layers.sap import StochasticActivationPruning

__all__ = ["StochasticActivationPruning"]
