"""Semi-supervised training with VAT: a few labels and many unlabeled images.

    .venv/bin/python examples/semi_supervised_vat.py --labels_per_class 10

Keeps `--labels_per_class` labels per class of the mnist5k training images
(`keras_adv.datasets.hide_labels`; the others get label -1), builds batches
with a fixed labeled share (`keras_adv.datasets.semi_supervised_dataset`)
and trains `small_cnn` in `keras_adv.models.AdversarialModel` with
`keras_adv.defenses.VAT`. The supervised loss uses the labeled examples,
the VAT term all of them. `--combine pgd` adds PGD adversarial training on
the labeled examples (`PGDTraining(...) + VAT(...)`), `--combine sparsity`
the data-sparsity smoothness penalty. With `--baseline`, the same network
is also trained on the labeled images alone for the same number of steps.
Reports test accuracy and saves the model as `.keras`.
"""

from absl import app, flags
from common import compile_classifier, define_flags, mnist5k

flags.DEFINE_integer("labels_per_class", 10, "Labels kept per class.")
flags.DEFINE_float("eps", 5.0, "VAT L2 eps (inputs in [0, 1]).")
flags.DEFINE_float("entropy_weight", 0.0,
                   "Entropy minimisation weight (VAT + EntMin: 1.0).")
flags.DEFINE_enum("combine", "none", ["none", "pgd", "sparsity"],
                  "Another defense to train together with VAT.")
flags.DEFINE_float("pgd_eps", 0.1, "L-inf eps of --combine pgd.")
flags.DEFINE_integer("epochs", 20, "Passes over the unlabeled images.")
flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_float("labeled_share", 0.25, "Labeled share of each batch.")
flags.DEFINE_bool("baseline", True, "Also train on the labels alone.")
flags.DEFINE_string("save", "out/semi_supervised_vat.keras", "Where to save.")
define_flags()
FLAGS = flags.FLAGS


def make_defense():
    from keras_adv import defenses

    vat = defenses.VAT(eps=FLAGS.eps, entropy_weight=FLAGS.entropy_weight)
    if FLAGS.combine == "pgd":
        return defenses.PGDTraining(eps=FLAGS.pgd_eps, steps=5) + vat
    if FLAGS.combine == "sparsity":
        return vat + defenses.DataSparsity()
    return vat


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.epochs = 1
    import os

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_adv

    (x_train, y_train), (x_test, y_test) = mnist5k(
        1000 if FLAGS.quick else None)
    hidden = keras_adv.datasets.hide_labels(
        y_train, labels_per_class=FLAGS.labels_per_class, seed=FLAGS.seed)
    keep = hidden >= 0
    x_l, y_l, x_u = x_train[keep], y_train[keep], x_train[~keep]
    data = keras_adv.datasets.semi_supervised_dataset(
        x_l, y_l, x_u, batch_size=FLAGS.batch,
        labeled_share=FLAGS.labeled_share, seed=FLAGS.seed)
    steps = len(data)
    print(f"{len(x_l)} labeled and {len(x_u)} unlabeled images; "
          f"{steps} steps per epoch")

    def test_accuracy(model):
        pred = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        return float(np.mean(pred == y_test))

    keras.utils.set_random_seed(FLAGS.seed)
    model = compile_classifier(keras_adv.models.AdversarialModel(
        keras_adv.models.small_cnn(seed=FLAGS.seed), defense=make_defense()))
    model.fit(data, epochs=FLAGS.epochs, verbose=2)
    print(f"{type(model.defense).__name__}: test accuracy "
          f"{test_accuracy(model):.3f}")

    if FLAGS.baseline:
        keras.utils.set_random_seed(FLAGS.seed)
        base = compile_classifier(keras_adv.models.small_cnn(seed=FLAGS.seed))
        n_l = round(FLAGS.labeled_share * FLAGS.batch)
        labeled = (tf.data.Dataset.from_tensor_slices((x_l, y_l))
                   .shuffle(len(x_l), seed=FLAGS.seed).repeat().batch(n_l))
        base.fit(labeled, epochs=FLAGS.epochs, steps_per_epoch=steps,
                 verbose=0)
        print(f"labels only: test accuracy {test_accuracy(base):.3f}")

    os.makedirs(os.path.dirname(FLAGS.save) or ".", exist_ok=True)
    model.save(FLAGS.save)
    print(f"saved {FLAGS.save}")


if __name__ == "__main__":
    app.run(main)
