"""Adversarial attacks: pure functions of (model, x, y).

All attacks share one signature convention (CleverHans style):
`attack(model, x, y=None, *, eps, norm, loss, targeted, clip, ...)`, return a
tensor with x's shape and dtype, run eagerly (compiled once per model and
configuration) or inside a `tf.function`, and never import defenses or
evaluation code. The gradient attacks and the defenses' inner maximisations
share one ascent loop, `ascend` (module `keras_adv.attacks.ascent`). The
attack modules have private names (`_pgd.py`, ...) so that the functions
exported here shadow no module.
"""

from keras_adv.attacks._apgd import apgd, apgd_checkpoints
from keras_adv.attacks._deepfool import deepfool
from keras_adv.attacks._fab import fab
from keras_adv.attacks._fgsm import fgsm
from keras_adv.attacks._pgd import pgd
from keras_adv.attacks._smooth import smooth_pgd
from keras_adv.attacks._square import square
from keras_adv.attacks.ascent import (
    ascend,
    ce_ascent,
    objective_ascent,
    project_step,
)
from keras_adv.attacks.losses import attack_objective, dlr, margin

__all__ = [
    "apgd",
    "apgd_checkpoints",
    "ascend",
    "ce_ascent",
    "attack_objective",
    "deepfool",
    "dlr",
    "fab",
    "fgsm",
    "margin",
    "objective_ascent",
    "pgd",
    "project_step",
    "smooth_pgd",
    "square",
]
