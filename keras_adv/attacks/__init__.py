"""Adversarial attacks: pure functions of (model, x, y).

All attacks share one signature convention (CleverHans style):
`attack(model, x, y=None, *, eps, norm, loss, targeted, clip, ...)`, return a
tensor with x's shape and dtype, run eagerly (compiled once per model and
configuration) or inside a `tf.function`, and never import defenses or
evaluation code.
"""

from keras_adv.attacks._smooth import smooth_pgd
from keras_adv.attacks.apgd import apgd, apgd_checkpoints
from keras_adv.attacks.deepfool import deepfool
from keras_adv.attacks.fgsm import fgsm
from keras_adv.attacks.losses import attack_objective, dlr, margin
from keras_adv.attacks.pgd import pgd
from keras_adv.attacks.square import square

__all__ = [
    "apgd",
    "apgd_checkpoints",
    "attack_objective",
    "deepfool",
    "dlr",
    "fgsm",
    "margin",
    "pgd",
    "smooth_pgd",
    "square",
]
