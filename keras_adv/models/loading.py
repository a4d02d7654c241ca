"""Loading a model from elsewhere without running its code.

A saved model is code. `load_model` loads the two formats `keras-adv
evaluate` accepts, and runs nothing from them on the way:

- A `.keras` file loads with `safe_mode=True`, always: Keras refuses the
  Python byte code a `Lambda` layer would carry. There is no switch to turn
  safe mode off.
- A SavedModel directory is scanned before anything from it is loaded or run.
  `saved_model.pb` is parsed with the protocol buffer classes, and every op of
  every meta graph is read: the nodes of the main graph and the nodes of every
  function in its library (signatures, the functions they call, the bodies of
  `If`/`While`, resource initialisers), so a function reached only through an
  attribute is read too. The load is refused on the first op of the list
  below, with a `ValueError` naming the op, the function (or "main graph")
  and the path.

What is refused, and why (`_DENIED_OPS`, `_DENIED_PARTS`, `_DENIED_PREFIXES`):

- The file system: `ReadFile`, `WriteFile`, `MatchingFiles` and anything else
  with `File` in its name (`InitializeTableFromTextFile`, ...); checkpoint I/O
  (`Save*`, `Restore*`, `MergeV2Checkpoints`, `ShardedFilename`,
  `ShardedFilespec`); the TF1 `*Reader*` ops; `LoadAndRemapMatrix`,
  `GenerateVocabRemapping` and `Skipgram` (they read files named by an input
  or attribute); `DecodeProto*`/`EncodeProto*` (their `descriptor_source` may
  name a file); `ImmutableConst` (maps a file into memory).
- Logs and debugging that write to files, sockets or stderr: `Print`,
  `PrintV2`, summary ops and writers (`*Summary*`, `*Writer*`), `Debug*`
  (`DebugIdentityV2` sends tensors to a file or a gRPC address).
- Processes and code the scan cannot read: `PyFunc`, `EagerPyFunc`,
  `PyFuncStateless` (a Python function of the process that loads the model);
  `XlaCallModule` and the XLA host transfers (a compiled module whose body is
  not made of graph ops).
- The network and shared state of other processes: `*Socket*`, `*Rpc*`,
  `RemoteCall`, `Collective*`, `Nccl*`, `_Send`/`_Recv`.
- Input pipelines: every `*Dataset*` and `*Iterator*` op. Many read files
  (`TFRecordDataset`, `TextLineDataset`, `FixedLengthRecordDataset`,
  `SnapshotDataset`, `CacheDataset`, `LoadDataset`, ...) or talk to a service
  (`DataServiceDataset`); none belongs in a classifier's inference graph.

`saved_model_cli scan` (`tensorflow/python/tools/saved_model_cli.py`,
`_OP_DENYLIST = {WriteFile, ReadFile, PrintV2}`) is contained in this list.

The saver exemption: every SavedModel carries one save and one restore function
for its own variables (in TensorFlow 2 exports `__inference__traced_save_*`
with `SaveV2`, `MergeV2Checkpoints`, `ShardedFilename`, and
`__inference__traced_restore_*` with `RestoreV2`). They are found from
`meta_graphs[].saver_def`, not from their names: `save_tensor_name` and
`restore_op_name` name two nodes of the main graph, each a
`(Stateful)PartitionedCall` whose first input is the `filename_tensor_name`
placeholder. The two functions they call, and only those, may hold the four
checkpoint ops `SaveV2`, `RestoreV2`, `MergeV2Checkpoints` and
`ShardedFilename` (any other refused op in them is still refused). The same ops
in any other function, even one named like `__inference__traced_save_*`, are
refused, and so is any other use of the two functions: a call from another
function or node, a signature or a node that reads the saver nodes, an object
of the object graph that exposes them. A TF1 SavedModel whose saver ops sit in
the main graph is refused; load it with `trust_model=True` if you trust it.

`trust_model=True` skips the scan (and says so with a `UserWarning`).
"""

import os
import re
import warnings
import zipfile

import keras

from keras_adv import validation

