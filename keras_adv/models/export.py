"""Serving a model anywhere: `export_model` writes a SavedModel, a TFLite
flatbuffer with builtin ops only, or an ONNX file, and `load_served` runs
one in its own runtime (`docs/serving.md`)."""

import contextlib
import io
import logging
import numbers
import os
import re
import shutil
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.models import loading

FORMATS = ("saved_model", "tflite", "onnx")
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx"}


def export_model(model, path, *, format=None, input_signature=None,
                 opset=17):
    """Writes `model` for serving in one of three formats.

    - `"saved_model"`: `model.export(path)`, a SavedModel directory with a
      `serve` signature (TF Serving, `tf.saved_model.load`). Seeded random
      layers keep their Keras generator state. The written graph passes
      `keras_adv.models.load_model`'s op scan, or the export is refused.
    - `"tflite"`: a `.tflite` file converted with `TFLITE_BUILTINS` only,
      so the stock interpreter runs it (no Flex delegate).
    - `"onnx"`: an `.onnx` file converted by `tf2onnx` (the `serving` extra:
      `pip install keras_adv[serving]`) at `opset`, for ONNX Runtime.

    `format=None` takes the format from `path`: a `.tflite` file, an
    `.onnx` file, otherwise a SavedModel directory. A given `format` must
    agree with that rule (`format="onnx"` with `"m.tflite"` is refused).

    For TFLite and ONNX the model is traced inside `ops.runtime_random()`:
    Stochastic Activation Pruning, `RandomizedMixture` and
    `SmoothedClassifier` draw with the runtime's own random ops, seeded or
    not (a runtime has no seeded state that lasts across calls).

    Args:
        model: a Keras model with one input (Sequential, functional or
            subclassed; a subclassed model unbuilt is called once on zeros).
        path: the file (TFLite, ONNX) or directory (SavedModel) to write.
        format: `None` (from `path`), `"saved_model"`, `"tflite"` or
            `"onnx"`.
        input_signature: a `tf.TensorSpec` of the one input (or a list of
            one), its sizes those of the model's declared input where it
            declares one; `None` takes it from `model.inputs` (or those of
            the model's `base` or first member), with a free batch size.
        opset: the ONNX opset, an integer tf2onnx supports.

    Returns:
        `path`.

    Raises:
        ValueError: one line naming the argument: an unknown `format` or one
            that contradicts the extension of `path`; a model with several
            inputs; an `input_signature` that is not a `TensorSpec` or does
            not fit the model's input; a non-integer `opset`; or the runtime
            cannot hold an op of the model (naming the layer and the op).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> export_model(model, "/tmp/model.tflite")
    '/tmp/model.tflite'
    """
    path, format = _check_path_format(path, format)
    if isinstance(model, loading.SavedModelFunction):
        raise ValueError(
            "model must be a keras.Model: a loaded SavedModel is already "
            "exported (serve it as it is, or export the Keras model it was "
            f"written from). Received: model={model!r}")
    validation.check_keras_model(model)
    spec = _check_signature(model, input_signature)
    if format == "onnx":
        opset = _check_opset(opset)
    if not model.built:  # a subclassed model builds on its first call
        model(tf.zeros([1] + list(spec.shape[1:]), spec.dtype), training=False)
    if format == "saved_model":
        return _saved_model(model, path, spec)
    writer = _tflite if format == "tflite" else _onnx
    content = writer(model, spec, opset)
    with open(path, "wb") as f:
        f.write(content)
    return path


def format_of(path):
    """The format `path` names: `"tflite"` for a `.tflite` file, `"onnx"`
    for an `.onnx` file, `"saved_model"` (a directory) otherwise.

    Example: `format_of("m.onnx")` is `"onnx"`.
    """
    lowered = os.fspath(path).lower()
    for name, extension in EXTENSIONS.items():
        if lowered.endswith(extension):
            return name
    return "saved_model"


def _check_path_format(path, format):
    path = validation.check_path(path)
    if path.lower().endswith((".keras", ".h5")):
        raise ValueError(
            "path must be a SavedModel directory, a .tflite or an .onnx file "
            f"(model.save writes .keras files). Received: path={path!r}")
    if format is None:
        return path, format_of(path)
    if format not in FORMATS:
        raise ValueError(
            f"format must be one of {FORMATS} or None (from the extension of "
            f"path). Received: format={format!r}")
    if format_of(path) != format:
        wanted = ("a directory path without the .tflite or .onnx extension"
                  if format == "saved_model"
                  else f"a path ending in {EXTENSIONS[format]}")
        raise ValueError(
            f"format must agree with path: format={format!r} writes {wanted} "
            "(format=None takes the format from path). Received: "
            f"format={format!r}, "
            f"path={path!r}")
    return path, format


