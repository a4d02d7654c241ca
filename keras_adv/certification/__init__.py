"""Certified robustness by randomized smoothing (Cohen et al. 2019).

`certify` returns, per example, the smoothed classifier's class and an L2
radius within which no perturbation changes it (with probability
1 - alpha over the noise); `predict` is the smoothed prediction with a
binomial test. The noise sampling and counting run in one compiled graph
(`sample_counts`). Training for smoothing is in `keras_adv.defenses`
(`GaussianAugmentation`, `SmoothAdv`); the attack on smoothed classifiers is
`keras_adv.attacks.smooth_pgd`.
"""

from keras_adv.certification._certify import (
    ABSTAIN,
    Certificate,
    certify,
    clopper_pearson_lower,
    predict,
    sample_counts,
)
from keras_adv.certification.report import (
    CertificationReport,
    certified_accuracy,
    evaluate_certified,
)
from keras_adv.certification.smoothed import SmoothedClassifier
from keras_adv.certification.thresholds import decision_thresholds

__all__ = [
    "ABSTAIN",
    "Certificate",
    "CertificationReport",
    "SmoothedClassifier",
    "certified_accuracy",
    "certify",
    "clopper_pearson_lower",
    "decision_thresholds",
    "evaluate_certified",
    "predict",
    "sample_counts",
]
