"""Training-time threats: poisoned-data builders, detectors and reports.

Attacks that build a poisoned training set (`backdoor`, `label_flip`,
`clean_label_backdoor`, `gradient_matching`), triggers (`Trigger`,
`apply_trigger`), measures (`attack_success_rate`, `clean_accuracy`,
`evaluate_poisoning`), detectors that find the poison in a training set
(`spectral_signature`, `activation_clustering`), a verdict on a training
set at a stated false-alarm rate with the rows to remove
(`scan_training_set`), and a test-time defense that
does not need to find it (`strip_entropy`, `strip_threshold`). See
`docs/poisoning.md`.
"""

from keras_adv.poisoning.backdoor import Poisoned, backdoor, label_flip
from keras_adv.poisoning.clean_label import clean_label_backdoor
from keras_adv.poisoning.clustering import activation_clustering
from keras_adv.poisoning.gradient_matching import gradient_matching
from keras_adv.poisoning.report import (
    PoisoningReport,
    attack_success_rate,
    clean_accuracy,
    evaluate_poisoning,
)
from keras_adv.poisoning.scan import PoisonScanReport, scan_training_set
from keras_adv.poisoning.spectral import spectral_scores, spectral_signature
from keras_adv.poisoning.strip import strip_entropy, strip_threshold
from keras_adv.poisoning.triggers import Trigger, apply_trigger

__all__ = [
    "PoisonScanReport",
    "Poisoned",
    "PoisoningReport",
    "Trigger",
    "activation_clustering",
    "apply_trigger",
    "attack_success_rate",
    "backdoor",
    "clean_accuracy",
    "clean_label_backdoor",
    "evaluate_poisoning",
    "gradient_matching",
    "label_flip",
    "scan_training_set",
    "spectral_scores",
    "spectral_signature",
    "strip_entropy",
    "strip_threshold",
]
