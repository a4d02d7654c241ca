"""Evaluate a saved model (.keras file or SavedModel directory).

    .venv/bin/python examples/evaluate_saved_model.py --model out/defended.keras
    .venv/bin/python examples/evaluate_saved_model.py   # trains a small model first

Loads the model with `keras_adv.models.load_model` (`.keras` in safe mode, a
SavedModel only after its ops are scanned), runs `keras_adv.evaluate_robustness`
on mnist5k test images at several eps, prints the table and any
gradient-masking warnings, and writes JSON and a plot. The same job from the
shell: `keras-adv evaluate`.
"""

from absl import app, flags
from common import define_flags, mnist5k, train_small_cnn

flags.DEFINE_string("model", None, "A .keras file or SavedModel directory; "
                    "default: train and save a small CNN first.")
flags.DEFINE_list("eps", ["0.1", "0.2", "0.3"], "Budgets.")
flags.DEFINE_string("attacks", "apgd-ce,apgd-t,square", "Attack suite.")
define_flags(out="out", num_examples=200)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import os
    import warnings

    import keras_adv
    from keras_adv.models import loading

    # The table lists the gradient-masking warnings; print them once.
    warnings.simplefilter("ignore", keras_adv.evaluation.MaskingWarning)

    os.makedirs(FLAGS.out, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = mnist5k()
    path = FLAGS.model
    if path is None:
        model = train_small_cnn(x_train, y_train, epochs=1, seed=FLAGS.seed,
                                verbose=2)
        path = os.path.join(FLAGS.out, "small_cnn.keras")
        model.save(path)
        print(f"trained and saved {path}")
    n = 32 if FLAGS.quick else FLAGS.num_examples
    model = keras_adv.models.load_model(path)  # safe mode / op scan first
    from_logits = loading.probe_outputs(model, x_test[:n])
    attacks = FLAGS.attacks
    if FLAGS.quick:
        attacks = [("apgd-ce", {"steps": 5}), ("square", {"queries": 50})]
    report = keras_adv.evaluate_robustness(
        model, x_test[:n], y_test[:n], eps=[float(e) for e in FLAGS.eps],
        attacks=attacks, from_logits=from_logits, seed=FLAGS.seed)
    print(report.table())
    report.to_json(os.path.join(FLAGS.out, "evaluation.json"))
    report.plot(os.path.join(FLAGS.out, "evaluation.png"))
    print(f"wrote {FLAGS.out}/evaluation.json and evaluation.png")


if __name__ == "__main__":
    app.run(main)
