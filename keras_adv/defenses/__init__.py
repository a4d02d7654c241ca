"""Adversarial-training defenses: small serialisable configuration objects.

Each defense is a frozen dataclass with hooks (`keras_adv.defenses.protocol`):
`perturb` (the attack, in inference mode), `loss` (the training objective)
and `train_step` (one optimizer step, perturb-then-loss by default), called
by `keras_adv.models.AdversarialModel.train_step` inside `model.fit`; the
first two also by `adversarial_loss` in a custom training loop. Algorithms
and their sources are in each class's docstring and in `docs/defenses.md`.

Example:

    model = keras_adv.models.AdversarialModel(
        base, defense=keras_adv.defenses.PGDTraining(eps=0.3, steps=40,
                                                     step_size=0.01))
"""

from keras_adv.defenses.combined import Combined
from keras_adv.defenses.data_sparsity import DataSparsity
from keras_adv.defenses.distillation import defensive_distillation
from keras_adv.defenses.fast_training import FastTraining
from keras_adv.defenses.fgsm_training import FGSMTraining
from keras_adv.defenses.free_training import FreeTraining
from keras_adv.defenses.functional import adversarial_loss
from keras_adv.defenses.mart import MART
from keras_adv.defenses.mixture import payoff_matrix, solve_zero_sum
from keras_adv.defenses.pgd_training import PGDTraining
from keras_adv.defenses.protocol import (
    Defense,
    LossResult,
    StepResult,
    TrainingStep,
)
from keras_adv.defenses.sap import insert_sap
from keras_adv.defenses.smoothing import GaussianAugmentation, SmoothAdv
from keras_adv.defenses.trades import TRADES
from keras_adv.defenses.vat import VAT
from keras_adv.layers.temperature import Temperature  # home: keras_adv.layers

__all__ = [
    "MART",
    "TRADES",
    "VAT",
    "Combined",
    "DataSparsity",
    "Defense",
    "FGSMTraining",
    "FastTraining",
    "FreeTraining",
    "GaussianAugmentation",
    "LossResult",
    "PGDTraining",
    "SmoothAdv",
    "StepResult",
    "Temperature",
    "TrainingStep",
    "adversarial_loss",
    "defensive_distillation",
    "insert_sap",
    "payoff_matrix",
    "solve_zero_sum",
]
