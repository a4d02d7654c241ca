"""Backdoor a training set, train on it, find the poison, retrain, report.

    .venv/bin/python examples/backdoor_defense.py --trigger patch --rate 0.05

Poisons a share `--rate` of the mnist5k training images with a BadNets
trigger (`keras_adv.poisoning.backdoor`: the images get the trigger and the
label `--target`), trains `small_cnn` on the result, and reports clean
accuracy and attack success rate (`keras_adv.poisoning.evaluate_poisoning`).
It then runs both detectors on the training set with the trained model
(`spectral_signature` and `activation_clustering`), prints their recall and
precision against the known poison, retrains on the rows that the chosen
`--detector` did not flag, and reports again. Finally STRIP
(`strip_entropy`, `strip_threshold` at a 5% false rejection rate on held-out
clean images) is run on the poisoned model at test time. Writes the final
report as JSON when `--json` is given.
"""

from absl import app, flags
from common import define_flags, mnist5k, train_small_cnn

flags.DEFINE_enum("trigger", "patch", ["patch", "blend"], "Backdoor trigger.")
flags.DEFINE_float("rate", 0.05, "Share of the training set poisoned.")
flags.DEFINE_integer("target", 0, "Class the trigger should produce.")
flags.DEFINE_integer("epochs", 8, "Training epochs (Adam, batch 64).")
flags.DEFINE_float("expected_fraction", 0.35,
                   "Spectral signatures: expected poisoned share of a class.")
flags.DEFINE_enum("detector", "clustering", ["clustering", "spectral"],
                  "Which detector's flags are removed before retraining.")
flags.DEFINE_integer("train_examples", 4000, "Training images used.")
flags.DEFINE_string("json", None, "Write the retrained model's report here.")
define_flags(quick="Small settings for a smoke run.")
FLAGS = flags.FLAGS


def train(x, y, epochs):
    return train_small_cnn(x, y, epochs=epochs, seed=FLAGS.seed)


def detect(model, p):
    import numpy as np

    from keras_adv import poisoning

    flagged = {
        "spectral": poisoning.spectral_signature(
            model, p.x, p.y, expected_fraction=FLAGS.expected_fraction),
        "clustering": poisoning.activation_clustering(model, p.x, p.y,
                                                     seed=FLAGS.seed),
    }
    for name, idx in flagged.items():
        hits = np.isin(p.index, idx).sum()
        print(f"{name}: flagged {len(idx)} rows, recall "
              f"{hits / max(1, len(p.index)):.3f}, precision "
              f"{hits / max(1, len(idx)):.3f}")
    return flagged[FLAGS.detector]


def strip(model, x_test, y_test):
    import numpy as np

    from keras_adv import poisoning

    held, x_eval, y_eval = x_test[:200], x_test[200:400], y_test[200:400]
    h_clean = poisoning.strip_entropy(model, x_eval, held, overlays=32,
                                      seed=FLAGS.seed)
    threshold = poisoning.strip_threshold(h_clean, frr=0.05)
    others = x_eval[y_eval != FLAGS.target]
    h_trig = poisoning.strip_entropy(
        model, poisoning.apply_trigger(others, trigger=FLAGS.trigger), held,
        overlays=32, seed=FLAGS.seed)
    print(f"STRIP (threshold {threshold:.3f} at 5% FRR): triggered inputs "
          f"rejected {np.mean(h_trig < threshold):.3f}, clean rejected "
          f"{np.mean(h_clean < threshold):.3f}")


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.train_examples, FLAGS.epochs = 1200, 2
    import numpy as np

    from keras_adv import poisoning

    (x, y), (x_test, y_test) = mnist5k(FLAGS.train_examples)
    p = poisoning.backdoor(x, y, target=FLAGS.target, rate=FLAGS.rate,
                           trigger=FLAGS.trigger, seed=FLAGS.seed)
    print(f"poisoned {len(p.index)} of {len(x)} training images "
          f"({FLAGS.trigger} trigger, target {FLAGS.target})")
    model = train(p.x, p.y, FLAGS.epochs)
    print("trained on the poisoned set:")
    print(poisoning.evaluate_poisoning(model, x_test, y_test,
                                       target=FLAGS.target,
                                       trigger=FLAGS.trigger).table())
    flagged = detect(model, p)
    keep = np.setdiff1d(np.arange(len(p.x)), flagged)
    retrained = train(p.x[keep], p.y[keep], FLAGS.epochs)
    report = poisoning.evaluate_poisoning(retrained, x_test, y_test,
                                          target=FLAGS.target,
                                          trigger=FLAGS.trigger)
    print(f"retrained without the {len(flagged)} rows flagged by "
          f"{FLAGS.detector}:")
    print(report.table())
    strip(model, x_test, y_test)
    if FLAGS.json:
        report.to_json(FLAGS.json)
        print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
    app.run(main)
