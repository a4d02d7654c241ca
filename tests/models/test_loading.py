"""keras_adv.models.load_model: .keras in safe mode, SavedModels scanned op by
op before anything from them runs, the saver_def exemption and nothing more."""

import doctest
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import keras_adv
from keras_adv import defenses
from keras_adv.models import AdversarialModel, load_model, loading

ROOT = Path(__file__).resolve().parents[2]
W = np.arange(12, dtype="float32").reshape(4, 3) / 10.0
X = np.linspace(0.0, 1.0, 8, dtype="float32").reshape(2, 4)


class _Linear(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(W)


def save_writer(folder, target):
    """A SavedModel whose signature also writes `target` when called."""
    net = _Linear()

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def serve(x):
        tf.io.write_file(target, "written by the model")
        return tf.matmul(x, net.w)

    net.serve = serve
    tf.saved_model.save(net, str(folder), signatures={"serving_default": serve})
    return folder


def save_reader(folder, source):
    """A SavedModel whose signature calls a function that reads `source`."""
    net = _Linear()

    @tf.function
    def peek():
        return tf.cast(tf.strings.length(tf.io.read_file(source)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def serve(x):
        return tf.matmul(x, net.w) + 0.0 * peek()

    net.serve = serve
    tf.saved_model.save(net, str(folder), signatures={"serving_default": serve})
    return folder


def save_forged_saver(folder, prefix):
    """A signature calling a checkpoint writer named like the real saver."""
    net = _Linear()

    @tf.function
    def _traced_save_forged():
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["w"],
                          shape_and_slices=[""], tensors=[net.w])
        return tf.constant(0.0)

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def serve(x):
        return tf.matmul(x, net.w) + _traced_save_forged()

    net.serve = serve
    tf.saved_model.save(net, str(folder), signatures={"serving_default": serve})
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A plain keras.Model.export of a 4 -> 3 dense model (weights W)."""
    root = tmp_path_factory.mktemp("loading")
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    net.set_weights([W, np.zeros(3, "float32")])
    net.export(str(root / "plain"), verbose=False)
    return root / "plain"


def test_writer_is_refused_before_it_runs(tmp_path):
    target = tmp_path / "written.txt"
    folder = save_writer(tmp_path / "writer", str(target))
    with pytest.raises(ValueError) as info:
        load_model(folder)
    message = str(info.value)
    assert "op WriteFile in function __inference_serve_" in message
    assert str(folder) in message and "trust_model=True" in message
    assert "\n" not in message
    assert not target.exists()


def test_trust_model_loads_and_runs_the_writer(tmp_path):
    target = tmp_path / "written.txt"
    folder = save_writer(tmp_path / "writer", str(target))
    with pytest.warns(UserWarning, match="trust_model=True: .* without the "
                      "op scan"):
        served = load_model(folder, trust_model=True)
    assert not target.exists()  # loading alone runs nothing
    np.testing.assert_allclose(served(X), X @ W, rtol=1e-6)
    assert target.read_text() == "written by the model"


def test_reader_in_a_called_function_is_refused(tmp_path):
    source = tmp_path / "secret.txt"
    source.write_text("secret")
    folder = save_reader(tmp_path / "reader", str(source))
    with pytest.raises(ValueError, match=r"op ReadFile in function "
                       r"__inference_peek_\d+ touches files"):
        load_model(folder)


def test_forged_saver_name_is_not_exempt(tmp_path):
    prefix = tmp_path / "stolen"
    folder = save_forged_saver(tmp_path / "forged", str(prefix))
    with pytest.raises(ValueError, match=r"op SaveV2 in function "
                       r"__inference__traced_save_forged_\d+ "):
        load_model(folder)
    assert list(tmp_path.glob("stolen*")) == []


def test_keras_export_passes_and_matches_the_model(exported):
    loading.scan_saved_model(exported)
    served = load_model(exported)
    assert isinstance(served, loading.SavedModelFunction)
    assert served.input_shape == (4,)
    np.testing.assert_allclose(served(X), X @ W, rtol=1e-6)
    assert loading.probe_outputs(served, X) is None  # logits


def test_adversarial_model_export_passes(tmp_path):
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    base.set_weights([W, np.zeros(3, "float32")])
    model = AdversarialModel(base, defense=defenses.PGDTraining(
        eps=0.1, steps=2))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(np.tile(X, (4, 1)), np.arange(8) % 3, epochs=1, batch_size=4,
              verbose=0)
    model.export(str(tmp_path / "adv"), verbose=False)
    served = load_model(tmp_path / "adv")
    np.testing.assert_allclose(served(X), base(X), rtol=1e-5, atol=1e-6)


def _edited_copy(exported, tmp_path, edit):
    folder = tmp_path / "edited"
    shutil.copytree(exported, folder)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    edit(proto.meta_graphs[0])
    (folder / "saved_model.pb").write_bytes(proto.SerializeToString())
    return folder


def _saver_node(meta_graph, which):
    name = (meta_graph.saver_def.save_tensor_name if which == "save"
            else meta_graph.saver_def.restore_op_name).split(":")[0]
    return next(n for n in meta_graph.graph_def.node if n.name == name)


def test_real_saver_called_from_a_signature_is_refused(exported, tmp_path):
    def edit(meta_graph):
        save_fn = _saver_node(meta_graph, "save").attr["f"].func.name
        wrapper = next(f for f in meta_graph.graph_def.library.function
                       if f.signature.name.startswith(
                           "__inference_signature_wrapper"))
        call = wrapper.node_def.add(name="sneaky", op="PartitionedCall")
        call.attr["f"].func.name = save_fn

    folder = _edited_copy(exported, tmp_path, edit)
    with pytest.raises(ValueError, match=r"op PartitionedCall in function "
                       r"__inference_signature_wrapper\S+ calls "
                       r"__inference__traced_save_\d+, the saver function"):
        loading.scan_saved_model(folder)


def test_init_op_reading_the_saver_node_is_refused(exported, tmp_path):
    def edit(meta_graph):
        save = _saver_node(meta_graph, "save")
        init = next(n for n in meta_graph.graph_def.node if n.op == "NoOp")
        init.input.append("^" + save.name)

    folder = _edited_copy(exported, tmp_path, edit)
    with pytest.raises(ValueError, match=r"op NoOp in main graph reads the "
                       r"saver node StatefulPartitionedCall_\d"):
        loading.scan_saved_model(folder)


def test_saver_without_its_filename_placeholder_is_not_exempt(exported,
                                                                tmp_path):
    def edit(meta_graph):
        meta_graph.saver_def.filename_tensor_name = "Const:0"

    folder = _edited_copy(exported, tmp_path, edit)
    with pytest.raises(ValueError, match=r"op (SaveV2|MergeV2Checkpoints|"
                       r"ShardedFilename|RestoreV2) in function "
                       r"__inference__traced_(save|restore)_\d+"):
        loading.scan_saved_model(folder)


def test_refused_op_inside_the_real_saver_is_still_refused(exported,
                                                           tmp_path):
    def edit(meta_graph):
        save_fn = _saver_node(meta_graph, "save").attr["f"].func.name
        body = next(f for f in meta_graph.graph_def.library.function
                    if f.signature.name == save_fn)
        body.node_def.add(name="leak", op="WriteFile")

    folder = _edited_copy(exported, tmp_path, edit)
    with pytest.raises(ValueError, match=r"op WriteFile in function "
                       r"__inference__traced_save_\d+"):
        loading.scan_saved_model(folder)


@pytest.mark.parametrize("op,refused", [
    ("ReadFile", True), ("WriteFile", True), ("MatchingFiles", True),
    ("MergeV2Checkpoints", True), ("Save", True), ("SaveV2", True),
    ("SaveSlices", True), ("RestoreV2", True), ("PrintV2", True),
    ("Print", True), ("PyFunc", True), ("EagerPyFunc", True),
    ("PyFuncStateless", True), ("ImmutableConst", True),
    ("DebugIdentityV2", True), ("DebugIdentityV3", True),
    ("WriteScalarSummary", True), ("CreateSummaryFileWriter", True),
    ("InitializeTableFromTextFileV2", True), ("TFRecordDatasetV2", True),
    ("FixedLengthRecordDatasetV2", True), ("TextLineDataset", True),
    ("ExperimentalSqlDataset", True), ("DecodeProtoV2", True),
    ("LoadAndRemapMatrix", True), ("XlaCallModule", True),
    ("CollectiveReduceV2", True), ("WholeFileReaderV2", True),
    ("MatMul", False), ("Conv2D", False), ("StatefulPartitionedCall", False),
    ("ReadVariableOp", False), ("StringJoin", False), ("Softmax", False),
    ("StatelessRandomUniformV2", False), ("FusedBatchNormV3", False),
])
def test_denylist(op, refused):
    assert loading._denied(op) is refused


def test_denylist_contains_tensorflow_scan_defaults():
    from tensorflow.python.tools import saved_model_cli

    assert all(loading._denied(op) for op in saved_model_cli._OP_DENYLIST)


def test_lambda_keras_file_is_refused_by_safe_mode(tmp_path):
    net = keras.Sequential([keras.Input((4,)),
                            keras.layers.Lambda(lambda t: t * 2.0)])
    net.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match=r"cannot load model .*lambda\.keras: "
                       r"Keras safe mode refuses it"):
        load_model(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe mode"):  # trust is no switch
        load_model(tmp_path / "lambda.keras", trust_model=True)


def test_keras_file_loads_registered_classes(tmp_path):
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    base.set_weights([W, np.zeros(3, "float32")])
    model = AdversarialModel(base, defense=defenses.PGDTraining(eps=0.1))
    model(X)
    model.save(tmp_path / "adv.keras")
    loaded = load_model(tmp_path / "adv.keras")
    assert type(loaded) is AdversarialModel
    assert loaded.defense == defenses.PGDTraining(eps=0.1)
    np.testing.assert_allclose(loaded(X), X @ W, rtol=1e-6)
    assert loading.probe_outputs(loaded, X) is None


@pytest.mark.parametrize("make,needle", [
    (lambda root: root / "missing", "model not found: {root}/missing"),
    (lambda root: root, "{root} is a directory but not a SavedModel"),
    (lambda root: root / "m.h5", "model must be a .keras file or a "
     "SavedModel directory. Received: path='{root}/m.h5'"),
    (lambda root: 3, "path must be a file or directory path. Received: "
     "path=3"),
])
def test_bad_paths(tmp_path, make, needle):
    (tmp_path / "m.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ValueError) as info:
        load_model(make(tmp_path))
    assert needle.format(root=tmp_path) in str(info.value)


def test_corrupt_saved_model_and_bad_trust(tmp_path, exported):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\xff\xff\xff not a proto")
    with pytest.raises(ValueError, match="saved_model.pb is corrupt"):
        load_model(folder)
    with pytest.raises(ValueError, match="Received: trust_model='yes'"):
        load_model(exported, trust_model="yes")


def test_probe_outputs_detects_probabilities_and_bad_shapes(tmp_path):
    net = keras.Sequential([keras.Input((4,)),
                            keras.layers.Dense(3, activation="softmax")])
    net.export(str(tmp_path / "probs"), verbose=False)
    served = load_model(tmp_path / "probs")
    assert loading.probe_outputs(served, X) is False
    with pytest.raises(ValueError, match=r"data shape \(5,\) does not match "
                       r"the model input \(4,\)"):
        loading.probe_outputs(served, np.zeros((2, 5), "float32"))
    # A binary sigmoid head served as a SavedModel: its values are
    # probabilities; a one-unit logit head is left as logits.
    for activation, expected in (("sigmoid", False), (None, None)):
        net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            1, activation=activation, kernel_initializer="ones")])
        net.export(str(tmp_path / f"bin{activation}"), verbose=False)
        served = load_model(tmp_path / f"bin{activation}")
        assert loading.probe_outputs(served, X + 1.0) is expected


def test_docstring_examples_run():
    globs = {"keras": keras, "keras_adv": keras_adv, "np": np, "tf": tf}
    result = doctest.testmod(loading, extraglobs=globs, verbose=False,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_global_unsafe_switch_does_not_turn_safe_mode_off(tmp_path):
    # Keras lets keras.config.enable_unsafe_deserialization() override
    # safe_mode=True; load_model refuses instead. In a child process, since
    # the switch is global.
    script = textwrap.dedent(f"""
        import keras
        import keras_adv
        net = keras.Sequential([keras.Input((4,)),
                                keras.layers.Lambda(lambda t: t * 2.0)])
        net.save({str(tmp_path / "lambda.keras")!r})
        keras.config.enable_unsafe_deserialization()
        try:
            keras_adv.models.load_model({str(tmp_path / "lambda.keras")!r})
        except ValueError as e:
            print("refused:", e)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: cannot load model" in done.stdout
    assert "enable_unsafe_deserialization(), which overrides" in done.stdout
