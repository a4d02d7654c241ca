"""Models: the adversarial-training model, the randomised mixture and
reference architectures."""

from keras_adv.models.adversarial import AdversarialModel
from keras_adv.models.mixture import RandomizedMixture
from keras_adv.models.zoo import small_cnn

__all__ = ["AdversarialModel", "RandomizedMixture", "small_cnn"]
