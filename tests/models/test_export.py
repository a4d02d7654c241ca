"""Serving matrix: five defended models x SavedModel, TFLite (builtin ops
only) and ONNX Runtime, each compared with Keras.

Deterministic models agree within 1e-5. Stochastic ones (SAP, the
mixture, the smoothed classifier) agree in distribution: over 200 draws per
example, the runtime's mean output is within five standard errors of the
difference of Keras' mean (each entry), and the draws vary.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.certification import SmoothedClassifier, predict
from keras_adv.defenses import insert_sap
from keras_adv.layers import Temperature
from keras_adv.models import RandomizedMixture, export_model, load_served
from tests.models import serving_cases as cases

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

DRAWS = 200
FORMATS = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
STOCHASTIC = {"sap", "mixture", "smoothed"}


def _cnn(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3),
    ])


def _models():
    base = _cnn(0)
    distilled = keras.Sequential(
        [keras.Input((8, 8, 1)), *base.layers, Temperature(10.0),
         keras.layers.Softmax()])
    return {
        "plain": base,
        "sap": insert_sap(base),
        "mixture": RandomizedMixture([base, _cnn(1)], probabilities=[0.3, 0.7]),
        "distilled": distilled,
        "smoothed": SmoothedClassifier(base, sigma=0.25, n=20),
    }


X = np.random.RandomState(0).rand(4, 8, 8, 1).astype("float32")
TILED = np.repeat(X, DRAWS, axis=0)

_RELOAD = """
import json, sys, numpy as np
from keras_adv.models import load_served
x = np.load(sys.argv[2])
out = {}
for i, name in enumerate(json.loads(sys.argv[1])):
    f = load_served(name)
    for call in range(2):
        y = f(x)
        out[f"{i}_{call}"] = y["counts"] if isinstance(y, dict) else y