_DENIED_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "MergeV2Checkpoints",
    "ShardedFilename", "ShardedFilespec", "ImmutableConst",
    "LoadAndRemapMatrix", "GenerateVocabRemapping", "Skipgram", "RemoteCall",
    "_Send", "_Recv", "_HostSend", "_HostRecv", "XlaCallModule",
})
_DENIED_PARTS = (
    "File", "Socket", "Reader", "Writer", "Summary", "Print", "Debug",
    "PyFunc", "Dataset", "Iterator", "Rpc", "Collective", "Nccl",
    "DecodeProto", "EncodeProto", "XlaHost", "XlaSend", "XlaRecv",
)
_DENIED_PREFIXES = ("Save", "Restore")
# What the save and restore functions of saver_def may hold.
_CHECKPOINT_OPS = frozenset({
    "SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename"})
_CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
_OVERRIDE = ("if you trust this model, pass trust_model=True (keras-adv "
             "evaluate --trust-model)")


def load_model(path, *, trust_model=False):
    """Loads a `.keras` file or a SavedModel directory without running its code.

    A `.keras` file loads with `safe_mode=True` (no Python code from the
    file), with every `keras_adv` class registered. A SavedModel directory is
    scanned op by op before anything from it is loaded (see the module
    docstring for the refused ops and the saver exemption); it is returned as
    a `SavedModelFunction`, a callable over its serving signature.

    Args:
        path: a `.keras` file or a SavedModel directory (with
            `saved_model.pb`), as a string or `os.PathLike`.
        trust_model: skip the scan of a SavedModel (a `UserWarning` says so).
            Only for a model whose source you trust: its ops then run as
            written. `.keras` files load in safe mode either way.

    Returns:
        A `keras.Model` for a `.keras` file, a `SavedModelFunction` for a
        SavedModel directory.

    Raises:
        ValueError: if the path is missing or of another format, the file is
            corrupt, safe mode refuses the `.keras` file, or the scan finds a
            refused op.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> net.export(folder + "/exported", verbose=False)
    >>> served = keras_adv.models.load_model(folder + "/exported")
    >>> tuple(served(np.ones((2, 4), "float32")).shape), served.input_shape
    ((2, 3), (4,))
    """
    path = validation.check_path(path)
    if not isinstance(trust_model, bool):
        raise ValueError(
            "trust_model must be True or False. Received: "
            f"trust_model={trust_model!r}")
    if not os.path.exists(path):
        raise ValueError(f"model not found: {path}")
    if os.path.isdir(path):
        if not trust_model:
            scan_saved_model(path)
        else:
            warnings.warn(
                f"trust_model=True: {path} is loaded without the op scan; "
                "its ops run as written", UserWarning, stacklevel=2)
        return _load_saved_model(path)
    return _load_keras_file(path)


def scan_saved_model(path):
    """Refuses a SavedModel whose graph touches files, network or processes.

    Reads `saved_model.pb` (nothing is loaded or run) and checks every op of
    the main graph and of every library function of every meta graph, as
    described in the module docstring.

    Args:
        path: a SavedModel directory.

    Returns:
        None when the scan passes.

    Raises:
        ValueError: on the first refused op (naming it, the function or "main
            graph" it is in, and the path), or when `saved_model.pb` is
            missing or corrupt.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> net.export(folder + "/exported", verbose=False)
    >>> keras_adv.models.loading.scan_saved_model(folder + "/exported")
    """
    proto = _read_saved_model_proto(path)
    if not proto.meta_graphs:
        raise ValueError(f"cannot load SavedModel {path}: it holds no graph")
    for meta_graph in proto.meta_graphs:
        _scan_meta_graph(meta_graph, path)


