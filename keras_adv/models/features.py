"""`feature_model`: a model's internal representation, through the
functional API (the one feature model of the package)."""

import keras

from keras_adv import validation


def feature_model(model, *, layer=None):
    """A model mapping the inputs of `model` to a representation.

    `layer=None` gives the input of the model's last layer (the penultimate
    representation: the features of `generative.frechet_distance` and of
    the poisoning detectors); a layer name gives that layer's output. Works
    for functional and `Sequential` models (built, with known inputs), and
    for an `AdversarialModel` wrapping one (its representation is the
    wrapped model's, as is its output), freshly loaded or not.

    Args:
        model: a built `keras.Model`.
        layer: `None` or the name of one of the model's layers.

    Returns:
        A `keras.Model` sharing weights with `model`.

    Raises:
        ValueError: `model` is not a built Keras model or `layer` names no
            layer of it.

    Example:

    >>> fm = feature_model(keras_adv.models.small_cnn())
    >>> fm.output_shape
    (None, 128)
    """
    validation.check_keras_model(model)
    model = _wrapped(model)
    names = [lay.name for lay in model.layers]
    if layer is not None and layer not in names:
        raise ValueError(
            f"layer must name a layer of the model ({', '.join(names)}). "
            f"Received: layer={validation.short(layer)}"
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "model must be built with known inputs: a Functional or "
            "Sequential model with a keras.Input, or an AdversarialModel "
            "wrapping one (a subclassed model has no layer graph to read). "
            f"Received: model={model.name!r}")
    out = (model.layers[-1].input if layer is None
           else model.get_layer(layer).output)
    inputs = inputs[0] if len(inputs) == 1 else inputs
    return keras.Model(inputs, out, name=f"{model.name}_features")


def _wrapped(model):
    """The model an `AdversarialModel` wraps (same call, a layer graph), or
    `model` itself."""
    from keras_adv.models.adversarial import AdversarialModel

    if isinstance(model, AdversarialModel) and model.base is not None and (
            type(model).call is AdversarialModel.call):
        return model.base
    return model
