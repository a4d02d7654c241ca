"""Adversarial training on mnist5k: robustness of each defense, and speed.

Part 1 (speed): one training epoch of every defense, of the same PGD-K
training written by hand as an inline `train_step`, and (when installed) of
ART's `AdversarialTrainerMadryPGD`, all on the same small CNN and data,
timed round-robin (`benchmarks.common.interleaved_timing`) and printed as
ratios.

Part 1b (the training step against an inline one): `AdversarialModel` with
PGD-`--inline_steps` against a `keras.Model` whose hand-written
`train_step` does the same PGD and update, on `--inline_n` images, epochs
interleaved (the order alternating every round), `--inline_epochs` each;
quiet, and with `--contention` also with another process busy on the same
cores (a TensorFlow matmul on one thread). Epoch times on a small machine
are bimodal, so the minimum and the median of each side are printed, and
the speed ratio (inline time / AdversarialModel time; 1.0 is as fast) of
each, per condition.

Part 2 (robustness): for eps 0.2 and eps 0.3 (by default with a linear eps
warm-up over 4 epochs at 0.3 only; `--warmup` sets it per budget),
train the same small CNN from the same initial weights for the same number
of epochs with no defense, FGSM-AT, Fast-AT, Free-AT, PGD-AT, TRADES and
MART on the 4000 training images, then report on the 1000 test images the
clean accuracy, FGSM accuracy and PGD-40 accuracy with 5 restarts, and flag
the masking signature (FGSM accuracy far above PGD accuracy). Where a
warm-up is used, a control row trains PGD-AT without it. Free-AT trains
epochs / replays passes over the data (the paper's protocol: the same number
of minibatch updates as the others).

    python3 dev.py bench adversarial_training
    python3 -m benchmarks.adversarial_training --skip_speed \
        --skip_accuracy --contention
"""

import contextlib
import io
import math

from absl import app, flags

from examples.common import define_flags

flags.DEFINE_integer("epochs", 8, "Training epochs (Free-AT: epochs/replays).")
flags.DEFINE_integer("batch", 64, "Training batch size.")
flags.DEFINE_integer("steps", 10, "PGD/TRADES/MART training steps K.")
flags.DEFINE_integer("replays", 4, "Free-AT replays m.")
flags.DEFINE_list("eps", ["0.2", "0.3"], "Budgets to train and test at.")
flags.DEFINE_list("warmup", ["0", "4"],
                  "Linear eps warm-up epochs for each budget in --eps.")
flags.DEFINE_integer("eval_steps", 40, "PGD steps of the evaluation.")
flags.DEFINE_integer("eval_restarts", 5, "PGD restarts of the evaluation.")
flags.DEFINE_float("eval_step_size", 0.01, "PGD step of the evaluation.")
flags.DEFINE_float("masking_gap", 0.3,
                   "FGSM minus PGD accuracy that flags gradient masking.")
flags.DEFINE_integer("timing_n", 2000, "Training images per timed epoch.")
flags.DEFINE_integer("timing_repeats", 3, "Timed epochs per variant.")
flags.DEFINE_integer("inline_n", 2048, "Training images per epoch, part 1b.")
flags.DEFINE_integer("inline_steps", 7, "PGD steps K of part 1b.")
flags.DEFINE_integer("inline_epochs", 8, "Timed epochs per side, part 1b.")
flags.DEFINE_bool("contention", False,
                  "Part 1b also with another process busy on the cores.")
flags.DEFINE_bool("skip_speed", False, "Skip part 1.")
flags.DEFINE_bool("skip_inline", False, "Skip part 1b.")
flags.DEFINE_bool("skip_accuracy", False, "Skip part 2.")
flags.DEFINE_bool("skip_art", False, "Leave ART out of part 1.")
define_flags(quick=None)
FLAGS = flags.FLAGS

METHODS = ("undefended", "FGSM-AT", "Fast-AT", "Free-AT", "PGD-AT", "TRADES",
           "MART")


def make_defense(method, eps, warmup, steps=None):
    """The defense config of each method at budget `eps` (`steps`: K, by
    default `--steps`)."""
    from keras_adv import defenses

    k = steps or FLAGS.steps
    if method == "undefended":
        return None
    if method == "FGSM-AT":
        return defenses.FGSMTraining(eps=eps, warmup_epochs=warmup)
    if method == "Fast-AT":
        return defenses.FastTraining(eps=eps, warmup_epochs=warmup)
    if method == "Free-AT":
        return defenses.FreeTraining(eps=eps, replays=FLAGS.replays,
                                     warmup_epochs=warmup / FLAGS.replays)
    if method == "PGD-AT":
        return defenses.PGDTraining(eps=eps, steps=k, warmup_epochs=warmup)
    if method == "TRADES":
        return defenses.TRADES(eps=eps, steps=k, beta=6.0,
                               warmup_epochs=warmup)
    if method == "MART":
        return defenses.MART(eps=eps, steps=k, beta=6.0, warmup_epochs=warmup)
    raise ValueError(f"unknown method {method!r}")


