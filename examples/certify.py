"""Certified robustness: train for randomized smoothing, certify, plot.

    .venv/bin/python examples/certify.py [--sigma 0.25] [--n 10000]
        [--num-examples 500] [--out certify_out] [--quick]

Trains `small_cnn` on mnist5k with Gaussian augmentation
(`keras_adv.defenses.GaussianAugmentation`, Cohen et al. 2019) inside
`model.fit`, certifies the smoothed classifier on test images with
`keras_adv.certification.evaluate_certified`, prints certified accuracy per
L2 radius, and writes `certified.json` and `certified.png` (certified
accuracy against the radius) to `--out`. `--quick` runs in about a minute.
"""

import os

from absl import app, flags
from common import compile_classifier, define_flags, mnist5k

flags.DEFINE_float("sigma", 0.25, "Noise standard deviation (train and "
                   "certify).")
flags.DEFINE_integer("epochs", 5, "Training epochs.")
flags.DEFINE_integer("n", 10_000, "Certification samples per example.")
flags.DEFINE_integer("n0", 100, "Selection samples per example.")
flags.DEFINE_float("alpha", 0.001, "Failure probability per certificate.")
define_flags(out="certify_out", num_examples=500,
             quick="Small settings, about a minute.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.epochs, FLAGS.n, FLAGS.num_examples = 1, 500, 50
    import keras

    import keras_adv

    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = mnist5k()

    # 1. Train the base classifier on x + N(0, sigma^2) (unclipped noise).
    base = keras_adv.models.small_cnn(seed=FLAGS.seed)
    model = compile_classifier(keras_adv.models.AdversarialModel(
        base, defense=keras_adv.defenses.GaussianAugmentation(
            sigma=FLAGS.sigma)))
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64, verbose=2)

    # 2. Certify the smoothed classifier g(x) = argmax P(f(x + noise) = c).
    x, y = x_test[: FLAGS.num_examples], y_test[: FLAGS.num_examples]
    report = keras_adv.certification.evaluate_certified(
        base, x, y, sigma=FLAGS.sigma, n0=FLAGS.n0, n=FLAGS.n,
        alpha=FLAGS.alpha, radii=[0.0, 0.25, 0.5, 0.75, 1.0], seed=FLAGS.seed)
    print(report.table())
    print(f"{report.samples_per_second:,.0f} noisy forward passes per second")

    # 3. Save the numbers and the curve.
    os.makedirs(FLAGS.out, exist_ok=True)
    report.to_json(os.path.join(FLAGS.out, "certified.json"))
    path = report.plot(os.path.join(FLAGS.out, "certified.png"))
    print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
