"""Semi-supervised VAT and the data-sparsity hypothesis on mnist5k.

Part 1 (semi-supervised): 100 labels (10 per class, seeded) of the 4000
mnist5k training images, the other 3900 unlabeled, tested on the 1000 test
images. Three runs of the same network (`--ssl_model`: small_cnn, or the
VAT paper's MNIST MLP with batch norm) from the same initial weights, for
the same number of optimizer steps with the same number of labeled examples
per step, with Adam 1e-3 cosine-decayed to 0 (`--lr_decay`):

- supervised only: batches of the labeled examples;
- VAT (`keras_adv.defenses.VAT`, L2 eps `--vat_eps`, xi `--vat_xi`):
  batches from `keras_adv.datasets.semi_supervised_dataset`, `--labeled`
  labeled and the rest unlabeled;
- VAT + entropy minimisation (`entropy_weight=1`).

Part 2 (data sparsity, all 4000 labels): undefended, DataSparsity and
DataSparsity + PGD-AT (for each lambda in `--ds_weight`) and PGD-AT (L-inf
eps 0.3, `--steps`-step PGD, eps warm-up), small_cnn, the same epochs.
Reported on the test images: clean accuracy, PGD accuracy at L-inf eps
0.05, 0.1, 0.2, 0.3 (`--eval_steps` steps, `--eval_restarts` restarts,
step 2.5 eps / steps) and the median DeepFool (L2) rho = |r|_2 / |x|_2
over correctly classified test images.

    python3 dev.py bench semi_supervised
"""

import time

from absl import app, flags

from examples.common import compile_classifier, define_flags

flags.DEFINE_integer("labels_per_class", 10, "Labels kept per class.")
flags.DEFINE_integer("ssl_epochs", 60,
                     "Passes over the unlabeled set (part 1).")
flags.DEFINE_integer("ssl_batch", 128, "Batch size (part 1).")
flags.DEFINE_integer("labeled", 32, "Labeled examples per batch (part 1).")
flags.DEFINE_float("vat_eps", 5.0, "VAT L2 eps (inputs in [0, 1]).")
flags.DEFINE_float("vat_xi", 1e-6, "VAT power-iteration scale xi.")
flags.DEFINE_bool("lr_decay", True,
                  "Part 1: Adam 1e-3 decayed to 0 (cosine) over the run.")
flags.DEFINE_enum("ssl_model", "cnn", ["cnn", "mlp", "mlp_nobn"],
                  "Part 1 network: small_cnn, or the VAT paper's MNIST MLP "
                  "(1200-600-300-150-150 with batch norm, or without).")
flags.DEFINE_list("ssl_methods", ["supervised", "vat", "vat_entmin"],
                  "Part 1 runs.")
flags.DEFINE_integer("epochs", 8, "Training epochs (part 2).")
flags.DEFINE_integer("batch", 64, "Batch size (part 2).")
flags.DEFINE_integer("steps", 10, "PGD-AT training steps (part 2).")
flags.DEFINE_float("train_eps", 0.3, "PGD-AT L-inf eps (part 2).")
flags.DEFINE_float("warmup", 4.0, "PGD-AT eps warm-up epochs (part 2).")
flags.DEFINE_float("ds_noise", 0.004, "DataSparsity noise_std (sigma_u).")
flags.DEFINE_list("ds_weight", ["1e3", "1e4"],
                  "DataSparsity weights (lambda): a pair of rows each.")
flags.DEFINE_list("eval_eps", ["0.05", "0.1", "0.2", "0.3"],
                  "L-inf budgets of the PGD evaluation.")
flags.DEFINE_integer("eval_steps", 40, "PGD steps of the evaluation.")
flags.DEFINE_integer("eval_restarts", 2, "PGD restarts of the evaluation.")
flags.DEFINE_integer("test_n", 1000, "Test images used.")
flags.DEFINE_integer("suite_n", 0,
                     "Part 2: also run evaluate_robustness (APGD-CE, APGD-T, "
                     "Square, masking checks) on this many test images "
                     "(0: off).")
flags.DEFINE_list("suite_eps", ["0.05", "0.1"], "Budgets of that suite.")
flags.DEFINE_bool("skip_ssl", False, "Skip part 1.")
flags.DEFINE_bool("skip_sparsity", False, "Skip part 2.")
define_flags(quick=None)
FLAGS = flags.FLAGS


