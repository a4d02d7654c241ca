"""Models: the adversarial-training model, the randomised mixture,
reference architectures, the safe model loader and the exporter."""

from keras_adv.models.adversarial import AdversarialModel
from keras_adv.models.export import (
    export_model,
    load_served,
)
from keras_adv.models.features import feature_model
from keras_adv.models.loading import load_model
from keras_adv.models.mixture import RandomizedMixture
from keras_adv.models.zoo import small_cnn

__all__ = [
    "AdversarialModel",
    "RandomizedMixture",
    "export_model",
    "feature_model",
    "load_model",
    "load_served",
    "small_cnn",
]