np.savez(sys.argv[3], **out)
"""


def _main_output(y):
    y = y if not isinstance(y, dict) else y["counts"]
    return np.asarray(y, np.float64)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every model exported in every format, and its outputs on TILED:
    SavedModels are reloaded and run in a fresh process."""
    root = tmp_path_factory.mktemp("served")
    keras_out, out, saved = {}, {}, []
    for name, model in _models().items():
        keras_out[name] = _main_output(model(TILED))
        for fmt, suffix in FORMATS.items():
            path = export_model(model, str(root / (name + suffix)), format=fmt)
            if fmt == "saved_model":
                saved.append((name, path))
            else:
                f = load_served(path)
                out[name, fmt] = [_main_output(f(TILED)), _main_output(f(TILED))]
    np.save(root / "x.npy", TILED)
    paths = [p for _, p in saved]
    result = str(root / "saved.npz")
    subprocess.run([sys.executable, "-c", _RELOAD, json.dumps(paths),
                    str(root / "x.npy"), result], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    arrays = np.load(result)
    for i, (name, _p) in enumerate(saved):
        out[name, "saved_model"] = [np.asarray(arrays[f"{i}_{call}"], np.float64)
                                    for call in range(2)]
    return keras_out, out


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", ["plain", "distilled"])
def test_deterministic_models_agree_within_1e_5(served, name, fmt):
    keras_out, out = served
    first, second = out[name, fmt]
    np.testing.assert_allclose(first, keras_out[name], atol=1e-5)
    np.testing.assert_array_equal(first, second)


def _per_example_mean(y):
    return y.reshape(len(X), DRAWS, -1).mean(axis=1), \
        y.reshape(len(X), DRAWS, -1).std(axis=1)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_stochastic_models_agree_in_distribution(served, name, fmt):
    keras_out, out = served
    first, second = out[name, fmt]
    want, spread = _per_example_mean(keras_out[name])
    got, _ = _per_example_mean(first)
    tolerance = 5 * np.sqrt(2) * spread / np.sqrt(DRAWS) + 1e-6
    assert (np.abs(got - want) <= tolerance).all(), (got, want, tolerance)
    assert not np.array_equal(first, second)  # the runtime draws anew
    assert first.reshape(len(X), DRAWS, -1).std(axis=1).max() > 0


def test_smoothed_classifier_is_the_predict_law():
    base = _cnn(0)
    smoothed = SmoothedClassifier(base, sigma=0.25, n=100, alpha=0.001,
                                  batch_size=30, seed=0)
    out = smoothed(X)
    counts = out["counts"].numpy()
    assert (counts.sum(axis=1) == 100).all()
    # same counts -> same decision as certification.predict's binomial test
    from keras_adv.certification._certify import _binomial_decision
    np.testing.assert_array_equal(out["prediction"].numpy(),
                                  _binomial_decision(counts, 0.001))
    # and the same classifier in distribution: agreement with predict
    reference = predict(base, X, sigma=0.25, n=100, alpha=0.001, seed=1)
    agree = (out["prediction"].numpy() == reference) | (reference == -1) | (
        out["prediction"].numpy() == -1)
    assert agree.all()


def test_smoothed_classifier_saves_in_safe_mode(tmp_path):
    smoothed = SmoothedClassifier(_cnn(0), sigma=0.5, n=10, alpha=0.01, seed=3)
    smoothed(X)
    path = str(tmp_path / "smoothed.keras")
    smoothed.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert (loaded.sigma, loaded.n, loaded.alpha, loaded.seed) == (0.5, 10, 0.01, 3)
    np.testing.assert_array_equal(loaded.thresholds, smoothed.thresholds)
    assert loaded(X)["counts"].numpy().sum(axis=1).tolist() == [10] * 4


def test_seeded_sap_exports_with_the_runtime_generator(tmp_path):
    model = insert_sap(_cnn(0), seed=0)
    for fmt in ("tflite", "onnx"):
        f = load_served(export_model(model, str(tmp_path / f"s.{fmt}"),
                                     format=fmt))
        assert not np.array_equal(f(X), f(X))


class _Counting(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.random.SeedGenerator(0)

    def call(self, x):
        idx = keras.random.categorical(tf.zeros([tf.shape(x)[0], 3]), 2,
                                       seed=self.generator)
        return x * tf.cast(tf.reduce_sum(idx), x.dtype)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_an_op_the_runtime_lacks_is_one_line_naming_the_layer(tmp_path, fmt):
    model = keras.Sequential([keras.Input((3,)), _Counting(name="counting")])
    match = "layer 'counting'.*StatelessMultinomial"
    with pytest.raises(ValueError, match=match) as err:
        export_model(model, str(tmp_path / f"m.{fmt}"), format=fmt)
    assert "\n" not in str(err.value)


def test_bad_format_and_path(tmp_path):
    model = _cnn(0)
    with pytest.raises(ValueError, match="format=.*'pb'"):
        export_model(model, str(tmp_path / "m"), format="pb")
    with pytest.raises(ValueError, match="path=.*m.bin"):
        load_served(str(tmp_path / "m.bin"))


def test_standard_converters_hold_an_insert_sap_model(tmp_path):
    """Without export_model: TFLiteConverter (builtins only) and tf2onnx
    on the Keras model as it is (seed=None, the default)."""
    import onnxruntime
    import tf2onnx

    model = insert_sap(_cnn(0))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = tmp_path / "sap.tflite"
    path.write_bytes(converter.convert())
    tflite = load_served(str(path))
    spec = [tf.TensorSpec((None, 8, 8, 1), tf.float32, name="x")]
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: model(x)), input_signature=spec)
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    want = model(TILED).numpy().reshape(len(X), DRAWS, -1)
    for got in (tflite(TILED), session.run(None, {"x": TILED})[0]):
        got = got.reshape(len(X), DRAWS, -1)
        tolerance = 5 * np.sqrt(2) * want.std(axis=1) / np.sqrt(DRAWS) + 1e-6
        assert (np.abs(got.mean(axis=1) - want.mean(axis=1)) <= tolerance).all()
        assert got.std(axis=1).max() > 0


