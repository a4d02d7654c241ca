"""Models: reference architectures, the adversarial-training model, loading."""

from keras_adv.models.adversarial import AdversarialModel
from keras_adv.models.loading import load_model
from keras_adv.models.zoo import small_cnn

__all__ = ["AdversarialModel", "load_model", "small_cnn"]
