"""Input views: what an attack perturbs in a model with several inputs, or
in a token model.

An attack normally perturbs its one input tensor. `view(model, x, perturb=,
perturb_layer=)` maps any other case onto that one:

- several inputs (`x` a list, tuple or dict, as the model takes them):
  `perturb` names the inputs the attack may change (Keras input names or
  dict keys, or positions; default: every floating-point input). The view
  holds those tensors (`parts`) and rebuilds the model's full input from
  them (`assemble`), the other inputs passing through untouched;
- a token model (int ids into an `Embedding`): `perturb_layer` names a
  layer, the model is split at that layer's output (Miyato et al. 2017,
  "Adversarial Training Methods for Semi-Supervised Text Classification"),
  the part is the layer's output and `assemble` feeds it to the rest of the
  model.

`Bound` is a view closed over one batch: a callable `parts -> logits` that
attacks and defenses take as the model. The single-tensor case returns no
view, so plain models keep the attacks' original code path.
"""

import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops
from keras_adv.validation import check_x

_SPLITS = weakref.WeakKeyDictionary()


def _leaf(value):
    """A tensor from an input leaf (float64 arrays become float32)."""
    if tf.is_tensor(value):
        return value
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return tf.convert_to_tensor(arr)


def declared_inputs(model):
    """The input structure a Keras model declares (`model.input`; the one
    input of a Sequential model), or `None` (subclassed models, callables).

    Example: `declared_inputs(model)` is a list for `keras.Model([a, b],
    out)`.
    """
    try:
        return model.input
    except (AttributeError, ValueError, TypeError):
        pass
    try:
        declared = model.inputs
    except (AttributeError, ValueError, TypeError):
        return None
    if not declared:
        return None
    return declared[0] if len(declared) == 1 else list(declared)


def _names(model, x):
    """The name of each leaf of `x` (`tf.nest` order): dict keys, else the
    model's input names (positions as strings when unknown)."""
    if isinstance(x, dict):
        return [str(k) for k in sorted(x)]
    n = len(tf.nest.flatten(x))
    declared = declared_inputs(model)
    if declared is not None and len(keras.tree.flatten(declared)) == n:
        return [t.name for t in keras.tree.flatten(declared)]
    return [str(i) for i in range(n)]


def _order(x):
    """Flat index of each position a user can name: list order for lists
    and tuples, insertion order of the keys for dicts."""
    if isinstance(x, dict):
        keys = sorted(x)
        return [keys.index(k) for k in x]
    return list(range(len(tf.nest.flatten(x))))


def _int_error(received):
    return ValueError(
        "Integer inputs (such as token ids) cannot be perturbed: pass "
        "perturb_layer= with the name of the embedding layer, e.g. "
        f"perturb_layer='embedding'. Received: {received}")


def resolve_perturb(model, x, perturb):
    """The flat indices (`tf.nest` order) of the inputs of `x` that
    `perturb` names, checked.

    Args:
        model: the model (its input names are valid names).
        x: the structured input (list, tuple or dict of tensors).
        perturb: `None` (every floating-point input), an input name or
            position, or a list of them.

    Returns:
        A sorted tuple of flat indices.

    Raises:
        ValueError: a name or position that does not exist (the message
            lists the valid ones), an integer input chosen, or no
            floating-point input at all.

    Example: `resolve_perturb(model, [img, meta], "image")` is `(0,)`.
    """
    leaves = tf.nest.flatten(x)
    names, order = _names(model, x), _order(x)
    dtypes = [tf.as_dtype(v.dtype if hasattr(v, "dtype")
                          else np.asarray(v).dtype) for v in leaves]
    if perturb is None:
        chosen = [i for i, d in enumerate(dtypes) if d.is_floating]
        if not chosen:
            raise _int_error("x with integer inputs only (dtypes "
                             f"{[d.name for d in dtypes]})")
        return tuple(chosen)
    items = perturb if isinstance(perturb, (list, tuple)) else [perturb]
    chosen = []
    for item in items:
        if isinstance(item, str) and item in names:
            chosen.append(names.index(item))
        elif (isinstance(item, numbers.Integral) and not isinstance(item, bool)
              and 0 <= item < len(order)):
            chosen.append(order[item])
        else:
            raise ValueError(
                f"perturb must name inputs of the model: one of {names} or "
                f"a position in [0, {len(order) - 1}], or a list of them. "
                f"Received: perturb={perturb!r}")
    if not items:
        raise ValueError(f"perturb must name at least one input. Received: "
                         f"perturb={perturb!r}")
    for i in chosen:
        if not dtypes[i].is_floating:
            raise _int_error(f"perturb={perturb!r} choosing input "
                             f"{names[i]!r} of dtype {dtypes[i].name}")
    return tuple(sorted(set(chosen)))


