"""Insert Stochastic Activation Pruning into a trained Keras model."""

import keras

from keras_adv.layers.sap import StochasticActivationPruning


def _is_relu(layer):
    """Whether `layer` ends in a ReLU (a ReLU layer or a relu activation)."""
    if isinstance(layer, keras.layers.ReLU):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.relu or (
        getattr(activation, "__name__", None) == "relu"
    )


def insert_sap(model, *, frac=1.0, layers=None, seed=None,
               active_in_training=False):
    """A new model with Stochastic Activation Pruning after every ReLU.

    Dhillon et al. (ICLR 2018) apply SAP to an already trained network, after
    each ReLU. The new model copies the weights of `model` (the original is
    left untouched) and has a `StochasticActivationPruning` layer after every
    layer that ends in a ReLU (a `ReLU` layer, an `Activation("relu")`, or a
    layer built with `activation="relu"`), or after the layers named in
    `layers`. Sequential models stay flat; in functional models each chosen
    layer is replaced by a small Sequential `[layer, SAP]` block.

    Evaluate the result with EOT (`keras_adv.attacks.pgd(...,
    eot_samples=n)`): without it SAP looks robust only because single-sample
    gradients are noisy (Athalye et al. 2018).

    Args:
        model: a built Sequential or functional Keras model.
        frac: SAP draws per activation (see `StochasticActivationPruning`).
        layers: names of the layers to follow with SAP; `None` means every
            layer that ends in a ReLU.
        seed: seed of the first SAP layer; layer i uses `seed + i`.
        active_in_training: passed to every SAP layer.

    Returns:
        A new Keras model with the same inputs, outputs and weights.

    Raises:
        ValueError: `model` is not a built Sequential or functional model,
            a name in `layers` is not in the model, or nothing would be
            pruned.

    Example:

    >>> base = keras.Sequential([keras.Input((4,)),
    ...                          keras.layers.Dense(8, activation="relu"),
    ...                          keras.layers.Dense(3)])
    >>> sap_model = insert_sap(base, seed=0)
    >>> [type(l).__name__ for l in sap_model.layers]
    ['Dense', 'StochasticActivationPruning', 'Dense']
    """
    if not isinstance(model, keras.Model) or not getattr(model, "built", False):
        raise ValueError(
            "model must be a built Sequential or functional Keras model. "
            f"Received: model={model!r}"
        )
    # Sequential and functional models have public inputs and outputs; a
    # subclassed model has neither.
    graph = isinstance(model, keras.Sequential) or (
        hasattr(model, "inputs") and hasattr(model, "outputs"))
    if not graph:
        raise ValueError(
            "insert_sap needs a Sequential or functional model (a subclassed "
            "model has no layer graph to edit). Received: model of type "
            f"{type(model).__name__}; add StochasticActivationPruning layers "
            "to its call() instead"
        )
    names = {layer.name for layer in model.layers}
    if layers is not None:
        unknown = sorted(set(layers) - names)
        if unknown:
            raise ValueError(
                f"layers must name layers of the model. Received: unknown "
                f"layers {unknown}; the model has {sorted(names)}"
            )
        chosen = set(layers)
    else:
        chosen = {layer.name for layer in model.layers if _is_relu(layer)}
    if not chosen:
        raise ValueError(
            "insert_sap found no ReLU to follow with SAP. Received: a model "
            "without ReLU layers and layers=None; name the layers explicitly"
        )
    counter = iter(range(len(chosen)))

    def new_sap(name):
        i = next(counter)
        return StochasticActivationPruning(
            frac=frac, seed=None if seed is None else seed + i,
            active_in_training=active_in_training, name=f"{name}_sap",
        )

    copies = {}

    def copy(layer):
        copies[layer.name] = layer.__class__.from_config(layer.get_config())
        return copies[layer.name]

    if isinstance(model, keras.Sequential):
        stack = [keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)]
        for layer in model.layers:
            stack.append(copy(layer))
            if layer.name in chosen:
                stack.append(new_sap(layer.name))
        new = keras.Sequential(stack, name=f"{model.name}_sap")
    else:
        def clone(layer):
            if layer.name in chosen:
                return keras.Sequential([copy(layer), new_sap(layer.name)],
                                        name=f"{layer.name}_with_sap")
            return copy(layer)

        new = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in copies:  # input layers are not cloned
            copies[layer.name].set_weights(layer.get_weights())
    return new
