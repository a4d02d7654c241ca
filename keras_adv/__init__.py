"""keras_adv: adversarial robustness for Keras 3 on TensorFlow.

Attacks (`keras_adv.attacks`), defenses that plug into `model.fit`
(`keras_adv.defenses`, `keras_adv.models.AdversarialModel`), layers
(`keras_adv.layers`), robustness evaluation (`keras_adv.evaluate_robustness`),
callbacks, and data (`keras_adv.datasets`, embedded offline by default).
"""

__version__ = "0.1.0"

_MIN_TF = (2, 16)


def _check_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - exercised by hand
        raise ImportError(
            "keras_adv needs TensorFlow >= 2.16 (with Keras 3), which is not "
            "installed. Install it with `pip install 'tensorflow>=2.16'`."
        ) from e
    version = tuple(int(p) for p in tf.__version__.split(".")[:2])
    if version < _MIN_TF:
        raise ImportError(
            f"keras_adv needs TensorFlow >= 2.16 (Keras 3). Found TensorFlow "
            f"{tf.__version__}. Upgrade with `pip install -U 'tensorflow>=2.16'`."
        )
    import keras

    if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover
        raise ImportError(
            f"keras_adv needs Keras 3. Found Keras {keras.__version__}."
        )
    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "keras_adv needs the TensorFlow backend of Keras. Found "
            f"KERAS_BACKEND={keras.backend.backend()!r}; set "
            "KERAS_BACKEND=tensorflow."
        )


_check_tensorflow()

from keras_adv import (  # noqa: E402
    attacks,
    callbacks,
    datasets,
    defenses,
    evaluation,
    generative,
    layers,
    models,
)
from keras_adv.attacks import apgd, deepfool, fgsm, pgd, square  # noqa: E402
from keras_adv.evaluation import (  # noqa: E402
    RobustnessReport,
    evaluate_robustness,
)

__all__ = [
    "RobustnessReport",
    "__version__",
    "apgd",
    "attacks",
    "callbacks",
    "datasets",
    "deepfool",
    "defenses",
    "evaluate_robustness",
    "evaluation",
    "fgsm",
    "generative",
    "layers",
    "models",
    "pgd",
    "square",
]
