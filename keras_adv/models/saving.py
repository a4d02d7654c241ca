"""Saving an `AdversarialModel`: its config (Keras' fields, the defense,
the wrapped model, the view, and a subclass's simple constructor
arguments, recorded at construction) and the model rebuilt from it."""

import inspect

import keras


def simple_arguments(cls, args, kwargs):
    """The constructor arguments passed to `cls` other than `base`,
    `defense`, `name`, `perturb` and `perturb_layer`, if they are all simple
    Python values; else None.

    Example: `simple_arguments(Net, (), {"width": 64})` is `{"width": 64}`.
    """
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    spec = inspect.getfullargspec(cls.__init__)
    arguments = dict(bound.arguments)
    arguments.pop(spec.args[0], None)
    if spec.varargs and arguments.pop(spec.varargs, ()):
        return None
    arguments.update(arguments.pop(spec.varkw, {}) if spec.varkw else {})
    for key in ("base", "defense", "name", "perturb", "perturb_layer"):
        arguments.pop(key, None)
    simple = (str, int, float, bool, type(None))
    try:
        values = keras.tree.flatten(arguments)
    except TypeError:
        return None
    if not all(isinstance(v, simple) for v in values):
        return None
    return arguments


def shape_config(config):
    """A build config with its one input shape as a tuple (a `.keras` file
    stores it as a JSON list).

    Example: `shape_config({"input_shape": [None, 4]})` is
    `{"input_shape": (None, 4)}`.
    """
    shape = (config or {}).get("input_shape")
    if isinstance(shape, list) and all(
            d is None or isinstance(d, int) for d in shape):
        return {**config, "input_shape": tuple(shape)}
    return config


def config_of(model, base_class):
    """The config of `model`: name, trainable, the defense, the view and the
    wrapped model, plus the recorded constructor arguments of a subclass of
    `base_class` that does not write its own `get_config`.

    Raises:
        NotImplementedError: a subclass made with constructor arguments
            that are not simple Python values, without its own get_config.

    Example: `config_of(model, AdversarialModel)`.
    """
    config = {"name": model.name, "trainable": model.trainable}
    cls = type(model)
    if cls is not base_class and cls.get_config is base_class.get_config:
        recorded = getattr(model, "_adv_init_config", None)
        if recorded is None:
            raise NotImplementedError(
                f"{cls.__name__} was created with constructor arguments that "
                "are not simple Python values (numbers, strings, lists of "
                "them); implement get_config() (and from_config() if needed) "
                "to save it.")
        config.update(recorded)
    config["defense"] = keras.saving.serialize_keras_object(model.defense)
    if model.perturb is not None:
        config["perturb"] = model.perturb
    if model.perturb_layer is not None:
        config["perturb_layer"] = model.perturb_layer
    if model.base is not None:
        config["base"] = keras.saving.serialize_keras_object(model.base)
    return config


def rebuild(cls, config, custom_objects=None):
    """The model of class `cls` (the wrapper or a subclass) and its defense
    from `config_of`'s config, and the view `(perturb, perturb_layer)` to
    set on a subclass that fixes its defense in `__init__` (`None` when
    the constructor took it).

    Example: `model, view = rebuild(AdversarialModel, model.get_config())`.
    """
    config = dict(config)
    defense = keras.saving.deserialize_keras_object(
        config.pop("defense"), custom_objects=custom_objects)
    if "base" in config:
        config["base"] = keras.saving.deserialize_keras_object(
            config["base"], custom_objects=custom_objects)
    if "defense" in inspect.signature(cls.__init__).parameters:
        return cls(defense=defense, **config), None
    # A subclass that fixes its defense in __init__: build it, then put the
    # saved defense in place.
    view = (config.pop("perturb", None), config.pop("perturb_layer", None))
    model = cls(**config)
    model.defense = defense
    return model, (None if view == (None, None) else view)