def _check_opset(opset):
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise ValueError("opset must be an integer ONNX opset, e.g. 17. "
                         f"Received: opset={opset!r}")
    return int(opset)


def _check_signature(model, input_signature):
    """The one input's `tf.TensorSpec`: the one given, checked against the
    model's declared input, or the model's own."""
    declared = _declared_inputs(model)
    if declared is not None and len(declared) != 1:
        names = [getattr(t, "name", "?") for t in declared]
        raise ValueError(
            "model must have one input to be exported (serve a model with "
            "several inputs with model.export(path)). Received: model "
            f"{model.name!r} with {len(declared)} inputs {names}")
    if input_signature is None:
        return default_signature(model)
    spec = input_signature
    if isinstance(spec, (list, tuple)) and len(spec) == 1:
        spec = spec[0]
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank is None or not (
            spec.dtype.is_floating or spec.dtype.is_integer):
        raise ValueError(
            "input_signature must be a tf.TensorSpec of the model's one input "
            "with a known rank and a numeric dtype (or a list of one), e.g. "
            "tf.TensorSpec((None, 28, 28, 1), tf.float32). Received: "
            f"input_signature={validation.short(input_signature, 120)}")
    got = tuple(spec.shape.as_list())
    if declared and not validation.shape_fits(
            (None,) + tuple(declared[0].shape[1:]), got, trailing=False):
        raise ValueError(
            "input_signature must have the shape of the model's input "
            f"{(None,) + tuple(declared[0].shape[1:])}. Received: "
            f"input_signature with shape {got}")
    return spec


def _declared_inputs(model):
    """The inputs the model (or its `base`, or its first member) declares,
    or None."""
    for candidate in (model, getattr(model, "base", None),
                      (getattr(model, "members", None) or [None])[0]):
        try:
            inputs = getattr(candidate, "inputs", None)
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            return list(inputs)
    return None


def default_signature(model):
    """A `tf.TensorSpec` (free batch size) of the model's one input, from
    `model.inputs`, or those of its `base` or first of its `members`, or
    the input shape a built subclassed model records (`get_build_config`).

    Example: `default_signature(model)`.
    """
    inputs = _declared_inputs(model)
    if inputs and len(inputs) == 1:
        shape = [None] + list(inputs[0].shape[1:])
        return tf.TensorSpec(shape, inputs[0].dtype, name="x")
    built = (model.get_build_config() or {}).get("input_shape") \
        if model.built else None  # a subclassed model, built or loaded
    if isinstance(built, (list, tuple)) and built and all(
            d is None or isinstance(d, int) for d in built):
        return tf.TensorSpec([None] + list(built[1:]), model.input_dtype,
                             name="x")
    raise ValueError(
        "input_signature is needed: the model does not declare one input. "
        f"Received: model {getattr(model, 'name', model)!r}; pass "
        "input_signature=tf.TensorSpec((None, ...), tf.float32)")


def _saved_model(model, path, spec):
    """`model.export`, then the op scan of `load_model` on what was
    written (removed again if refused and new)."""
    existed = os.path.exists(path)
    try:
        model.export(path, format="tf_saved_model", input_signature=[spec],
                     verbose=False)
    except Exception as err:  # a trace error is pages long
        raise _failure(model, "saved_model", err) from None
    try:
        loading.scan_saved_model(path)
    except ValueError as err:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        found = re.search(r"op (\S+) in ", str(err))
        raise ValueError(
            "model must export to a SavedModel without ops that touch files, "
            "the network or processes (keras_adv.models.load_model refuses "
            f"them){_lambda_hint(model)}. Received: model {model.name!r} "
            f"with op {found.group(1) if found else '?'}") from None
    return path


def _failure(model, runtime, err):
    """One line for a conversion that fails: the framework's own message
    (its first meaningful line) and the model's Lambda layers, if any."""
    text = str(err) or type(err).__name__
    bold = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.S)
    if bold:
        text = bold.group(1)
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "",
                                             text).splitlines()]
    lines = [line for line in lines if line and not line.startswith(
        ("Exception encountered", "in user code", "File ", "Arguments "))]
    first = (lines[0] if lines else type(err).__name__)[:200]
    return ValueError(
        f"model must trace to {runtime} ops{_lambda_hint(model)}. Received: "
        f"model {model.name!r}, whose conversion fails with: {first}")


