"""Models: the adversarial-training model, the randomised mixture,
reference architectures and the safe model loader."""

from keras_adv.models.adversarial import AdversarialModel
from keras_adv.models.loading import load_model
from keras_adv.models.mixture import RandomizedMixture
from keras_adv.models.zoo import small_cnn

__all__ = ["AdversarialModel", "RandomizedMixture", "load_model", "small_cnn"]
