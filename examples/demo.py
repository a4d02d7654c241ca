"""The main job: train a CNN on the embedded MNIST subset and attack it.

Trains `keras_adv.models.small_cnn` on mnist5k (4000 training images, no
download), then prints its accuracy under FGSM and PGD over a range of L-inf
and L2 budgets on the 1000 test images.

    python3 dev.py demo [--epochs 3] [--n 1000] [--steps 20]
"""

import time

from absl import app, flags

flags.DEFINE_string("dataset", "mnist5k", "mnist5k (embedded) or a tfds name.")
flags.DEFINE_integer("epochs", 3, "Training epochs.")
flags.DEFINE_integer("n", 1000, "Test examples to attack.")
flags.DEFINE_integer("steps", 20, "PGD steps.")
flags.DEFINE_integer("seed", 0, "Random seed.")
FLAGS = flags.FLAGS

LINF = [0.05, 0.1, 0.2, 0.3]
L2 = [0.5, 1.0, 2.0, 3.0]


def main(argv):
    del argv
    import keras
    import numpy as np

    import keras_adv

    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = keras_adv.datasets.load(FLAGS.dataset)
    x_test, y_test = x_test[: FLAGS.n], y_test[: FLAGS.n]
    model = keras_adv.models.small_cnn(
        input_shape=x_train.shape[1:], num_classes=int(y_train.max()) + 1,
        seed=FLAGS.seed)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    print(f"Training small_cnn on {FLAGS.dataset} ({len(x_train)} images)")
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64, verbose=2)

    def accuracy(x):
        pred = np.argmax(model.predict(x, batch_size=500, verbose=0), axis=-1)
        return float(np.mean(pred == y_test))

    print(f"\nClean test accuracy: {accuracy(x_test):.3f} on {len(x_test)} images")
    print(f"{'attack':>24s} {'norm':>5s} {'eps':>5s} {'accuracy':>9s} {'sec':>6s}")
    for norm, budgets in (("linf", LINF), ("l2", L2)):
        for eps in budgets:
            for name in ("FGSM", f"PGD-{FLAGS.steps}"):
                start = time.perf_counter()
                if name == "FGSM":
                    x_adv = keras_adv.attacks.fgsm(model, x_test, y_test,
                                                   eps=eps, norm=norm)
                else:
                    x_adv = keras_adv.attacks.pgd(
                        model, x_test, y_test, eps=eps, norm=norm,
                        steps=FLAGS.steps, seed=FLAGS.seed)
                took = time.perf_counter() - start
                print(f"{name:>24s} {norm:>5s} {eps:5.2f} {accuracy(x_adv):9.3f}"
                      f" {took:6.1f}")


if __name__ == "__main__":
    app.run(main)
