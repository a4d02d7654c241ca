"""Models: reference architectures and the adversarial-training model."""

from keras_adv.models.adversarial import AdversarialModel
from keras_adv.models.zoo import small_cnn

__all__ = ["AdversarialModel", "small_cnn"]
