"""What the examples and benchmarks share, so that each script shows only
what it demonstrates: the common flags and a small model trained on the
embedded data.

    from common import define_flags, mnist5k, train_small_cnn  # examples
    from examples.common import define_flags, ...               # benchmarks

Flags (absl, underscores as in every absl program):

    --quick           tiny settings for a smoke run (what the tests use)
    --seed            seed of the data order, the initial weights and the
                      attacks (0: the published figures)
    --out             output directory, where the script writes files
    --num_examples    test examples evaluated, where the script evaluates
    --dataset         mnist5k (embedded, offline) or a tensorflow-datasets
                      name (needs the network once), where the script
                      offers a choice
"""

from absl import flags

FLAGS = flags.FLAGS


def define_flags(*, out=None, num_examples=None, dataset=False,
                 quick="Tiny settings for a smoke run."):
    """Defines `--seed`, `--quick` (unless `quick=None`), and `--out`,
    `--num_examples` and `--dataset` when given a default (`dataset=True`:
    mnist5k).

    Example: `define_flags(out="out", num_examples=300)` at module level.
    """
    if quick:
        flags.DEFINE_bool("quick", False, quick)
    flags.DEFINE_integer("seed", 0, "Random seed.")
    if out is not None:
        flags.DEFINE_string("out", out, "Output directory.")
    if num_examples is not None:
        flags.DEFINE_integer("num_examples", num_examples,
                             "Test examples evaluated.")
    if dataset:
        flags.DEFINE_string(
            "dataset", "mnist5k",
            "mnist5k (embedded, offline) or mnist|fashion_mnist|cifar10 "
            "(tensorflow-datasets, needs the network once).")


def mnist5k(train_examples=None):
    """`(x_train, y_train), (x_test, y_test)` of the embedded mnist5k data
    (4000 and 1000 images); `train_examples` keeps the first N training
    images.

    Example: `(x, y), (x_test, y_test) = mnist5k(512 if FLAGS.quick else
    None)`.
    """
    from keras_adv import datasets

    (x_train, y_train), test = datasets.load("mnist5k")
    return (x_train[:train_examples], y_train[:train_examples]), test


def compile_classifier(model, *, learning_rate=1e-3, metrics=("accuracy",)):
    """Compiles a logits classifier as every example and benchmark does:
    Adam at `learning_rate` (a float or a Keras schedule) and sparse
    cross-entropy from logits, with `metrics` (`()` for none); returns the
    model.

    Example: `compile_classifier(keras_adv.models.AdversarialModel(...))`.
    """
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  metrics=list(metrics),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model


def train_small_cnn(x, y, *, epochs, seed=0, defense=None, batch_size=64,
                    verbose=0, **cnn_kwargs):
    """`small_cnn(seed=seed)` (in an `AdversarialModel` with `defense`),
    compiled by `compile_classifier` and trained on `(x, y)` after
    `keras.utils.set_random_seed(seed)`.

    Example: `model = train_small_cnn(x, y, epochs=3)`.
    """
    import keras

    from keras_adv import models

    keras.utils.set_random_seed(seed)
    model = models.small_cnn(seed=seed, **cnn_kwargs)
    if defense is not None:
        model = models.AdversarialModel(model, defense=defense)
    compile_classifier(model)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model
