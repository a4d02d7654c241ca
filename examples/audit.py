"""The whole threat model of a model in one web page: `keras_adv.audit`.

    .venv/bin/python examples/audit.py                 # about 2 minutes
    .venv/bin/python examples/audit.py --model m.keras --out audit
    .venv/bin/keras-adv audit m.keras --eps 0.1,0.2 --sigma 0.25 \\
        --train-data mnist5k:train --out audit         # the same, as a command

Trains a small CNN with PGD adversarial training on mnist5k (or loads
`--model`), then audits it: the attack suite with the gradient-masking
checks at each eps, a grid of clean and adversarial examples,
randomized-smoothing certification at `--sigma`, and a poisoning scan of
the training set. Writes `--out/report.html` (one self-contained page) and
`--out/report.json`.
"""

import os

from absl import app, flags
from common import define_flags, mnist5k, train_small_cnn

flags.DEFINE_string("model", None, "A .keras file or SavedModel directory; "
                    "default: train a PGD-trained small CNN first.")
flags.DEFINE_list("eps", ["0.1", "0.2", "0.3"], "L-inf budgets.")
flags.DEFINE_float("sigma", 0.25, "Smoothing noise for certification.")
define_flags(out="out/audit", num_examples=300)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras_adv

    (x_train, y_train), (x_test, y_test) = mnist5k()
    if FLAGS.model:
        model = keras_adv.models.load_model(FLAGS.model)
    else:
        model = train_small_cnn(
            x_train, y_train, epochs=1 if FLAGS.quick else 6, seed=FLAGS.seed,
            verbose=2, defense=keras_adv.defenses.PGDTraining(
                eps=0.3, steps=3 if FLAGS.quick else 10,
                warmup_epochs=1 if FLAGS.quick else 3))
    quick = FLAGS.quick
    report = keras_adv.audit(
        model, x_test, y_test, eps=[float(e) for e in FLAGS.eps],
        num_examples=32 if quick else FLAGS.num_examples,
        attacks=([("apgd-ce", {"steps": 10}), ("square", {"queries": 100})]
                 if quick else "standard"),
        sigma=FLAGS.sigma, n=200 if quick else 1000,
        x_train=x_train[:500] if quick else x_train,
        y_train=y_train[:500] if quick else y_train,
        seed=FLAGS.seed,
        describe={"data": "mnist5k (test split)",
                  "train_data": "mnist5k (training split)",
                  "source": FLAGS.model
                  or "examples/audit.py (PGD-trained small_cnn)"})
    os.makedirs(FLAGS.out, exist_ok=True)
    report.to_json(os.path.join(FLAGS.out, "report.json"))
    report.to_html(os.path.join(FLAGS.out, "report.html"))
    print(report.table())
    print(f"wrote {FLAGS.out}/report.html and report.json "
          f"({report.summary['seconds']:.0f} s)")


if __name__ == "__main__":
    app.run(main)
