"""keras_adv: adversarial robustness for Keras 3 on TensorFlow.

Attacks (`keras_adv.attacks`), embedded and tfds data (`keras_adv.datasets`)
and small reference models (`keras_adv.models`).
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

from keras_adv import attacks, datasets, models  # noqa: E402
from keras_adv.attacks import fgsm, pgd  # noqa: E402

__all__ = ["__version__", "attacks", "datasets", "fgsm", "models", "pgd"]
