"""Export a defended model for serving and use it from a fresh process.

    .venv/bin/python examples/export_for_serving.py [--dir out/serving]

Trains a small PGD-AT model on mnist5k, exports only its inference graph as a
SavedModel with a named serving signature `classify` (inputs: float32 images
(batch, 28, 28, 1) in [0, 1]; outputs: `logits`, `probabilities`, `label`),
then starts a new Python process that loads it with `tf.saved_model.load` (no
keras_adv import) and predicts test images.
"""

import subprocess
import sys
import textwrap

from absl import app, flags
from common import define_flags, mnist5k, train_small_cnn

flags.DEFINE_string("dir", "out/serving", "SavedModel directory to write.")
flags.DEFINE_integer("epochs", 3, "Adversarial training epochs.")
define_flags()
FLAGS = flags.FLAGS

SERVE = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    data = np.load(sys.argv[2])
    served = tf.saved_model.load(sys.argv[1])
    classify = served.signatures["classify"]
    out = classify(images=tf.constant(data["x"]))
    acc = float(np.mean(out["label"].numpy() == data["y"]))
    print(f"fresh process: signature 'classify' -> {sorted(out)}; "
          f"accuracy on {len(data['y'])} test images {acc:.3f}")
""")


def main(argv):
    del argv
    import os
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_adv

    if FLAGS.quick:
        FLAGS.epochs = 1
    (x_train, y_train), (x_test, y_test) = mnist5k(512 if FLAGS.quick else None)
    model = train_small_cnn(
        x_train, y_train, epochs=FLAGS.epochs, seed=FLAGS.seed, verbose=2,
        defense=keras_adv.defenses.PGDTraining(eps=0.2, steps=5,
                                               warmup_epochs=1))

    base = model.base  # the inference model only: no attack in the graph
    archive = keras.export.ExportArchive()
    archive.track(base)

    def classify(images):
        logits = base(images, training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "label": tf.argmax(logits, axis=-1)}

    archive.add_endpoint(
        "classify", classify,
        input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32,
                                       name="images")])
    archive.write_out(FLAGS.dir, verbose=False)
    print(f"exported {FLAGS.dir} with signature 'classify'")

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "batch.npz")
        np.savez(data, x=x_test[:200], y=y_test[:200])
        subprocess.run([sys.executable, "-c", SERVE, FLAGS.dir, data],
                       check=True)


if __name__ == "__main__":
    app.run(main)
