"""Models: reference architectures (and, later, the defense wrappers)."""

from keras_adv.models.zoo import small_cnn

__all__ = ["small_cnn"]