def _read_saved_model_proto(path):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(pb):
        raise ValueError(f"{path} is a directory but not a SavedModel "
                         "(no saved_model.pb)")
    proto = saved_model_pb2.SavedModel()
    try:
        with open(pb, "rb") as f:
            proto.ParseFromString(f.read())
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ValueError(
            f"cannot load SavedModel {path}: saved_model.pb is corrupt "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    return proto


def _scan_meta_graph(meta_graph, path):
    graph = meta_graph.graph_def
    library = {f.signature.name: f for f in graph.library.function}
    saver_nodes = _saver_nodes(meta_graph, library)
    exempt = set(saver_nodes.values())
    for node in graph.node:
        _check_node(node, "main graph", path, library, exempt,
                    allowed_calls={saver_nodes.get(node.name)}, allowed_ops=())
        for name in node.input:
            if _node_name(name) in saver_nodes:
                _refuse(node.op, "main graph", path,
                        f"reads the saver node {_node_name(name)}")
    for name, function in library.items():
        allowed_ops = _CHECKPOINT_OPS if name in exempt else ()
        for node in function.node_def:
            _check_node(node, f"function {name}", path, library, exempt,
                        allowed_calls=(), allowed_ops=allowed_ops)
    _check_exposure(meta_graph, saver_nodes, exempt, path)


def _saver_nodes(meta_graph, library):
    """Maps the save and restore nodes of saver_def to the functions they call.

    A node qualifies only if it is a `(Stateful)PartitionedCall` of a library
    function whose first input is saver_def's filename placeholder.
    """
    saver = meta_graph.saver_def
    nodes = {n.name: n for n in meta_graph.graph_def.node}
    filename = _node_name(saver.filename_tensor_name)
    if not filename or nodes.get(filename) is None or \
            nodes[filename].op != "Placeholder":
        return {}
    found = {}
    for ref in (saver.save_tensor_name, saver.restore_op_name):
        node = nodes.get(_node_name(ref))
        if node is None or node.op not in _CALL_OPS or not node.input:
            continue
        function = node.attr["f"].func.name
        if function in library and _node_name(node.input[0]) == filename:
            found[node.name] = function
    return found


def _check_node(node, where, path, library, exempt, allowed_calls,
                allowed_ops):
    for called in _called_functions(node, library):
        if called in exempt and called not in allowed_calls:
            _refuse(node.op, where, path,
                    f"calls {called}, the saver function of saver_def, which "
                    "only saver_def may use")
    if node.op not in library and node.op not in allowed_ops and \
            _denied(node.op):
        _refuse(node.op, where, path, "touches files, the network, "
                "processes or global state")


def _check_exposure(meta_graph, saver_nodes, exempt, path):
    """Refuses signatures and objects that reach the saver functions."""
    for key, signature in meta_graph.signature_def.items():
        tensors = [*signature.inputs.values(), *signature.outputs.values()]
        for tensor in tensors:
            if _node_name(tensor.name) in saver_nodes:
                _refuse("signature", f"signature {key}", path,
                        f"exposes the saver node {_node_name(tensor.name)}")
    objects = meta_graph.object_graph_def
    names = set(objects.concrete_functions)
    for node in objects.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    for name in sorted(names & exempt):
        _refuse("object", "object graph", path,
                f"exposes {name}, the saver function of saver_def")


def _called_functions(node, library):
    """Names of the library functions a node calls, by op or by attribute."""
    called = [node.op] if node.op in library else []
    stack = list(node.attr.values())
    while stack:
        value = stack.pop()
        kind = value.WhichOneof("value")
        if kind == "func":
            called.append(value.func.name)
            stack.extend(value.func.attr.values())
        elif kind == "list":
            for func in value.list.func:
                called.append(func.name)
                stack.extend(func.attr.values())
    return called


def _denied(op):
    return (op in _DENIED_OPS or op.startswith(_DENIED_PREFIXES)
            or any(part in op for part in _DENIED_PARTS))


def _refuse(op, where, path, reason):
    raise ValueError(
        f"refusing to load SavedModel {path}: op {op} in {where} {reason}; "
        f"{_OVERRIDE}")


def _node_name(tensor_name):
    return re.sub(r":\d+$", "", tensor_name.lstrip("^"))


def _load_keras_file(path):
    import keras

    import keras_adv

    if not path.endswith(".keras"):
        raise ValueError(
            "model must be a .keras file or a SavedModel directory. "
            f"Received: path={path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"cannot load model {path}: not a .keras archive (a zip file); it "
            "is corrupt or of another format")
    keras_adv._load_all()  # registers every keras_adv class for safe mode
    if _unsafe_deserialization_enabled():
        raise ValueError(
            f"cannot load model {path} in Keras safe mode: this process called "
            "keras.config.enable_unsafe_deserialization(), which overrides "
            "safe_mode=True; keras_adv loads .keras files in safe mode only")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for bad files
        text = " ".join(str(e).split()) or type(e).__name__
        if "safe_mode" in text or "unsafe" in text.lower():
            raise ValueError(
                f"cannot load model {path}: Keras safe mode refuses it (it "
                f"holds Python code, e.g. a Lambda layer): "
                f"{text.split('. ')[0]}") from None
        raise ValueError(f"cannot load model {path}: {text}") from None


def _unsafe_deserialization_enabled():
    """Whether `keras.config.enable_unsafe_deserialization()` was called.

    Keras lets that global switch override `safe_mode=True` (Keras 3.15
    `serialization_lib.deserialize_keras_object`) and has no public getter
    for it, so a harmless lambda of this module is deserialized in safe mode,
    which refuses it unless the switch is on.
    """
    import keras

    with warnings.catch_warnings():  # Keras warns about lambdas
        warnings.simplefilter("ignore")
        config = keras.saving.serialize_keras_object(lambda t: t)
    try:
        keras.saving.deserialize_keras_object(config, safe_mode=True)
    except ValueError:
        return False
    return True


def _load_saved_model(path):
    return SavedModelFunction(*_open(path), path=path)


def open_saved_model(path, *, trust_model=False):
    """A SavedModel directory loaded (after the op scan, unless
    `trust_model`), with its serving signature: `"serve"` (Keras'
    `model.export`), `"serving_default"` (`tf.saved_model.save`), or its
    single signature.

    Returns:
        `(loaded, signature)`: the object of `tf.saved_model.load` (keep it
        alive while calling) and the signature's concrete function.

    Raises:
        ValueError: one line: not a SavedModel, refused by the scan, or no
            serving signature (none, or several and none of those names).

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> net.export(folder + "/exported", verbose=False)
    >>> loaded, signature = open_saved_model(folder + "/exported")
    >>> [spec.shape for spec in signature.structured_input_signature[1].values()]
    [TensorShape([None, 4])]
    """
    if not trust_model:
        scan_saved_model(path)
    else:
        warnings.warn(f"trust_model=True: {path} is loaded without the op "
                      "scan; its ops run as written", UserWarning,
                      stacklevel=2)
    return _open(path)


def _open(path):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - any load failure is bad input
        first = str(e).strip().splitlines()[0] if str(e).strip() else \
            type(e).__name__
        raise ValueError(f"cannot load SavedModel {path}: {first}") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    key = next((k for k in ("serve", "serving_default") if k in signatures),
               None)
    if key is None and len(signatures) == 1:
        key = next(iter(signatures))
    if key is None:
        raise ValueError(
            "the SavedModel must have a serving signature: 'serve', "
            "'serving_default' or a single one (write it with model.export("
            "path) or tf.saved_model.save(obj, path, signatures=...)). "
            f"Received: {path} with signatures {sorted(signatures)}")
    return loaded, signatures[key]


class SavedModelFunction:
    """A loaded SavedModel's serving signature as a one-input callable.

    Calls the signature with `x` cast to its input dtype and returns its one
    output tensor.

    Args:
        loaded: the object returned by `tf.saved_model.load`.
        function: its serving signature (or `serve` function).
        path: the directory it was loaded from (shown by `repr`).

    Attributes:
        input_shape: the input shape without the batch axis, or None when the
            signature does not say.

    Raises:
        ValueError: when called, if the signature has several outputs.

    Example: `served = keras_adv.models.load_model("exported/")`, then
    `served(x)` and `served.input_shape` (run in `load_model`'s example).
    """

    def __init__(self, loaded, function, path=None):
        self._loaded = loaded  # keeps the variables alive
        self._function = function
        self.path = path
        spec = getattr(function, "structured_input_signature", None)
        spec = spec[1] if spec else {}
        self._names = list(spec) if isinstance(spec, dict) else []
        self.input_shape = None
        self._dtype = "float32"
        if len(self._names) == 1:
            shape = spec[self._names[0]].shape
            self._dtype = spec[self._names[0]].dtype
            if shape.rank is not None:
                self.input_shape = tuple(shape.as_list()[1:])

    def __repr__(self):
        return f"SavedModelFunction({self.path!r})"

    def __call__(self, x):
        import tensorflow as tf

        x = tf.cast(x, self._dtype)  # the signature's dtype (float32 mostly)
        if len(self._names) == 1:
            out = self._function(**{self._names[0]: x})
        else:
            out = self._function(x)
        if isinstance(out, dict):
            if len(out) != 1:
                raise ValueError(
                    "the SavedModel must have a single output. Received: "
                    f"outputs {sorted(out)}")
            out = next(iter(out.values()))
        return out


def keras_view(served):
    """A loaded SavedModel as a `keras.Model`, for functions that need one
    (the poisoning detectors): its input, a layer calling the serving
    signature, and an identity layer named `"scores"`. The served graph's
    own layers are not reachable through a signature, so the penultimate
    representation of such a model is its output scores (the detectors'
    `layer=None` reads them).

    Args:
        served: a `SavedModelFunction` from `load_model` (a `keras.Model` is
            returned as it is).

    Returns:
        A `keras.Model` (not meant to be saved: it holds the loaded graph).

    Raises:
        ValueError: the signature's input shape is unknown.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> net.export(folder + "/exported", verbose=False)
    >>> view = keras_view(keras_adv.models.load_model(folder + "/exported"))
    >>> view.output_shape
    (None, 3)
    """
    import numpy as np

    if isinstance(served, keras.Model):
        return served
    if not isinstance(served, SavedModelFunction) or (
            served.input_shape is None or None in served.input_shape):
        raise ValueError(
            "served must be a SavedModel from load_model with a known input "
            f"shape. Received: served={served!r}")
    classes = int(served(np.zeros((1,) + served.input_shape,
                                  "float32")).shape[-1])
    inputs = keras.Input(served.input_shape)
    scores = _ServedCall(served, classes, name="served")(inputs)
    return keras.Model(inputs, keras.layers.Identity(name="scores")(scores),
                       name="saved_model")


class _ServedCall(keras.layers.Layer):
    """Calls a SavedModel's serving signature (no weights of its own)."""

    def __init__(self, served, classes, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self._served, self._classes = served, classes

    def call(self, x):
        return self._served(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._classes)


def probe_outputs(model, x):
    """Runs a loaded model on a few rows of `x` and reads its outputs.

    Checks that `x` fits the model input and that the model returns one
    `(batch, classes)` tensor, then tells whether the outputs are logits.

    Args:
        model: a model returned by `load_model`.
        x: a NumPy array of inputs (only the first 8 rows are used).

    Returns:
        `from_logits` for `evaluate_robustness`: `False` for a SavedModel whose
        outputs are rows of probabilities (or, with one output unit, values
        in [0, 1]: a sigmoid), `None` otherwise (Keras models: a final
        softmax or sigmoid is detected from the graph; SavedModels: logits).

    Raises:
        ValueError: if the shapes do not fit or the model cannot run on `x`.

    Example:

    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> print(keras_adv.models.loading.probe_outputs(
    ...     net, np.ones((2, 4), "float32")))
    None
    """
    import numpy as np
    import tensorflow as tf

    from keras_adv import validation

    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and not isinstance(model,
                                                      SavedModelFunction):
        expected = tuple(expected[1:])
    elif not isinstance(model, SavedModelFunction):
        expected = None
    if expected is not None and not validation.shape_fits(
            expected, tuple(x.shape[1:]), trailing=False):
        raise ValueError(
            f"data shape {tuple(x.shape[1:])} does not match the model input "
            f"{expected}")
    try:
        out = model(tf.constant(x[:8]))
    except Exception as e:  # shape or dtype errors from any model type
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"model cannot run on data of shape {tuple(x.shape[1:])}: {first}"
        ) from None
    if isinstance(out, (list, tuple)) or getattr(out, "shape", None) is None \
            or len(out.shape) != 2:
        raise ValueError(
            "the model must return one tensor of shape (batch, classes)")
    if not isinstance(model, SavedModelFunction):
        return None
    p = np.asarray(out)
    if p.shape[1] == 1:  # a binary classifier: a sigmoid output or a logit
        return False if bool(p.min() >= 0 and p.max() <= 1) else None
    probs = bool(p.min() >= 0 and np.allclose(p.sum(-1), 1.0, atol=1e-3))
    return False if probs else None

