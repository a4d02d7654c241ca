"""Robustness evaluation: worst-case reports, masking checks and metrics.

`evaluate_robustness` runs an attack suite (AutoAttack's APGD-CE, APGD-T and
Square by default) on the points still robust after each attack, checks for
gradient masking, and returns a `RobustnessReport`. It runs in stages: `plan`
(arguments, attack registry, clean predictions), `run` (attacks per eps),
`checks` (masking diagnostics from `masking`) and the report (`suite`).
`MaskingWarning` is a `UserWarning`, also emitted through `warnings.warn`.
Evaluation calls the attacks in `keras_adv.attacks`; the attacks never
import it.
"""

from keras_adv.evaluation.metrics import (
    EmpiricalRobustness,
    empirical_robustness,
    loss_sensitivity,
)
from keras_adv.evaluation.report import MaskingWarning, RobustnessReport
from keras_adv.evaluation.suite import ATTACKS, STANDARD, evaluate_robustness

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