def build(method, eps, warmup=0.0, steps=None):
    """A compiled small_cnn (wrapped in AdversarialModel when defended),
    with the same initial weights for every method."""
    import keras

    from benchmarks.common import compile_classifier
    from keras_adv import models

    keras.utils.set_random_seed(FLAGS.seed)
    base = models.small_cnn(seed=FLAGS.seed)
    defense = make_defense(method, eps, warmup, steps)
    model = base if defense is None else models.AdversarialModel(
        base, defense=defense)
    return compile_classifier(model)


class InlinePGDModel:
    """Factory for the hand-written reference: a keras.Model whose inline
    train_step does PGD-K (random start, inference mode, input gradient
    only), trains on the adversarial batch, and updates the same trackers
    and metrics as AdversarialModel (loss, adv_loss, clean accuracy from an
    inference forward pass, adversarial accuracy)."""

    @staticmethod
    def create(eps, steps):
        import keras
        import tensorflow as tf

        from benchmarks.common import compile_classifier
        from keras_adv import models

        alpha = 2.5 * eps / steps
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        class Inline(keras.Model):
            def __init__(self, base):
                super().__init__()
                self.base = base
                self.loss_t = keras.metrics.Mean(name="loss")
                self.adv_loss_t = keras.metrics.Mean(name="adv_loss")
                self.acc = keras.metrics.SparseCategoricalAccuracy(
                    name="accuracy")
                self.adv_acc = keras.metrics.SparseCategoricalAccuracy(
                    name="adv_accuracy")

            def call(self, x, training=None):
                return self.base(x, training=training)

            @property
            def metrics(self):
                return [self.loss_t, self.adv_loss_t, self.acc, self.adv_acc]

            def train_step(self, data):
                x, y = data
                adv = tf.clip_by_value(
                    x + tf.random.uniform(tf.shape(x), -eps, eps), 0.0, 1.0)
                for _ in range(steps):
                    with tf.GradientTape(watch_accessed_variables=False) as t:
                        t.watch(adv)
                        loss = tf.reduce_sum(
                            tf.nn.sparse_softmax_cross_entropy_with_logits(
                                tf.cast(y, tf.int32), self(adv, training=False)))
                    g = t.gradient(loss, adv)
                    adv = adv + alpha * tf.sign(g)
                    adv = tf.clip_by_value(
                        x + tf.clip_by_value(adv - x, -eps, eps), 0.0, 1.0)
                adv = tf.stop_gradient(adv)
                with tf.GradientTape() as tape:
                    y_adv = self(adv, training=True)
                    loss = ce(y, y_adv)
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply(grads, self.trainable_weights)
                self.loss_t.update_state(loss)
                self.adv_loss_t.update_state(loss)
                self.acc.update_state(y, self(x, training=False))
                self.adv_acc.update_state(y, y_adv)
                return {m.name: m.result() for m in self.metrics}

        keras.utils.set_random_seed(FLAGS.seed)
        model = Inline(models.small_cnn(seed=FLAGS.seed))
        return compile_classifier(model, metrics=())


def art_trainer(eps, steps):
    """ART's AdversarialTrainerMadryPGD on the same CNN, or None."""
    try:
        import warnings

        import keras

        warnings.filterwarnings("ignore", message="PyTorch not found")
        from art.defences.trainer import AdversarialTrainerMadryPGD
        from art.estimators.classification import TensorFlowV2Classifier
    except Exception as e:  # not installed, or broken on this Keras
        print(f"ART not available: {type(e).__name__}: {e}")
        return None
    from keras_adv import models

    keras.utils.set_random_seed(FLAGS.seed)
    base = models.small_cnn(seed=FLAGS.seed)
    clf = TensorFlowV2Classifier(
        base, nb_classes=10, input_shape=(28, 28, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True),
        optimizer=keras.optimizers.Adam(1e-3), clip_values=(0.0, 1.0))
    return AdversarialTrainerMadryPGD(
        clf, nb_epochs=1, batch_size=FLAGS.batch, eps=eps,
        eps_step=2.5 * eps / steps, max_iter=steps, num_random_init=1)