class View:
    """The tensors an attack perturbs (`parts`) and how to rebuild the
    model's input from them (`assemble`).

    Attributes:
        model: the model the attack runs (the model itself, or the part
            after `perturb_layer`).
        parts: list of the perturbed tensors (original dtypes).
        others: list of the other tensors the model needs.
        key: a hashable description (structure, positions, dtypes) for
            caches.
        layer: `True` when the part is a layer output.
        assembler: the `Assembler` of the structure (`(parts, others) ->
            model input`), a static argument of compiled loops.

    Example: `v = view(model, [img, meta], perturb="image")`.
    """

    def __init__(self, model, parts, others, rebuild, output, key, layer):
        self.model = model
        self.parts = parts
        self.others = others
        self._output = output
        self.key = key
        self.layer = layer
        # Compiled attack loops keep the assembler (no batch data in it)
        # and receive `others` as arguments.
        self.assembler = Assembler(rebuild, [p.dtype for p in parts], key)

    def assemble(self, parts, others=None):
        """The model input with `parts` (a list, cast back to the original
        dtypes) in place of the perturbed tensors.

        Example: `model(v.assemble(v.parts))`.
        """
        return self.assembler(parts, self.others if others is None else others)

    def output(self, parts):
        """The attack's result: `x`'s structure with the perturbed parts in
        place (or the layer output, for `perturb_layer`).

        Example: `x_adv = v.output(adv_parts)`.
        """
        parts = [tf.cast(p, q.dtype) for p, q in zip(parts, self.parts)]
        return self._output(parts)


class Assembler:
    """`(parts, others) -> model input` for one input structure: the parts
    cast back to their dtypes and put in place. Equal (and hashed) by the
    view's `key`, so that it serves as a static argument of a compiled
    loop; it holds no batch data.

    Example: `v.assembler(v.parts, v.others)`.
    """

    def __init__(self, rebuild, dtypes, key):
        self._rebuild = rebuild
        self._dtypes = dtypes
        self.key = key

    def __call__(self, parts, others):
        parts = [tf.cast(p, d) for p, d in zip(parts, self._dtypes)]
        return self._rebuild(parts, others)

    def __eq__(self, other):
        return isinstance(other, Assembler) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


def view(model, x, *, perturb=None, perturb_layer=None):
    """The `View` of `x` for an attack, or `None` for a plain tensor input
    perturbed as a whole (the attacks' original path).

    Args:
        model: a Keras model (Functional or Sequential for `perturb_layer`).
        x: a tensor or array, or a list, tuple or dict of them.
        perturb: the inputs to perturb (see `resolve_perturb`).
        perturb_layer: the name of a layer of `model`, or the layer, whose
            output is perturbed instead of the inputs; `None` for none.

    Returns:
        A `View`, or `None`.

    Raises:
        ValueError: a bad `perturb` or `perturb_layer`, both given, or an
            integer input without `perturb_layer`.

    Example: `v = view(model, {"image": img, "meta": meta},
    perturb="image")`.
    """
    if perturb_layer is not None:
        if perturb is not None:
            raise ValueError(
                "perturb and perturb_layer cannot be combined: the attack "
                "perturbs the layer output only. Received: "
                f"perturb={perturb!r} with perturb_layer={perturb_layer!r}")
        return _layer_view(model, x, perturb_layer)
    if not is_structured(model, x):
        dtype = getattr(x, "dtype", None)
        if dtype is not None and np.dtype(getattr(dtype, "as_numpy_dtype",
                                                   dtype)).kind in "iub":
            raise _int_error(f"x with dtype {tf.as_dtype(dtype).name}")
        if perturb is not None:
            resolve_perturb(model, [np.zeros((1, 1), "float32")], perturb)
        return None
    leaves = [_leaf(v) for v in tf.nest.flatten(x)]
    skeleton = tf.nest.map_structure(lambda _: 0, x)  # no data kept
    count = len(leaves)
    positions = resolve_perturb(model, x, perturb)
    parts = [leaves[i] for i in positions]
    others = [v for i, v in enumerate(leaves) if i not in positions]

    def rebuild(parts, others):
        parts, others = list(parts), list(others)
        flat = [parts.pop(0) if i in positions else others.pop(0)
                for i in range(count)]
        return tf.nest.pack_sequence_as(skeleton, flat)

    key = (_structure_key(x), positions,
           tuple(v.dtype.name for v in leaves))
    return View(model, parts, others, rebuild,
                lambda parts: rebuild(parts, others), key, False)