def vat_mlp(batch_norm=True):
    """The VAT paper's MNIST network: dense 1200-600-300-150-150, each with
    batch norm (optional) and ReLU, then 10 logits."""
    import keras

    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten()]
    for units in (1200, 600, 300, 150, 150):
        layers.append(keras.layers.Dense(units))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.ReLU())
    return keras.Sequential(layers + [keras.layers.Dense(10)])


def compiled(defense=None, decay_steps=None, mlp=None):
    """small_cnn (or `vat_mlp` when `mlp` is "mlp" or "mlp_nobn") with the
    same initial weights, wrapped when defended; Adam 1e-3, decayed to 0
    over `decay_steps` (cosine) when given."""
    import keras

    from keras_adv import models

    keras.utils.set_random_seed(FLAGS.seed)
    base = (models.small_cnn(seed=FLAGS.seed) if mlp is None else
            vat_mlp(batch_norm=mlp == "mlp"))
    model = base if defense is None else models.AdversarialModel(
        base, defense=defense)
    lr = 1e-3 if not decay_steps else keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps)
    return compile_classifier(model, learning_rate=lr), base


def accuracy(model, x, y):
    import numpy as np

    pred = np.argmax(model.predict(x, batch_size=500, verbose=0), axis=-1)
    return float(np.mean(pred == y))


def timed_fit(model, *args, **kwargs):
    start = time.perf_counter()
    model.fit(*args, verbose=0, **kwargs)
    return time.perf_counter() - start


def part_ssl(train, test):
    import tensorflow as tf

    from keras_adv import datasets, defenses

    (x_train, y_train), (x_test, y_test) = train, test
    hidden = datasets.hide_labels(
        y_train, labels_per_class=FLAGS.labels_per_class, seed=FLAGS.seed)
    keep = hidden >= 0
    x_l, y_l, x_u = x_train[keep], y_train[keep], x_train[~keep]
    n_u = FLAGS.ssl_batch - FLAGS.labeled
    steps = len(x_u) // n_u
    share = FLAGS.labeled / FLAGS.ssl_batch
    print(f"\nPart 1 ({FLAGS.ssl_model}): {len(x_l)} labels, "
          f"{len(x_u)} unlabeled, "
          f"{FLAGS.ssl_epochs} epochs x {steps} steps, batch "
          f"{FLAGS.labeled} labeled + {n_u} unlabeled, VAT eps "
          f"{FLAGS.vat_eps} (L2), xi {FLAGS.vat_xi}, Adam 1e-3"
          f"{', cosine-decayed to 0' if FLAGS.lr_decay else ''}")
    rows = []
    decay = steps * FLAGS.ssl_epochs if FLAGS.lr_decay else None
    mlp = None if FLAGS.ssl_model == "cnn" else FLAGS.ssl_model
    if "supervised" in FLAGS.ssl_methods:
        model, base = compiled(decay_steps=decay, mlp=mlp)
        sup = (tf.data.Dataset.from_tensor_slices((x_l, y_l))
               .shuffle(len(x_l), seed=FLAGS.seed).repeat()
               .batch(FLAGS.labeled))
        t = timed_fit(model, sup, epochs=FLAGS.ssl_epochs,
                      steps_per_epoch=steps)
        rows.append(("supervised only (100 labels)",
                     accuracy(base, x_test, y_test), t))
    for key, name, ent in (("vat", "VAT", 0.0),
                           ("vat_entmin", "VAT + entropy min.", 1.0)):
        if key not in FLAGS.ssl_methods:
            continue
        model, base = compiled(defenses.VAT(eps=FLAGS.vat_eps,
                                            xi=FLAGS.vat_xi,
                                            entropy_weight=ent),
                               decay_steps=decay, mlp=mlp)
        ds = datasets.semi_supervised_dataset(
            x_l, y_l, x_u, batch_size=FLAGS.ssl_batch, labeled_share=share,
            seed=FLAGS.seed)
        t = timed_fit(model, ds, epochs=FLAGS.ssl_epochs)
        rows.append((name, accuracy(base, x_test, y_test), t))
    print(f"{'method':32s} {'test acc':>9s} {'train s':>8s}")
    for name, acc, t in rows:
        print(f"{name:32s} {acc:9.3f} {t:8.0f}")
    if rows and rows[0][0].startswith("supervised"):
        for name, acc, _ in rows[1:]:
            print(f"{name} - supervised: {100 * (acc - rows[0][1]):+.1f} "
                  "points")