def speed(x, y):
    """Part 1: interleaved epoch timings; returns {method: ratio to clean}."""
    from benchmarks.common import interleaved_timing

    eps, k = 0.3, FLAGS.steps
    x, y = x[: FLAGS.timing_n], y[: FLAGS.timing_n]
    kw = dict(batch_size=FLAGS.batch, epochs=1, verbose=0)
    fns = {}
    for method in METHODS:
        model = build(method, eps)
        fns[method] = (lambda m: lambda: m.fit(x, y, **kw))(model)
    inline = InlinePGDModel.create(eps, k)
    fns[f"PGD-{k} inline train_step"] = lambda: inline.fit(x, y, **kw)
    trainer = None if FLAGS.skip_art else art_trainer(eps, k)
    if trainer is not None:
        def art_epoch():
            with contextlib.redirect_stderr(io.StringIO()):
                trainer.fit(x, y, nb_epochs=1, batch_size=FLAGS.batch)
        fns["ART AdversarialTrainerMadryPGD"] = art_epoch

    print(f"Part 1. One epoch on {len(x)} training images (batch "
          f"{FLAGS.batch}, eps {eps}, K={k}), median of "
          f"{FLAGS.timing_repeats} interleaved runs")
    times = interleaved_timing(fns, FLAGS.timing_repeats)
    clean = times["undefended"]
    print(f"{'variant':34s} {'epoch time / clean':>19s}")
    for name, t in times.items():
        label = {"PGD-AT": f"PGD-AT (PGD-{k}, AdversarialModel)",
                 "Free-AT": f"Free-AT (one pass, m={FLAGS.replays})"}.get(
                     name, name)
        print(f"{label:34s} {t / clean:18.2f}x")
    ours = times["PGD-AT"]
    ratio = ours / times[f"PGD-{k} inline train_step"]
    print(f"\nPGD-{k} AdversarialModel / inline train_step: {ratio:.3f}x "
          f"(target <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})")
    if "ART AdversarialTrainerMadryPGD" in times:
        art = times["ART AdversarialTrainerMadryPGD"] / ours
        print(f"ART AdversarialTrainerMadryPGD / AdversarialModel PGD-{k}: "
              f"{art:.2f}x (target >= 4x: {'met' if art >= 4 else 'NOT met'})")
    print()
    return {m: times[m] / clean for m in METHODS}


# A process busy on the same cores: a TensorFlow matmul on one thread, as
# another user's job would be; "ready" once it runs.
_BUSY = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
a = tf.random.uniform((512, 512))
b = a
b = tf.matmul(a, b)
print("ready", flush=True)
while True:
    b = tf.matmul(a, b) / 512.0
