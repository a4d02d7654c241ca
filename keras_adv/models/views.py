"""`AdversarialModel(perturb=..., perturb_layer=...)`: which inputs (or
which layer output) the defense perturbs, checked once (`View`) and bound
per batch through `keras_adv.attacks.inputs`."""

import dataclasses

import keras

from keras_adv import validation
from keras_adv.attacks import inputs
from keras_adv.defenses import combined


def viewed_model(model):
    """The model whose inputs or layer a view names: the wrapped model of
    an `AdversarialModel` (wrapper form), the model itself otherwise.

    Example: `viewed_model(AdversarialModel(base, defense=d)) is base`.
    """
    base = getattr(model, "base", None)
    return base if base is not None else model


class View:
    """The inputs (`perturb`) or the layer output (`perturb_layer`) of a
    model that its defense perturbs, checked against `viewed_model(model)`
    and the defense; `None` and `None` for a plain input perturbed as a
    whole. A layer given as an object is held by its name.

    Raises:
        ValueError: both given, a layer that does not split the model, or
            a combined defense with either.

    Example: `view = View(model, defense, perturb=["image"])`.
    """

    def __init__(self, model, defense, perturb=None, perturb_layer=None):
        if isinstance(perturb, (list, tuple)):
            perturb = list(perturb)
        if perturb is not None and perturb_layer is not None:
            raise ValueError(
                "perturb and perturb_layer cannot be combined. Received: "
                f"perturb={perturb!r} with perturb_layer={perturb_layer!r}")
        if isinstance(perturb_layer, keras.layers.Layer):
            perturb_layer = perturb_layer.name
        if perturb_layer is not None:
            inputs.split(viewed_model(model), perturb_layer)
        if (perturb is not None or perturb_layer is not None) and isinstance(
                defense, combined.Combined):
            raise ValueError(
                "perturb and perturb_layer do not take combined defenses. "
                f"Received: defense={defense!r}")
        self.perturb = perturb
        self.perturb_layer = perturb_layer

    def defense(self, defense):
        """The defense used through the view: without its box for a layer
        output (which has none).

        Example: `View(model, d, perturb_layer="embedding").defense(
        PGDTraining(eps=0.1, clip=(0, 1)))` has `clip=None`.
        """
        if self.perturb_layer is None or getattr(defense, "clip",
                                                 None) is None:
            return defense
        if dataclasses.is_dataclass(defense) and any(
                f.name == "clip" for f in dataclasses.fields(defense)):
            return dataclasses.replace(defense, clip=None)
        return defense

    def bind(self, model, x, defense):
        """The `inputs.Bound` model of the batch `x` of `viewed_model(model)`
        for `defense`, or `None` for a plain tensor input perturbed as a
        whole.

        Raises:
            ValueError: a defense that cannot train through the view
                (combined, one that stacks rows, or one input only with
                several chosen).

        Example: `bound = view.bind(model, [image, meta], defense)`.
        """
        bound = inputs.bind(viewed_model(model), x, perturb=self.perturb,
                            perturb_layer=self.perturb_layer)
        if bound is None:
            return None
        _check_defense(defense, bound.view, self.perturb)
        if not bound.view.layer:
            bound.view.parts = [validation.check_x(p, defense.clip)
                                for p in bound.view.parts]
        return bound

    def target(self, model, x, defense):
        """`(target, x_in, defense)`: what the defense attacks and trains
        on for the batch `x`: `model`, `x` and `defense` themselves for a
        plain input, else the bound model of the perturbed tensors, those
        tensors and the defense used through the view.

        Example: `target, x_in, d = view.target(model, x, model.defense)`.
        """
        used = self.defense(defense)
        bound = self.bind(model, x, used)
        if bound is None:
            return model, x, defense
        return bound, bound.parts, used


def _check_defense(defense, view, perturb):
    """Raises unless `defense` can train through the bound `view`."""
    if isinstance(defense, combined.Combined):
        raise ValueError(
            "Combined defenses do not train models with several inputs "
            f"or a perturb_layer. Received: defense={defense!r}")
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