# --------------------------------------------------------------------------
# The format from the path, refusals in one line, what load_served accepts
# --------------------------------------------------------------------------


def _one_line(call, match):
    with pytest.raises(ValueError, match=match) as err:
        call()
    assert "\n" not in str(err.value) and "Received" in str(err.value)
    return str(err.value)


def test_the_extension_names_the_format(tmp_path):
    import onnx

    model = cases.dense()
    for name in ("m.tflite", "m.onnx", "served"):
        assert export_model(model, str(tmp_path / name)) == str(tmp_path / name)
    assert (tmp_path / "m.tflite").read_bytes()[4:8] == b"TFL3"
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node
    assert (tmp_path / "served" / "saved_model.pb").is_file()
    x = np.random.RandomState(0).rand(3, 6).astype("float32")
    for name in ("m.tflite", "m.onnx", "served"):
        np.testing.assert_allclose(load_served(str(tmp_path / name))(x),
                                   model(x), atol=1e-5)


@pytest.mark.parametrize("name, fmt", [
    ("m.tflite", "onnx"), ("m.onnx", "tflite"), ("x.onnx", "saved_model"),
    ("served", "tflite"), ("served", "onnx")])
def test_a_format_against_the_extension_is_refused(tmp_path, name, fmt):
    path = str(tmp_path / name)
    _one_line(lambda: export_model(cases.dense(), path, format=fmt),
              f"format must agree with path.*Received: format='{fmt}', "
              f"path='.*{name}'")
    assert not os.path.exists(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_signature": tf.TensorSpec((None, 5), tf.float32)},
     r"shape of the model's input \(None, 6\)\. Received: input_signature "
     r"with shape \(None, 5\)"),
    ({"input_signature": [tf.TensorSpec((None, 6)), tf.TensorSpec((None, 6))]},
     r"input_signature must be a tf\.TensorSpec"),
    ({"input_signature": (None, 6)}, r"Received: input_signature=\(None, 6\)"),
    ({"input_signature": tf.TensorSpec(None, tf.float32)},
     r"known rank"),
    ({"opset": "17"}, r"opset must be an integer.*Received: opset='17'"),
    ({"opset": 99}, r"Received: opset=99"),
])
def test_bad_signature_and_opset(tmp_path, kwargs, match):
    _one_line(lambda: export_model(cases.dense(), str(tmp_path / "m.onnx"),
                                   **kwargs), match)


def test_a_fitting_signature_is_used(tmp_path):
    spec = tf.TensorSpec((None, 6), tf.float32, name="pixels")
    f = load_served(export_model(cases.dense(), str(tmp_path / "m.onnx"),
                                 input_signature=[spec]))
    assert f(np.zeros((2, 6))).shape == (2, 4)


@pytest.mark.parametrize("suffix", ["", ".tflite", ".onnx"])
def test_several_inputs_are_refused(tmp_path, suffix):
    _one_line(lambda: export_model(cases.two_inputs(),
                                   str(tmp_path / f"m{suffix}")),
              r"model must have one input.*Received: model 'two_inputs' "
              r"with 2 inputs \['a', 'b'\]")


@pytest.mark.parametrize("suffix", ["", ".tflite", ".onnx"])
def test_a_lambda_layer_of_tensorflow_ops_exports(tmp_path, suffix):
    model = cases.tf_lambda()
    x = np.random.RandomState(0).rand(2, 4).astype("float32")
    f = load_served(export_model(model, str(tmp_path / f"m{suffix}")))
    np.testing.assert_allclose(f(x), model(x), atol=1e-5)