def part_sparsity(train, test):
    import numpy as np

    from keras_adv import attacks, defenses, evaluation

    (x_train, y_train), (x_test, y_test) = train, test
    x_test, y_test = x_test[: FLAGS.test_n], y_test[: FLAGS.test_n]
    eval_eps = [float(e) for e in FLAGS.eval_eps]

    def pgd_at():
        return defenses.PGDTraining(eps=FLAGS.train_eps, steps=FLAGS.steps,
                                    warmup_epochs=FLAGS.warmup)

    def sparsity(weight):
        return defenses.DataSparsity(noise_std=FLAGS.ds_noise, weight=weight)

    weights = [float(w) for w in FLAGS.ds_weight]
    variants = {"undefended": None}
    for w in weights:
        variants[f"DataSparsity l={w:g}"] = sparsity(w)
    for w in weights:
        variants[f"DS l={w:g} + PGD-AT"] = pgd_at() + sparsity(w)
    variants["PGD-AT"] = pgd_at()
    print(f"\nPart 2: 4000 labels, {FLAGS.epochs} epochs, batch "
          f"{FLAGS.batch}; DataSparsity noise_std {FLAGS.ds_noise}, "
          f"neighbour std {FLAGS.ds_noise / 10}, lambda (l) {weights}; "
          f"PGD-AT L-inf eps {FLAGS.train_eps}, {FLAGS.steps} steps, "
          f"warm-up {FLAGS.warmup} epochs; evaluation PGD-"
          f"{FLAGS.eval_steps} x {FLAGS.eval_restarts} restarts on "
          f"{len(x_test)} test images")
    header = (f"{'model':26s} {'clean':>6s} "
              + " ".join(f"{'pgd ' + str(e):>9s}" for e in eval_eps)
              + f" {'rho med':>8s} {'train s':>8s}")
    lines, suites = [], []
    for name, defense in variants.items():
        model, base = compiled(defense)
        t = timed_fit(model, x_train, y_train, batch_size=FLAGS.batch,
                      epochs=FLAGS.epochs, shuffle=True)
        clean = accuracy(base, x_test, y_test)
        robust = []
        for eps in eval_eps:
            correct = np.zeros(len(x_test), bool)
            for i in range(0, len(x_test), 250):
                xb, yb = x_test[i:i + 250], y_test[i:i + 250]
                x_adv = attacks.pgd(
                    base, xb, yb, eps=eps, steps=FLAGS.eval_steps,
                    step_size=2.5 * eps / FLAGS.eval_steps,
                    restarts=FLAGS.eval_restarts, seed=FLAGS.seed)
                pred = np.argmax(base.predict(x_adv, verbose=0), -1)
                correct[i:i + 250] = pred == yb
            robust.append(float(correct.mean()))
        rho = evaluation.empirical_robustness(base, x_test, y_test)
        if FLAGS.suite_n:
            report = evaluation.evaluate_robustness(
                base, x_test[: FLAGS.suite_n], y_test[: FLAGS.suite_n],
                eps=[float(e) for e in FLAGS.suite_eps], seed=FLAGS.seed,
                progress=False, metrics=False)
            suites.append(f"--- {name}\n{report.table()}")
        line = (f"{name:26s} {clean:6.3f} "
                + " ".join(f"{r:9.3f}" for r in robust)
                + f" {rho.median:8.4f} {t:8.0f}")
        lines.append(line)
        print(line, flush=True)
    print("\n" + header)
    print("\n".join(lines))
    for table in suites:
        print("\n" + table)


def main(argv):
    del argv
    from benchmarks.common import machine
    from keras_adv import datasets

    print(machine())
    train, test = datasets.load("mnist5k")
    if not FLAGS.skip_ssl:
        part_ssl(train, test)
    if not FLAGS.skip_sparsity:
        part_sparsity(train, test)


if __name__ == "__main__":
    app.run(main)
