"""Serving a model anywhere: `export_model` writes a SavedModel, a TFLite
flatbuffer with builtin ops only, or an ONNX file (`docs/serving.md`)."""

import logging
import os
import re
import warnings

import tensorflow as tf

from keras_adv import ops

FORMATS = ("saved_model", "tflite", "onnx")


def export_model(model, path, *, format="saved_model", input_signature=None,
                 opset=17):
    """Writes `model` for serving in one of three formats.

    - `"saved_model"`: `model.export(path)`, a SavedModel directory with a
      `serve` signature (TF Serving, `tf.saved_model.load`). Seeded random
      layers keep their Keras generator state.
    - `"tflite"`: a `.tflite` file converted with `TFLITE_BUILTINS` only,
      so the stock interpreter runs it (no Flex delegate).
    - `"onnx"`: an `.onnx` file converted by `tf2onnx` (the `serving` extra:
      `pip install keras_adv[serving]`) at `opset`, for ONNX Runtime.

    For TFLite and ONNX the model is traced inside `ops.runtime_random()`:
    Stochastic Activation Pruning, `RandomizedMixture` and
    `SmoothedClassifier` draw with the runtime's own random ops, seeded or
    not (a runtime has no seeded state that lasts across calls).

    Args:
        model: a built Keras model (Sequential, functional or subclassed).
        path: the file (TFLite, ONNX) or directory (SavedModel) to write.
        format: `"saved_model"`, `"tflite"` or `"onnx"`.
        input_signature: a `tf.TensorSpec` of the input for SavedModel and
            ONNX; `None` takes it from `model.inputs` (or those of the
            model's `base` or first member), with a free batch size. TFLite
            reads the model's own input spec.
        opset: the ONNX opset.

    Returns:
        `path`.

    Raises:
        ValueError: unknown `format`; no input signature can be found; or
            the runtime cannot hold an op of the model: one line naming the
            layer and the op.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> export_model(model, "/tmp/model.tflite", format="tflite")
    '/tmp/model.tflite'
    """
    if format not in FORMATS:
        raise ValueError(
            f"format must be one of {FORMATS}. Received: format={format!r}")
    spec = input_signature or default_signature(model)
    path = os.fspath(path)
    if not model.built:  # a subclassed model builds on its first call
        model(tf.zeros([1] + list(spec.shape[1:]), spec.dtype), training=False)
    if format == "saved_model":
        model.export(path, format="tf_saved_model", input_signature=[spec],
                     verbose=False)
        return path
    writer = _tflite if format == "tflite" else _onnx
    content = writer(model, spec, opset)
    with open(path, "wb") as f:
        f.write(content)
    return path


def default_signature(model):
    """A `tf.TensorSpec` (free batch size) of the model's one input, from
    `model.inputs`, or those of its `base` or first of its `members`.

    Example: `default_signature(model)`.
    """
    for candidate in (model, getattr(model, "base", None),
                      (getattr(model, "members", None) or [None])[0]):
        inputs = getattr(candidate, "inputs", None)
        if inputs:
            if len(inputs) != 1:
                break
            shape = [None] + list(inputs[0].shape[1:])
            return tf.TensorSpec(shape, inputs[0].dtype, name="x")
    raise ValueError(
        "input_signature is needed: the model does not declare one input. "
        f"Received: model {getattr(model, 'name', model)!r}; pass "
        "input_signature=tf.TensorSpec((None, ...), tf.float32)")


def _tflite(model, spec, opset):
    del spec, opset  # the converter reads the model's own input spec
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with ops.runtime_random():
            return converter.convert()
    except Exception as err:  # the converter's error is pages long
        text = str(err)
        found = re.search(r"'tf\.(\w+)' op is neither a custom op nor a flex op",
                          text)
        if not found:
            raise
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
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # tf2onnx logs every pass at INFO
    try:
        with ops.runtime_random():
            proto, _ = tf2onnx.convert.from_function(
                fn, input_signature=[spec], opset=opset)
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


def load_served(path):
    """A callable `f(x) -> outputs` that runs an exported model in its own
    runtime: a SavedModel directory with `tf.saved_model.load` (its `serve`
    signature), a `.tflite` file with LiteRT's interpreter (`ai-edge-litert`, else
    `tf.lite.Interpreter`), an `.onnx`
    file with ONNX Runtime. Outputs are NumPy arrays: one array, or a dict
    by output name for a model with several outputs.

    This is for checking and timing an export beside Keras; a serving stack
    loads the file with its own runtime.

    Example:

    >>> f = load_served(export_model(model, "/tmp/m.tflite", format="tflite"))
    >>> f(np.zeros((3, 4), "float32")).shape
    (3, 2)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        loaded = tf.saved_model.load(path)  # kept alive by the closure
        return lambda x: _unpack({k: v.numpy() for k, v in _as_dict(
            loaded.serve(tf.constant(x))).items()})
    if path.endswith(".tflite"):
        interpreter = _interpreter(path)
        runner = interpreter.get_signature_runner()
        name = next(iter(runner.get_input_details()))

        def run(x, interpreter=interpreter):  # keeps the interpreter alive
            return _unpack({k: v.copy() for k, v in runner(**{name: x}).items()})
        return run
    if path.endswith(".onnx"):
        import onnxruntime
        session = onnxruntime.InferenceSession(
            path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        names = [o.name.split(":")[0] for o in session.get_outputs()]
        return lambda x: _unpack(dict(zip(names, session.run(None, {name: x}))))
    raise ValueError(
        "path must be a SavedModel directory, a .tflite or an .onnx file. "
        f"Received: path={path!r}")


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