def _lambda_hint(model):
    lambdas = [layer.name for layer in _all_layers(model)
               if isinstance(layer, keras.layers.Lambda)]
    return (f"; its Lambda layers {lambdas} run Python code: write them as "
            "Keras layers of TensorFlow ops" if lambdas else "")


def _tflite(model, spec, opset):
    del spec, opset  # the converter reads the model's own input spec
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with ops.runtime_random(), contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()  # Keras prints its export summary
    except Exception as err:  # the converter's error is pages long
        text = str(err)
        found = re.search(r"'tf\.(\w+)' op is neither a custom op nor a flex op",
                          text)
        if not found:
            raise _failure(model, "TFLite builtins", err) from None
        op = found.group(1)
        scope = re.search(r'"([^"]*/' + op + r')@', text)
        raise ValueError(_refusal(model, "TFLite builtins", op,
                                  scope.group(1) if scope else "")) from None


def _onnx(model, spec, opset):
    try:
        import onnx
        import tf2onnx
    except ImportError:
        raise ValueError(
            "format='onnx' needs tf2onnx and onnx: pip install "
            "'keras_adv[serving]'. Received: format='onnx'") from None
    supported = sorted(tf2onnx.constants.OPSET_TO_IR_VERSION)
    if not 9 <= opset <= supported[-1]:
        raise ValueError(f"opset must be an ONNX opset tf2onnx writes (9 to "
                         f"{supported[-1]}). Received: opset={opset!r}")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # tf2onnx logs every pass at INFO
    try:
        with ops.runtime_random():
            proto, _ = tf2onnx.convert.from_function(
                fn, input_signature=[spec], opset=opset)
    except Exception as err:  # tf2onnx's and the trace's errors are long
        raise _failure(model, "ONNX", err) from None
    finally:
        quiet.setLevel(level)
    for node in proto.graph.node:
        if not onnx.defs.has(node.op_type, node.domain or ""):
            raise ValueError(_refusal(model, "ONNX", node.op_type, node.name))
    return proto.SerializeToString()


def _refusal(model, runtime, op, scope):
    """The one-line error for an op a runtime lacks, naming the layer."""
    names = {layer.name for layer in _all_layers(model)}
    # name scopes may carry a suffix: layer "dense" traces as "dense_1"
    parts = [p if p in names else re.sub(r"_\d+$", "", p)
             for p in scope.split("/")]
    parts = [p for p in parts if p in names]
    layer = parts[-1] if parts else "(unknown layer)"
    return (f"{runtime} cannot hold layer {layer!r}: it uses the TensorFlow "
            f"op {op}, which {runtime} does not have. Received: model "
            f"{model.name!r}; replace the layer or serve a SavedModel")


