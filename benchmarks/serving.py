"""Serving latency and agreement of five defended models in four runtimes.

    python3 dev.py bench serving            # about 3 minutes on 2 CPU cores
    python3 dev.py bench serving --quick    # a smoke run

A small CNN trained on mnist5k, and four defended forms of it: Stochastic
Activation Pruning after every ReLU (`insert_sap`), a `RandomizedMixture` of
the CNN and its SAP form, the distilled form (`Temperature(T)` then
softmax), and `SmoothedClassifier` (sigma 0.25, n 100). Each is exported
with `keras_adv.models.export_model` as a SavedModel, a TFLite file with
builtin ops only and an ONNX file, and run with `load_served`: the
SavedModel with TensorFlow, TFLite with LiteRT's interpreter, ONNX with ONNX
Runtime. Keras is the model called inside a `tf.function`.

Printed per model and runtime:
- latency at batch 1 and batch 128 (median of `--repeats` rounds, each of
  `--calls` calls, all runtimes timed round-robin in one process);
- agreement with Keras on the test images: the largest difference of the
  outputs (deterministic models), or of the mean output over `--draws`
  draws per image on 50 images (stochastic ones; the smoothed classifier's
  vote fractions over `--draws` / 20 calls of 100 votes); the Keras row
  compares Keras with a second Keras run,
  the sampling noise any runtime's figure should be read against;
- test accuracy of one call (the smoothed classifier: abstentions count as
  errors).
"""

import os
import tempfile
import time

from absl import app, flags

from examples.common import define_flags

flags.DEFINE_integer("epochs", 2, "Epochs of clean training.")
flags.DEFINE_integer("draws", 200, "Draws per image for stochastic models.")
flags.DEFINE_integer("repeats", 5, "Timed rounds per runtime and batch.")
flags.DEFINE_integer("calls", 10, "Calls per timed round.")
flags.DEFINE_float("temperature", 100.0, "Distillation temperature.")
define_flags(quick="Tiny settings for a smoke run.", num_examples=1000)
FLAGS = flags.FLAGS

FORMATS = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
STOCHASTIC = ("sap", "mixture", "smoothed")


def build_models(base):
    """The five served models, all from `base`."""
    import keras

    from keras_adv.certification import SmoothedClassifier
    from keras_adv.defenses import insert_sap
    from keras_adv.layers import Temperature
    from keras_adv.models import RandomizedMixture

    sap = insert_sap(base)
    return {
        "plain": base,
        "sap": sap,
        "mixture": RandomizedMixture([base, sap], probabilities=[0.5, 0.5]),
        "distilled": keras.Sequential(
            [keras.Input(base.inputs[0].shape[1:]), *base.layers,
             Temperature(FLAGS.temperature), keras.layers.Softmax()]),
        "smoothed": SmoothedClassifier(base, sigma=0.25, n=100),
    }


def chunked(fn, x, size=128):
    """`fn` on chunks of `size` rows, outputs concatenated (bounded memory:
    the smoothed classifier runs 100 base passes per row)."""
    import numpy as np

    outs = [fn(x[i:i + size]) for i in range(0, len(x), size)]
    if isinstance(outs[0], dict):
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    return np.concatenate(outs)


def _main(y):
    import numpy as np

    return np.asarray(y["counts"] if isinstance(y, dict) else y, np.float64)


def agreement(name, keras_fn, served_fn, x):
    """Largest output difference, on means over draws when stochastic."""
    import numpy as np

    if name not in STOCHASTIC:
        return float(np.abs(_main(chunked(served_fn, x))
                        - _main(chunked(keras_fn, x))).max())
    # the smoothed classifier votes n = 100 times per draw already
    draws = FLAGS.draws // 20 if name == "smoothed" else FLAGS.draws
    tiled = np.repeat(x[:50], draws, axis=0)
    shape = (min(len(x), 50), draws, -1)
    got = _main(chunked(served_fn, tiled)).reshape(shape).mean(axis=1)
    want = _main(chunked(keras_fn, tiled)).reshape(shape).mean(axis=1)
    if name == "smoothed":  # counts -> vote fractions
        got, want = got / 100, want / 100
    return float(np.abs(got - want).max())


def accuracy(fn, x, y):
    import numpy as np

    out = chunked(fn, x)
    pred = (out["prediction"] if isinstance(out, dict)
            else np.argmax(out, axis=-1))
    return float(np.mean(np.asarray(pred) == y))


def main(_):
    import tensorflow as tf

    from benchmarks.common import interleaved_timing, machine, trained_cnn
    from keras_adv.models import export_model, load_served

    if FLAGS.quick:
        FLAGS.epochs, FLAGS.num_examples, FLAGS.repeats, FLAGS.calls = 1, 200, 2, 3
    base, _, (x_test, y_test) = trained_cnn(epochs=FLAGS.epochs)
    x, y = x_test[:FLAGS.num_examples], y_test[:FLAGS.num_examples]
    root = tempfile.mkdtemp()
    print(machine())
    print(f"{'model':10} {'runtime':12} {'b=1 ms':>8} {'b=128 ms':>9} "
          f"{'max diff':>9} {'accuracy':>8}")
    for name, model in build_models(base).items():
        compiled = tf.function(lambda t, m=model: m(t, training=False))
        runtimes = {"keras": lambda t, f=compiled: _numpy(f(tf.constant(t)))}
        start = time.time()
        for fmt, suffix in FORMATS.items():
            path = export_model(model, os.path.join(root, name + suffix),
                                format=fmt)
            runtimes[fmt] = load_served(path)
        export_s = time.time() - start
        rows = {rt: {} for rt in runtimes}
        for batch in (1, 128):
            xb = x[:batch]
            fns = {rt: (lambda f=f, xb=xb: [f(xb) for _ in range(FLAGS.calls)])
                   for rt, f in runtimes.items()}
            for rt, s in interleaved_timing(fns, FLAGS.repeats).items():
                rows[rt][batch] = 1000 * s / FLAGS.calls
        for rt, f in runtimes.items():
            # the keras row: Keras against itself (the sampling noise)
            diff = agreement(name, runtimes["keras"], f, x)
            print(f"{name:10} {rt:12} {rows[rt][1]:8.2f} {rows[rt][128]:9.2f} "
                  f"{diff:9.2e} {accuracy(f, x, y):8.3f}")
        print(f"{'':10} (export of the three formats: {export_s:.1f} s)")


def _numpy(out):
    if isinstance(out, dict):
        return {k: v.numpy() for k, v in out.items()}
    return out.numpy()


if __name__ == "__main__":
    app.run(main)
