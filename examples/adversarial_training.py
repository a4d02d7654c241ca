"""Adversarial training with any defense, chosen by flag, inside model.fit.

    python3 dev.py demo  # the main job; this script is one workflow of it:
    .venv/bin/python examples/adversarial_training.py --defense trades --eps 0.3

Trains `small_cnn` wrapped in `keras_adv.models.AdversarialModel` on mnist5k
(eps warm-up), logs clean and adversarial metrics per epoch, reports clean,
FGSM and PGD-20 accuracy on the test split, and saves the model as `.keras`.
"""

from absl import app, flags
from common import compile_classifier, define_flags, mnist5k

flags.DEFINE_enum("defense", "pgd", ["fgsm", "pgd", "fast", "free", "trades", "mart"],
                  "Adversarial training method.")
flags.DEFINE_float("eps", 0.3, "L-inf training budget (after warm-up).")
flags.DEFINE_integer("epochs", 6, "Training epochs.")
flags.DEFINE_integer("warmup", 3, "Epochs of linear eps warm-up.")
flags.DEFINE_integer("steps", 10, "Attack steps for PGD, TRADES and MART.")
flags.DEFINE_string("save", "out/adversarial_training.keras", "Where to save.")
define_flags(num_examples=500)
FLAGS = flags.FLAGS


def make_defense():
    from keras_adv import defenses

    eps, steps, warm = FLAGS.eps, FLAGS.steps, FLAGS.warmup
    return {
        "fgsm": lambda: defenses.FGSMTraining(eps=eps, warmup_epochs=warm),
        "pgd": lambda: defenses.PGDTraining(eps=eps, steps=steps,
                                            warmup_epochs=warm),
        "fast": lambda: defenses.FastTraining(eps=eps, warmup_epochs=warm),
        "free": lambda: defenses.FreeTraining(eps=eps, replays=4,
                                              warmup_epochs=warm),
        "trades": lambda: defenses.TRADES(eps=eps, steps=steps, beta=6.0,
                                          warmup_epochs=warm),
        "mart": lambda: defenses.MART(eps=eps, steps=steps, beta=6.0,
                                      warmup_epochs=warm),
    }[FLAGS.defense]()


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.epochs, FLAGS.warmup, FLAGS.steps, FLAGS.num_examples = 1, 1, 2, 64
    import os

    import keras
    import numpy as np

    import keras_adv

    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = mnist5k(512 if FLAGS.quick else None)
    model = compile_classifier(keras_adv.models.AdversarialModel(
        keras_adv.models.small_cnn(seed=FLAGS.seed), defense=make_defense()))
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64, verbose=2)

    x, y = x_test[: FLAGS.num_examples], y_test[: FLAGS.num_examples]

    def accuracy(inputs):
        pred = np.argmax(model.predict(inputs, verbose=0), axis=-1)
        return float(np.mean(pred == y))

    x_fgsm = keras_adv.attacks.fgsm(model, x, y, eps=FLAGS.eps)
    x_pgd = keras_adv.attacks.pgd(model, x, y, eps=FLAGS.eps, steps=20,
                                  seed=FLAGS.seed)
    print(f"clean {accuracy(x):.3f}  FGSM {accuracy(x_fgsm):.3f}  "
          f"PGD-20 {accuracy(x_pgd):.3f}  (eps {FLAGS.eps})")
    os.makedirs(os.path.dirname(FLAGS.save) or ".", exist_ok=True)
    model.save(FLAGS.save)
    print(f"saved {FLAGS.save}")


if __name__ == "__main__":
    app.run(main)