def _all_layers(model):
    """Every layer of `model`, nested models included (public `.layers`)."""
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def load_served(path, *, trust_model=False):
    """A callable `f(x) -> outputs` that runs an exported model in its own
    runtime: a SavedModel directory with `tf.saved_model.load` (its serving
    signature), a `.tflite` file with LiteRT's interpreter (`ai-edge-litert`,
    else `tf.lite.Interpreter`), an `.onnx` file with ONNX Runtime. Outputs
    are NumPy arrays: one array, or a dict by output name for a model with
    several outputs.

    Any SavedModel with a serving signature loads, not only those of
    `export_model`: `"serve"` (Keras' `model.export`), `"serving_default"`
    (`tf.saved_model.save`), or its single signature; its ops are scanned
    first, as by `keras_adv.models.load_model`. The signature (TFLite, ONNX:
    the graph's input) must take one input.

    `x` is cast to the served input's dtype within its kind: float64 or
    float16 to a float32 input, int64 to an int32 one (values in range).
    Integer images for a floating-point input are refused, not cast: the
    served model does not record its data box, so `uint8` 0..255 pixels
    are scaled by the caller (`x / 255` for a model trained on (0, 1)).
    `x` must have the served input's shape (any batch size).

    This is for checking and timing an export beside Keras; a serving stack
    loads the file with its own runtime.

    Args:
        path: a SavedModel directory, a `.tflite` or an `.onnx` file.
        trust_model: load a SavedModel without the op scan.

    Returns:
        The callable.

    Raises:
        ValueError: at load time, in one line: `path` of another kind, a
            SavedModel refused by the scan, without a serving signature or
            with several and none the default, or a signature of several
            inputs; at a call, `x` of another kind of dtype or shape.

    Example:

    >>> f = load_served(export_model(model, "/tmp/m.tflite"))
    >>> f(np.zeros((3, 4), "float64")).shape
    (3, 2)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError("path must be a SavedModel directory, a .tflite or "
                         f"an .onnx file. Received: path={path!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        return _served_saved_model(path, trust_model)
    if path.endswith(".tflite") and os.path.isfile(path):
        return _served_tflite(path)
    if path.endswith(".onnx") and os.path.isfile(path):
        return _served_onnx(path)
    hint = (" (a .keras file is a Keras model: load it with "
            "keras_adv.models.load_model, or serve it after export_model)"
            if path.endswith(".keras") else "")
    raise ValueError(
        "path must be a SavedModel directory, a .tflite or an .onnx file "
        f"that exists{hint}. Received: path={path!r}")


def _served_saved_model(path, trust_model):
    loaded, function = loading.open_saved_model(path, trust_model=trust_model)
    kwargs = function.structured_input_signature[1]
    if len(kwargs) != 1:
        raise ValueError(
            "the serving signature must take one input. Received: SavedModel "
            f"{path} with inputs {sorted(kwargs)}")
    (name, spec), = kwargs.items()
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None \
        else None

    def run(x, loaded=loaded):  # keeps the variables alive
        x = _as_input(x, spec.dtype.as_numpy_dtype, shape)
        out = function(**{name: tf.constant(x)})
        return _unpack({k: v.numpy() for k, v in _as_dict(out).items()})
    return run


def _served_tflite(path):
    interpreter = _interpreter(path)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    if len(details) != 1:
        raise ValueError("the TFLite model must take one input. Received: "
                         f"{path} with inputs {sorted(details)}")
    (name, detail), = details.items()
    shape = tuple(None if d < 0 else int(d)
                  for d in detail.get("shape_signature", detail["shape"]))
    if shape:
        shape = (None,) + shape[1:]

    def run(x, interpreter=interpreter):  # keeps the interpreter alive
        x = _as_input(x, detail["dtype"], shape)
        return _unpack({k: v.copy() for k, v in runner(**{name: x}).items()})
    return run


_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64",
               "tensor(float16)": "float16", "tensor(int32)": "int32",
               "tensor(int64)": "int64", "tensor(uint8)": "uint8",
               "tensor(int8)": "int8"}


def _served_onnx(path):
    import onnxruntime
    session = onnxruntime.InferenceSession(
        path, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type not in _ONNX_TYPES:
        raise ValueError(
            "the ONNX model must take one numeric tensor. Received: "
            f"{path} with inputs {[(i.name, i.type) for i in inputs]}")
    name, dtype = inputs[0].name, _ONNX_TYPES[inputs[0].type]
    shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
    if shape:
        shape = (None,) + shape[1:]
    names = [o.name.split(":")[0] for o in session.get_outputs()]
    return lambda x: _unpack(dict(zip(names, session.run(
        None, {name: _as_input(x, dtype, shape)}))))


def _as_input(x, dtype, shape):
    """`x` as an array of the served input's dtype, cast within its kind
    (floating or integer), and checked against its shape (free batch)."""
    x = np.asarray(x)
    want = np.dtype(dtype)
    kinds = {"f": "f", "i": "iu", "u": "iu"}
    if x.dtype.kind not in kinds.get(want.kind, want.kind):
        hint = (" (scale integer images into the model's box first, e.g. "
                "x.astype('float32') / 255)" if x.dtype.kind in "iu" else "")
        raise ValueError(
            f"x must hold {'floating-point' if want.kind == 'f' else 'integer'}"
            f" values for the served input of dtype {want.name}{hint}. "
            f"Received: x with dtype {x.dtype.name}")
    if want.kind in "iu" and x.size and (
            x.min() < np.iinfo(want).min or x.max() > np.iinfo(want).max):
        raise ValueError(
            f"x must fit the served input's dtype {want.name}. Received: x "
            f"with values in [{x.min()}, {x.max()}]")
    if shape is not None and not validation.shape_fits(
            shape, x.shape, trailing=False):
        raise ValueError(
            f"x must have the served input's shape {shape} (any batch "
            f"size). Received: x with shape {x.shape}")
    return x.astype(want, copy=False)


def _interpreter(path):
    """LiteRT's interpreter (`ai-edge-litert`, the `serving` extra), or the
    one TensorFlow still ships (deprecated there, so its warning is
    silenced)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)
    return Interpreter(model_path=path)


def _as_dict(outputs):
    return outputs if isinstance(outputs, dict) else {"output_0": outputs}


def _unpack(outputs):
    """One array for one output; a dict of arrays otherwise."""
    outputs = {k: v for k, v in outputs.items()}
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return outputs