def is_structured(model, x):
    """Whether `x` holds several model inputs: a dict, or a list or tuple
    of as many entries as the model declares inputs in a list (arrays or
    tensors when it declares one), or of arrays or tensors for a model
    without declared inputs. A list of numbers or of lists is one array.

    Example: `is_structured(model, [img, meta])`.
    """
    if isinstance(x, dict):
        return True
    if not isinstance(x, (list, tuple)) or not x:
        return False
    arrays = all(tf.is_tensor(v) or isinstance(v, np.ndarray) for v in x)
    declared = declared_inputs(model)
    if declared is None:
        return arrays
    if isinstance(declared, (list, tuple)):
        return len(declared) == len(x) and (arrays or len(x) > 1)
    return isinstance(declared, dict)


def _structure_key(x):
    if isinstance(x, dict):
        return ("dict", tuple(sorted(x)))
    return (type(x).__name__, len(x))


def split(model, perturb_layer):
    """`(prefix, head, upstream)`: `prefix` maps the model inputs that feed
    the layer (flat indices `upstream`) to the layer output; `head` maps
    `[layer output] + the other inputs` to the model output. Cached per
    model and layer.

    Raises:
        ValueError: an unknown layer name (the message lists the layers), a
            model that is neither Functional nor Sequential (subclassed
            models cannot be split), or a layer that cannot split the model.

    Example: `prefix, head, upstream = split(model, "embedding")`.
    """
    layer = _find_layer(model, perturb_layer)
    per_model = _SPLITS.setdefault(model, {})
    if id(layer) in per_model:
        return per_model[id(layer)]
    inputs = keras.tree.flatten(declared_inputs(model))
    upstream = []
    for i, t in enumerate(inputs):
        try:
            keras.Model(t, layer.output)
            upstream.append(i)
        except ValueError:
            pass
    rest = [t for i, t in enumerate(inputs) if i not in upstream]
    try:
        if not upstream:
            raise ValueError("no single input feeds the layer")
        feed = [inputs[i] for i in upstream]
        prefix = keras.Model(feed[0] if len(feed) == 1 else feed,
                             layer.output)
        head = keras.Model([layer.output] + rest, model.outputs[0])
    except ValueError as e:
        raise ValueError(
            "perturb_layer must be a layer whose output the rest of the "
            f"model reads ({e}). Received: perturb_layer={layer.name!r}"
        ) from None
    per_model[id(layer)] = (prefix, head, tuple(upstream))
    return per_model[id(layer)]


def _find_layer(model, perturb_layer):
    if declared_inputs(model) is None:
        raise ValueError(
            "perturb_layer needs a Functional or Sequential model (a "
            "subclassed model cannot be split at a layer). Received: "
            f"model of type {type(model).__name__} with "
            f"perturb_layer={perturb_layer!r}")
    layers = list(model.layers)
    if isinstance(perturb_layer, keras.layers.Layer):
        if any(layer is perturb_layer for layer in layers):
            return perturb_layer
        name = perturb_layer.name
    elif isinstance(perturb_layer, str):
        name = perturb_layer
        for layer in layers:
            if layer.name == name:
                return layer
    else:
        name = perturb_layer
    raise ValueError(
        "perturb_layer must be the name of a layer of the model (or the "
        f"layer): one of {[layer.name for layer in layers]}. Received: "
        f"perturb_layer={name!r}")


def _layer_view(model, x, perturb_layer):
    prefix, head, upstream = split(model, perturb_layer)
    leaves = [_leaf(v) for v in tf.nest.flatten(x)]
    feed = [leaves[i] for i in upstream]
    part = ops.call_model(prefix, feed[0] if len(feed) == 1 else feed)
    others = [v for i, v in enumerate(leaves) if i not in upstream]
    key = ("layer", id(head), tuple(v.dtype.name for v in leaves))
    return View(head, [part], others,
                lambda parts, others: list(parts) + list(others),
                lambda parts: parts[0], key, True)


