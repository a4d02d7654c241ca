"""keras_adv: adversarial robustness for Keras 3 on TensorFlow.

Attacks (`keras_adv.attacks`), defenses that plug into `model.fit`
(`keras_adv.defenses`, `keras_adv.models.AdversarialModel`), layers
(`keras_adv.layers`), robustness evaluation (`keras_adv.evaluate_robustness`),
certified robustness by randomized smoothing (`keras_adv.certification`),
training-time threats (`keras_adv.poisoning`), generative models
(`keras_adv.generative`), callbacks, and data (`keras_adv.datasets`,
embedded offline by default).

The submodules load on first use (`keras_adv.attacks`, `keras_adv.pgd`, ...),
so that `keras-adv --help` starts without TensorFlow. When TensorFlow is
already imported, `import keras_adv` loads them at once; otherwise they load
as soon as Keras and TensorFlow are imported. Either way the saved classes
(`AdversarialModel`, the defenses, the layers) are registered for a bare
`keras.models.load_model` in any import order.
"""

import importlib as _importlib
import sys as _sys

__version__ = "0.1.0"

_MIN_TF = (2, 17)


def _check_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - exercised by hand
        raise ImportError(
            "keras_adv needs TensorFlow >= 2.17 (with Keras >= 3.4), which is not "
            "installed. Install it with `pip install 'tensorflow>=2.17.1'`."
        ) from e
    version = tuple(int(p) for p in tf.__version__.split(".")[:2])
    if version < _MIN_TF:
        raise ImportError(
            f"keras_adv needs TensorFlow >= 2.17 (Keras >= 3.4). Found TensorFlow "
            f"{tf.__version__}. Upgrade with `pip install -U 'tensorflow>=2.17.1'`."
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


# Attributes loaded on first use: `import keras_adv.cli` (the `keras-adv`
# command) must not import TensorFlow, and every submodule imports it.
_SUBMODULES = (
    "attacks",
    "auditing",
    "callbacks",
    "certification",
    "datasets",
    "defenses",
    "evaluation",
    "generative",
    "layers",
    "models",
    "poisoning",
)
_ATTRIBUTES = {
    "apgd": "attacks",
    "deepfool": "attacks",
    "fgsm": "attacks",
    "pgd": "attacks",
    "square": "attacks",
    "AuditReport": "auditing",
    "RobustnessReport": "evaluation",
    "audit": "auditing",
    "evaluate_robustness": "evaluation",
}

__all__ = sorted(["__version__", *_SUBMODULES, *_ATTRIBUTES])


def _load_all():
    """Imports every submodule (and so registers every serialisable class)."""
    _check_tensorflow()
    for name in _SUBMODULES:
        _importlib.import_module(f"{__name__}.{name}")


def __getattr__(name):
    if name in _SUBMODULES or name in _ATTRIBUTES:
        _load_all()
        module = _importlib.import_module(
            f"{__name__}.{_ATTRIBUTES.get(name, name)}")
        value = module if name in _SUBMODULES else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _LoadWithKeras:
    """A one-shot import hook: once Keras and TensorFlow have both finished
    importing (in either order, after `import keras_adv`), every submodule
    is loaded, so that a bare `keras.models.load_model` finds keras_adv's
    registered classes. It adds nothing to `import keras_adv` itself, so
    `keras-adv --help` stays free of TensorFlow (docs/architecture.md).
    """

    WATCHED = ("keras", "tensorflow")

    def find_spec(self, name, path=None, target=None):
        if name not in self.WATCHED:
            return None
        for finder in _sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_load(module):
            exec_module(module)
            self.loaded(name)

        loader.exec_module = exec_and_load
        return spec

    def loaded(self, name):
        """Called when `name` has finished importing: loads keras_adv once
        the other watched module is fully imported too."""
        for other in self.WATCHED:
            module = _sys.modules.get(other)
            if other != name and (module is None or getattr(
                    getattr(module, "__spec__", None), "_initializing", False)):
                return
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)
        try:
            _load_all()
        except Exception:  # noqa: BLE001 - raised again on first use
            pass


if "tensorflow" in _sys.modules:
    # TensorFlow is loaded already, so loading everything now costs little and
    # registers the Keras serialisables before a bare keras.models.load_model.
    _load_all()
elif not any(isinstance(f, _LoadWithKeras) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _LoadWithKeras())
