"""Adversarial training with generated data: a DCGAN, pseudo-labels, mixing.

    .venv/bin/python examples/generated_data_training.py --gan_steps 2000

1. Trains a DCGAN (`keras_adv.generative.DCGAN`) on the mnist5k training
   images with `fit`; a `GANMonitor` writes a grid of samples (the same
   latent vectors every time) to `--out/samples_epoch_N.png`.
2. Measures the samples: Frechet distance to the test images in the
   penultimate features of a clean small_cnn, and class coverage.
3. Pseudo-labels `--samples` generated images with that clean classifier
   (the teacher; `keras_adv.datasets.pseudo_label`, confidence
   `--threshold`), mixes them with the real images at `--real_fraction`
   real rows per batch (`keras_adv.datasets.mix`) and trains small_cnn with
   PGD adversarial training on the mix, next to the same training on the
   real images alone for the same number of steps.
4. Reports clean and PGD accuracy of both on the test images.
"""

from absl import app, flags
from common import compile_classifier, define_flags, mnist5k, train_small_cnn

flags.DEFINE_integer("gan_steps", 2000, "DCGAN generator steps (batch 64).")
flags.DEFINE_integer("gan_width", 32, "DCGAN width.")
flags.DEFINE_integer("samples", 20000, "Generated images for training.")
flags.DEFINE_float("threshold", 0.0, "Pseudo-label confidence threshold.")
flags.DEFINE_float("real_fraction", 0.3, "Real rows per mixed batch.")
flags.DEFINE_float("eps", 0.3, "PGD-AT L-inf eps.")
flags.DEFINE_integer("pgd_steps", 10, "PGD-AT steps.")
flags.DEFINE_integer("epochs", 8, "Adversarial training epochs.")
define_flags(out="out/generated_data")
FLAGS = flags.FLAGS


def train_gan(x_train):
    import os

    import tensorflow as tf

    from keras_adv import generative

    gan = generative.DCGAN((28, 28, 1), width=FLAGS.gan_width,
                           seed=FLAGS.seed)
    gan.compile()  # Adam(2e-4, beta_1=0.5) for both networks
    epochs = 4
    data = (tf.data.Dataset.from_tensor_slices(x_train)
            .shuffle(len(x_train), seed=FLAGS.seed).repeat()
            .batch(64, drop_remainder=True))
    monitor = generative.GANMonitor(
        os.path.join(FLAGS.out, "samples_epoch_{epoch}.png"), num_images=64,
        seed=FLAGS.seed)
    gan.fit(data, epochs=epochs, steps_per_epoch=FLAGS.gan_steps // epochs,
            callbacks=[monitor], verbose=2)
    print(f"sample grids: {', '.join(monitor.written)}")
    return gan


def clean_classifier(x, y, epochs):
    return train_small_cnn(x, y, epochs=epochs, seed=FLAGS.seed)


def adversarial_training(data, steps_per_epoch):
    import keras

    from keras_adv import defenses, models

    keras.utils.set_random_seed(FLAGS.seed)
    base = models.small_cnn(seed=FLAGS.seed)
    model = compile_classifier(models.AdversarialModel(
        base, defense=defenses.PGDTraining(
            eps=FLAGS.eps, steps=FLAGS.pgd_steps,
            step_size=2.5 * FLAGS.eps / FLAGS.pgd_steps,
            warmup_epochs=FLAGS.epochs / 2)))
    model.fit(data, epochs=FLAGS.epochs, steps_per_epoch=steps_per_epoch,
              shuffle=False, verbose=0)
    return base


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.gan_steps, FLAGS.gan_width, FLAGS.samples = 40, 8, 1000
        FLAGS.epochs, FLAGS.pgd_steps = 2, 3
    import numpy as np
    import tensorflow as tf

    import keras_adv
    from keras_adv import datasets, generative, models

    (x_train, y_train), (x_test, y_test) = mnist5k()
    if FLAGS.quick:
        x_test, y_test = x_test[:200], y_test[:200]
    gan = train_gan(x_train)

    teacher = clean_classifier(x_train, y_train, 1 if FLAGS.quick else 5)
    fake = gan.generate(2000, seed=FLAGS.seed + 1)
    fid = generative.frechet_distance(
        models.feature_model(teacher), x_test, fake)
    cov = generative.class_coverage(teacher, fake)
    print(f"FID (small_cnn features) {fid:.2f}; class shares "
          f"{np.round(cov.shares, 3).tolist()}; mean confidence "
          f"{cov.confidence:.3f}")

    x_gen, y_gen = datasets.pseudo_label(
        teacher, gan.generate(FLAGS.samples, seed=FLAGS.seed + 2),
        threshold=FLAGS.threshold or None)
    print(f"{len(y_gen)} of {FLAGS.samples} generated images pseudo-labelled")
    steps = 5 if FLAGS.quick else len(x_train) // 64
    real = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shuffle(len(x_train), seed=FLAGS.seed).repeat()
            .batch(64, drop_remainder=True))
    mixed = datasets.mix((x_train, y_train), (x_gen, y_gen),
                         real_fraction=FLAGS.real_fraction, batch_size=64,
                         seed=FLAGS.seed).repeat()
    for name, data in (("real only", real), ("real + generated", mixed)):
        base = adversarial_training(data, steps)
        clean = np.mean(np.argmax(base.predict(x_test, verbose=0), -1)
                        == y_test)
        x_adv = keras_adv.attacks.pgd(base, x_test, y_test, eps=FLAGS.eps,
                                      steps=20, step_size=FLAGS.eps / 8,
                                      seed=FLAGS.seed)
        robust = np.mean(np.argmax(base.predict(x_adv, verbose=0), -1)
                         == y_test)
        print(f"PGD-AT on {name}: clean accuracy {clean:.3f}, PGD-20 "
              f"accuracy {robust:.3f}")


if __name__ == "__main__":
    app.run(main)