class Bound:
    """A model restricted to the perturbed inputs of one batch: called on
    the parts (one tensor when there is one, else a list), it runs the
    model on the full input with the other inputs fixed.

    With `prefix` (a `perturb_layer` view in training), a training-mode
    call recomputes the layer output from the batch inside the caller's
    gradient tape and adds the perturbation `z - part` to it, so that the
    weight gradient reaches the layers before the perturbed one (the
    embedding); an inference-mode call feeds `z` to the head directly.

    Example: `logits = Bound(v)(v.parts[0])`.
    """

    accepts_training = True

    def __init__(self, v, prefix=None, feed=None):
        self.view = v
        self._prefix = prefix
        self._feed = feed

    def __call__(self, z, training=False):
        parts = list(z) if isinstance(z, (list, tuple)) else [z]
        if self._prefix is not None and training:
            live = ops.call_model(self._prefix, self._feed, training=True)
            base = tf.stop_gradient(self.view.parts[0])
            parts = [live + (tf.cast(parts[0], live.dtype) - base)]
        return ops.call_model(self.view.model, self.view.assemble(parts),
                              training=training)

    @property
    def output_shape(self):
        """The output shape of the model (for the class count)."""
        return self.view.model.output_shape

    @property
    def keras_model(self):
        """The Keras model this view calls (where
        `defenses.tensors.frozen_batch_statistics` finds its
        BatchNormalization layers)."""
        return self.view.model

    @property
    def parts(self):
        """The clean parts: one tensor, or a list when there are several."""
        parts = self.view.parts
        return parts[0] if len(parts) == 1 else list(parts)


def bind(model, x, *, perturb=None, perturb_layer=None):
    """A `Bound` model for a training step, or `None` for a plain tensor
    input (see `view`). With `perturb_layer`, training-mode calls recompute
    the layer output (see `Bound`).

    Example: `bound = bind(model, [img, meta], perturb="image")`.
    """
    v = view(model, x, perturb=perturb, perturb_layer=perturb_layer)
    if v is None:
        return None
    if not v.layer:
        return Bound(v)
    prefix, _, upstream = split(model, perturb_layer)
    leaves = [_leaf(t) for t in tf.nest.flatten(x)]
    feed = [leaves[i] for i in upstream]
    return Bound(v, prefix, feed[0] if len(feed) == 1 else feed)


def run_on_part(name, attack, model, x, y, *, perturb, perturb_layer, clip,
                **kwargs):
    """Runs `attack` on the one perturbed input of a view, or returns
    `None` for a plain tensor input (the attack's own path).

    The attack runs on `Bound(view)` and the perturbed tensor inside a
    `tf.function` traced for this call (the graph path of the attack: no
    row subsets, so that the other inputs stay aligned with the batch). A
    call therefore traces once: slower than a plain model's cached loop.

    The home of the `perturb`/`perturb_layer` arguments of the attacks
    that perturb one input (`apgd`, `square`, `deepfool`): `perturb` names
    the one input of a model with several inputs to perturb (name or
    position; default: the only floating-point input), the others passing
    through; `perturb_layer` names a layer whose output is perturbed
    instead, and the result is then the adversarial layer output. Several
    inputs at once: `pgd`.

    Args:
        name: the attack's name, for messages.
        attack: the public attack function.
        model, x, y: as the attack.
        perturb, perturb_layer: see `view`.
        clip: the attack's box (ignored with `perturb_layer`).
        **kwargs: the attack's other arguments.

    Returns:
        `None`, or the result in the structure of `x` (the layer output for
        `perturb_layer`); a `(result, success)` pair stays a pair.

    Raises:
        ValueError: as `view`, or several inputs to perturb.

    Example: `out = run_on_part("square", square, model, [img, meta], None,
    perturb="image", perturb_layer=None, clip=(0, 1), eps=0.1)`.
    """
    v = view(model, x, perturb=perturb, perturb_layer=perturb_layer)
    if v is None:
        return None
    if len(v.parts) != 1:
        raise ValueError(
            f"{name} perturbs one input of a model with several inputs; use "
            "pgd for several, or name one with perturb=. Received: "
            f"perturb={perturb!r}, choosing {len(v.parts)} inputs")
    clip = None if v.layer else clip
    part = check_x(v.parts[0], clip)
    bound = Bound(v)

    def run():
        return attack(bound, part, y, clip=clip, **kwargs)

    out = tf.function(run, autograph=False)() if tf.executing_eagerly() \
        else run()
    if isinstance(out, tuple):
        return (v.output([out[0]]),) + tuple(out[1:])
    return v.output([out])
