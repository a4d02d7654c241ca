"""Generative models and generated data.

`DCGAN` (a `keras.Model` whose `fit` trains a generator and a
discriminator), `GANMonitor` (a callback that writes sample grids),
`frechet_distance` and `class_coverage` (sample quality in a classifier's
features). `keras_adv.datasets.pseudo_label` and `keras_adv.datasets.mix`
bring generated images into adversarial training.
"""

from keras_adv.generative.dcgan import DCGAN
from keras_adv.generative.monitor import GANMonitor, image_grid, save_image_grid
from keras_adv.generative.networks import build_discriminator, build_generator
from keras_adv.generative.quality import (
    ClassCoverage,
    class_coverage,
    frechet_distance,
    frechet_distance_from_moments,
)

__all__ = [
    "DCGAN",
    "GANMonitor",
    "build_discriminator",
    "build_generator",
    "ClassCoverage",
    "class_coverage",
    "frechet_distance",
    "frechet_distance_from_moments",
    "image_grid",
    "save_image_grid",
]
