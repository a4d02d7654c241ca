"""`AdversarialModel(perturb=..., perturb_layer=...)`: which inputs (or
which layer output) the defense perturbs, checked once and bound per batch
through `keras_adv.attacks.inputs`."""

import dataclasses

import keras

from keras_adv import validation
from keras_adv.attacks import inputs
from keras_adv.defenses import combined


def check_spec(model, defense, perturb, perturb_layer):
    """`(perturb, perturb_layer)` checked against the model and the
    defense; a layer given as an object becomes its name.

    Raises:
        ValueError: both given, a layer that does not split the model, or
            a combined defense with either.

    Example: `check_spec(base, defense, ["image"], None)`.
    """
    if isinstance(perturb, (list, tuple)):
        perturb = list(perturb)
    if perturb is not None and perturb_layer is not None:
        raise ValueError(
            "perturb and perturb_layer cannot be combined. Received: "
            f"perturb={perturb!r} with perturb_layer={perturb_layer!r}")
    if isinstance(perturb_layer, keras.layers.Layer):
        perturb_layer = perturb_layer.name
    if perturb_layer is not None:
        inputs.split(model, perturb_layer)
    if (perturb is not None or perturb_layer is not None) and isinstance(
            defense, combined.Combined):
        raise ValueError(
            "perturb and perturb_layer do not take combined defenses. "
            f"Received: defense={defense!r}")
    return perturb, perturb_layer


def bind(model, x, spec, defense):
    """The `inputs.Bound` model of the batch `x` for `defense`, or `None`
    for a plain tensor input perturbed as a whole.

    Raises:
        ValueError: a defense that cannot train through the view (combined,
            one that stacks rows, or one input only with several chosen).

    Example: `bound = bind(base, [image, meta], (None, None), defense)`.
    """
    perturb, layer = spec
    bound = inputs.bind(model, x, perturb=perturb, perturb_layer=layer)
    if bound is None:
        return None
    if isinstance(defense, combined.Combined):
        raise ValueError(
            "Combined defenses do not train models with several inputs "
            f"or a perturb_layer. Received: defense={defense!r}")
    view = bound.view
    if not defense.keeps_rows:
        raise ValueError(
            f"{type(defense).__name__} stacks copies or generated points "
            "of the batch, which a model with other inputs held fixed or "
            f"a perturb_layer cannot take. Received: defense={defense!r}")
    if len(view.parts) > 1 and not defense.several_inputs:
        raise ValueError(
            f"{type(defense).__name__} perturbs one input; name it with "
            "AdversarialModel(perturb=...). Received: perturb="
            f"{perturb!r}, choosing {len(view.parts)} inputs")
    if not view.layer:
        view.parts = [validation.check_x(p, defense.clip) for p in view.parts]
    return bound


def view_defense(defense, perturb_layer):
    """The defense used through a view: without its box for a layer output
    (which has none).

    Example: `view_defense(PGDTraining(eps=0.1, clip=(0, 1)), "embedding")`
    has `clip=None`.
    """
    if perturb_layer is None or getattr(defense, "clip", None) is None:
        return defense
    if dataclasses.is_dataclass(defense) and any(
            f.name == "clip" for f in dataclasses.fields(defense)):
        return dataclasses.replace(defense, clip=None)
    return defense