@pytest.mark.parametrize("suffix", ["", ".tflite", ".onnx"])
def test_a_lambda_layer_of_python_code_is_one_line(tmp_path, suffix):
    path = str(tmp_path / f"m{suffix}")
    _one_line(lambda: export_model(cases.numpy_lambda(), path),
              r"Lambda layers \['numpy_twice'\] run Python code.*Received: "
              r"model 'numpy_lambda'")
    assert not os.path.exists(path)


def test_loaded_adversarial_model_exports_in_every_format(tmp_path):
    trained = cases.adversarial()
    trained.save(tmp_path / "adv.keras")
    model = keras.models.load_model(tmp_path / "adv.keras")  # never called
    x = np.random.RandomState(1).rand(3, 6).astype("float32")
    for name in ("m.tflite", "m.onnx", "served"):
        f = load_served(export_model(model, str(tmp_path / name)))
        np.testing.assert_allclose(f(x), trained(x), atol=1e-5)


def test_load_served_takes_a_plain_tf_saved_model():
    model = cases.dense()
    f = load_served(cases.plain_saved(model))
    x = np.random.RandomState(0).rand(2, 6)
    np.testing.assert_allclose(f(x), model(x.astype("float32")), atol=1e-6)


def test_load_served_takes_the_single_signature_and_refuses_others():
    f = load_served(cases.saved_module(["second"]))
    np.testing.assert_array_equal(f(np.ones((1, 4))), [[3.0] * 4])
    for names in (["none"], ["first", "second"]):
        _one_line(lambda names=names: load_served(cases.saved_module(names)),
                  r"must have a serving signature: 'serve', "
                  r"'serving_default' or a single one")


def test_load_served_scans_the_saved_model(tmp_path):
    from tests.models.test_loading import save_writer

    target = tmp_path / "written.txt"
    path = save_writer(tmp_path / "writer", str(target))
    with pytest.raises(ValueError, match=r"refusing to load SavedModel .*"
                       r"op WriteFile.*trust_model=True") as err:
        load_served(str(path))  # load_model's one line
    assert "\n" not in str(err.value)
    with pytest.warns(UserWarning, match="trust_model=True"):
        f = load_served(str(path), trust_model=True)
    assert f(np.ones((1, 4), "float32")).shape == (1, 3)
    assert target.exists()


@pytest.mark.parametrize("suffix", ["", ".tflite", ".onnx"])
def test_served_inputs_are_cast_within_their_kind(suffix):
    f, model = cases.served(suffix), cases.dense()
    x = np.random.RandomState(0).rand(5, 6)
    want = model(x.astype("float32"))
    for dtype in ("float64", "float16"):
        np.testing.assert_allclose(f(x.astype(dtype)), want, atol=2e-2
                                   if dtype == "float16" else 1e-5)
    np.testing.assert_allclose(f(x.tolist()), want, atol=1e-5)
    _one_line(lambda: f((x * 255).astype("uint8")),
              r"x must hold floating-point values.*/ 255.*Received: x "
              r"with dtype uint8")
    _one_line(lambda: f(x[:, :5]), r"Received: x with shape \(5, 5\)")
    _one_line(lambda: f(x > 0.5), r"Received: x with dtype bool")


@pytest.mark.parametrize("suffix", ["", ".tflite", ".onnx"])
def test_integer_inputs_are_cast_to_the_served_integer_dtype(tmp_path, suffix):
    model = keras.Sequential([keras.Input((3,), dtype="int32"),
                              keras.layers.Embedding(10, 2),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    f = load_served(export_model(model, str(tmp_path / f"m{suffix}")))
    ids = np.array([[1, 2, 3], [9, 0, 4]], "int64")
    np.testing.assert_allclose(f(ids), model(ids.astype("int32")), atol=1e-5)
    _one_line(lambda: f(ids * 2**40), r"fit the served input's dtype int32")
    _one_line(lambda: f(ids.astype("float32")), r"x must hold integer values")
