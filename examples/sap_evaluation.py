"""Stochastic Activation Pruning looks robust without EOT; EOT sees through.

    .venv/bin/python examples/sap_evaluation.py [--eps 0.1] [--eot 10]

Trains `small_cnn` on mnist5k, inserts SAP after every ReLU, and attacks the
randomised model with PGD twice: with single-sample gradients (the weak
evaluation that made SAP look robust) and with gradients averaged over
`--eot` stochastic passes (EOT, Athalye et al. 2018).
"""

from absl import app, flags
from common import define_flags, mnist5k, train_small_cnn

flags.DEFINE_float("eps", 0.1, "L-inf budget.")
flags.DEFINE_integer("steps", 20, "PGD steps.")
flags.DEFINE_integer("eot", 10, "EOT samples per step.")
define_flags(num_examples=300)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.steps, FLAGS.eot, FLAGS.num_examples = 3, 2, 32
    import numpy as np

    from keras_adv.attacks import pgd
    from keras_adv.defenses.sap import insert_sap

    (x_train, y_train), (x_test, y_test) = mnist5k()
    model = train_small_cnn(x_train, y_train, epochs=1 if FLAGS.quick else 3,
                            seed=FLAGS.seed, verbose=2)
    sap = insert_sap(model, seed=FLAGS.seed)
    x, y = x_test[: FLAGS.num_examples], y_test[: FLAGS.num_examples]

    def accuracy(m, inputs):
        return float(np.mean(np.argmax(m.predict(inputs, verbose=0), -1) == y))

    kw = dict(eps=FLAGS.eps, steps=FLAGS.steps, seed=FLAGS.seed)
    print(f"clean: undefended {accuracy(model, x):.3f}, SAP {accuracy(sap, x):.3f}")
    undefended = accuracy(model, pgd(model, x, y, **kw))
    print(f"PGD on the undefended model:     {undefended:.3f}")
    print(f"PGD on SAP without EOT:          {accuracy(sap, pgd(sap, x, y, **kw)):.3f}")
    print(f"PGD on SAP with EOT-{FLAGS.eot}:           "
          f"{accuracy(sap, pgd(sap, x, y, eot_samples=FLAGS.eot, **kw)):.3f}")


if __name__ == "__main__":
    app.run(main)
