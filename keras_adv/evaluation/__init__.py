"""Robustness evaluation: worst-case reports, masking checks and metrics.

`evaluate_robustness` runs an attack suite (AutoAttack's APGD-CE, APGD-T and
Square by default) on the points still robust after each attack, checks for
gradient masking, and returns a `RobustnessReport`. Its driver (`driver`)
owns the flow and calls each stage in turn: `plan` (arguments, attack
registry), `stream` (the chunks), `masking` (the gradient-masking checks),
`run` (attacks per chunk and eps), `tally` (the counts), `checkpoint`,
and `suite` (metrics and report); `keras_adv.progress` shows what runs.
`MaskingWarning` is a `UserWarning`, also emitted through `warnings.warn`.
Evaluation calls the attacks in `keras_adv.attacks`; the attacks never
import it.
"""

from keras_adv.evaluation.driver import evaluate_robustness
from keras_adv.evaluation.metrics import (
    EmpiricalRobustness,
    empirical_robustness,
    loss_sensitivity,
)
from keras_adv.evaluation.plan import ATTACKS, STANDARD
from keras_adv.evaluation.report import MaskingWarning, RobustnessReport

__all__ = [
    "ATTACKS",
    "STANDARD",
    "MaskingWarning",
    "RobustnessReport",
    "EmpiricalRobustness",
    "empirical_robustness",
    "evaluate_robustness",
    "loss_sensitivity",
]