"""


def alternating_epochs(fns, rounds):
    """Times `rounds` calls of each callable, interleaved, the order
    reversed every other round (ABBA), after one untimed warm-up call
    each; returns {name: [seconds, ...]}."""
    import time

    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def inline_comparison(x, y):
    """Part 1b: AdversarialModel PGD-K against the inline train_step, epoch
    times interleaved, quiet and (with --contention) beside a busy process;
    returns {condition: (ratio of minima, ratio of medians)}."""
    import os
    import statistics

    from benchmarks.common import busy_core

    eps, k, n = 0.3, FLAGS.inline_steps, FLAGS.inline_n
    x, y = x[:n], y[:n]
    ours = build("PGD-AT", eps, steps=k)
    inline = InlinePGDModel.create(eps, k)
    kw = dict(batch_size=FLAGS.batch, epochs=1, verbose=0)
    fns = {"AdversarialModel": lambda: ours.fit(x, y, **kw),
           "inline train_step": lambda: inline.fit(x, y, **kw)}
    conditions = ["quiet"] + (["one busy process"] if FLAGS.contention
                              else [])
    print(f"Part 1b. PGD-{k} training epoch on {len(x)} images (batch "
          f"{FLAGS.batch}, eps {eps}): AdversarialModel against an inline "
          f"train_step, {FLAGS.inline_epochs} interleaved epochs each")
    ratios = {}
    for condition in conditions:
        busy = (busy_core(_BUSY) if condition != "quiet"
                else contextlib.nullcontext())
        with busy:
            load = os.getloadavg()[0]
            times = alternating_epochs(fns, FLAGS.inline_epochs)
        ours_t, inline_t = times["AdversarialModel"], times["inline train_step"]
        r_min = min(inline_t) / min(ours_t)
        r_med = statistics.median(inline_t) / statistics.median(ours_t)
        ratios[condition] = (r_min, r_med)
        print(f"  {condition} (load average {load:.2f} at the start)")
        for name, t in times.items():
            print(f"    {name:20s} min {min(t):6.2f} s  median "
                  f"{statistics.median(t):6.2f} s  "
                  f"[{' '.join(f'{v:.2f}' for v in t)}]")
        print(f"    speed, inline / AdversarialModel: min {r_min:.3f}x, "
              f"median {r_med:.3f}x (target >= 0.95x: "
              f"{'met' if min(r_min, r_med) >= 0.95 else 'NOT met'})")
    print()
    return ratios


def evaluate(model, x, y, eps):
    """Clean, FGSM and PGD-40x5 accuracy of `model` at `eps`."""
    import numpy as np

    from keras_adv.attacks import fgsm
    from keras_adv.callbacks import robust_accuracy

    net = model.base if getattr(model, "base", None) is not None else model
    clean = float(np.mean(np.argmax(net.predict(x, verbose=0), -1) == y))
    fgsm_acc = robust_accuracy(
        net, (x, y), attack=lambda m, xb, yb: fgsm(m, xb, yb, eps=eps),
        batch_size=500)
    pgd_acc = robust_accuracy(
        net, (x, y), eps=eps, steps=FLAGS.eval_steps,
        step_size=FLAGS.eval_step_size, restarts=FLAGS.eval_restarts,
        batch_size=500, seed=FLAGS.seed)
    return clean, fgsm_acc, pgd_acc


def accuracy(data, ratios):
    """Part 2: train every method at each eps and evaluate it."""
    (x_train, y_train), (x_test, y_test) = data
    e, m = FLAGS.epochs, FLAGS.replays
    print(f"Part 2. Train on {len(x_train)}, test on {len(x_test)}: {e} "
          f"epochs, batch {FLAGS.batch}, Adam 1e-3, same initial weights. "
          f"PGD-AT/TRADES/MART: K={FLAGS.steps} steps of 2.5*eps/K; Fast-AT: "
          f"step 1.25*eps; Free-AT: m={m}, {math.ceil(e / m)} passes; "
          f"TRADES/MART beta 6. Evaluation: FGSM and PGD-{FLAGS.eval_steps} "
          f"(step {FLAGS.eval_step_size}, {FLAGS.eval_restarts} restarts).")
    if len(FLAGS.warmup) != len(FLAGS.eps):
        raise ValueError(
            "--warmup needs one value per --eps. Received: "
            f"--eps={','.join(FLAGS.eps)} --warmup={','.join(FLAGS.warmup)}")
    undefended = None
    for eps_s, warmup_s in zip(FLAGS.eps, FLAGS.warmup):
        eps, warmup = float(eps_s), float(warmup_s)
        head = f"\neps = {eps}" + (f" (linear warm-up over {warmup:g} epochs)"
                                   if warmup else " (no warm-up)")
        print(head)
        print(f"{'method':18s} {'clean':>7s} {'FGSM':>7s} "
              f"{'PGD-' + str(FLAGS.eval_steps) + 'x' + str(FLAGS.eval_restarts):>9s}"
              f" {'FGSM-PGD':>9s} {'epoch/clean':>12s}  masking")
        rows = list(METHODS)
        if warmup:
            rows.append("PGD-AT, no warm-up")
        for method in rows:
            if method == "undefended" and undefended is not None:
                model = undefended
            else:
                if method == "PGD-AT, no warm-up":
                    model = build("PGD-AT", eps, 0.0)
                else:
                    model = build(method, eps, warmup)
                epochs = math.ceil(e / m) if method == "Free-AT" else e
                model.fit(x_train, y_train, batch_size=FLAGS.batch,
                          epochs=epochs, verbose=0)
                if method == "undefended":
                    undefended = model
            clean, f_acc, p_acc = evaluate(model, x_test, y_test, eps)
            gap = f_acc - p_acc
            masked = "YES" if gap >= FLAGS.masking_gap else "no"
            ratio = ratios.get(method)
            ratio_s = f"{ratio:11.2f}x" if ratio else f"{'-':>12s}"
            print(f"{method:18s} {clean:7.3f} {f_acc:7.3f} {p_acc:9.3f} "
                  f"{gap:+9.3f} {ratio_s}  {masked}", flush=True)


def main(argv):
    del argv
    import logging

    import tensorflow as tf

    from benchmarks.common import machine
    from keras_adv import datasets

    # Keep the report readable: ART logs every attack call at INFO, and
    # TensorFlow warns about the retracing of its per-call tf.functions.
    logging.getLogger("art").setLevel(logging.WARNING)
    tf.get_logger().setLevel(logging.ERROR)
    print(f"Machine: {machine()}\n")
    data = datasets.load("mnist5k")
    ratios = {} if FLAGS.skip_speed else speed(*data[0])
    if not FLAGS.skip_inline:
        inline_comparison(*data[0])
    if not FLAGS.skip_accuracy:
        accuracy(data, ratios)


if __name__ == "__main__":
    app.run(main)
