"""Randomized smoothing: certification throughput and certified accuracy.

1. Throughput (noisy forward passes per second) of
   `keras_adv.certification.certify`, side by side in one process with
   - the inline limit: a bare `tf.function` that only adds Gaussian noise
     to a full batch and runs the model on it (argmax out), called once
     per batch of the same size;
   - the model's forward pass alone on the same number of batches (no
     noise, no counting), one call per batch: what the model itself costs;
   - ART's `TensorFlowV2RandomizedSmoothing.certify` (NumPy noise, one
     example at a time), same model, n0, n and batch size.
   The model is `small_cnn` (its weights do not change the cost). Timings
   are interleaved round-robin; medians are compared as ratios.
2. Certified accuracy at radius 0, 0.25, 0.5, 0.75, 1.0 of `small_cnn`
   trained on mnist5k with `GaussianAugmentation` and `SmoothAdv` at sigma
   0.25 and 0.5: `--grid_examples` test images at n = `--grid_n`, and
   `--big_examples` images at n = `--big_n`.

    python3 dev.py bench certification [--part throughput|grid|all]
"""

import time

from absl import app, flags

from examples.common import compile_classifier

flags.DEFINE_enum("part", "all", ["throughput", "grid", "all"],
                  "What to run.")
flags.DEFINE_integer("batch", 1000, "Noisy inputs per forward pass.")
flags.DEFINE_integer("n0", 100, "Selection samples per example.")
flags.DEFINE_float("alpha", 0.001, "Failure probability per certificate.")
flags.DEFINE_integer("throughput_examples", 10, "Examples per timed call.")
flags.DEFINE_integer("throughput_n", 10_000, "n in the timed calls.")
flags.DEFINE_integer("repeats", 3, "Timed repetitions per variant.")
flags.DEFINE_list("sigmas", ["0.25", "0.5"], "Noise levels of the grid.")
flags.DEFINE_list("defenses", ["gaussian", "smoothadv"], "Training methods.")
flags.DEFINE_integer("epochs", 5, "Training epochs per grid model.")
flags.DEFINE_integer("grid_examples", 500, "Test images at n = grid_n.")
flags.DEFINE_integer("grid_n", 10_000, "Samples per image (first setting).")
flags.DEFINE_integer("big_examples", 100, "Test images at n = big_n.")
flags.DEFINE_integer("big_n", 100_000, "Samples per image (second setting).")
FLAGS = flags.FLAGS

RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


def inline_limit(model, sigma):
    """The bare loop: noise plus one forward pass per full batch."""
    import tensorflow as tf

    @tf.function
    def noisy_argmax(x_batch, seed):
        noise = tf.random.stateless_normal(tf.shape(x_batch), seed)
        return tf.argmax(model(x_batch + sigma * noise, training=False), -1)

    def run(x, passes):
        batch = tf.repeat(tf.constant(x[:1]), FLAGS.batch, axis=0)
        for i in range(-(-passes // FLAGS.batch)):
            noisy_argmax(batch, tf.constant([i, 0], tf.int64)).numpy()

    return run


def forward_only(model):
    """The model alone on a fixed batch, one call per batch (no noise, no
    counting)."""
    import tensorflow as tf

    @tf.function
    def argmax(x_batch):
        return tf.argmax(model(x_batch, training=False), -1)

    def run(x, passes):
        batch = tf.repeat(tf.constant(x[:1]), FLAGS.batch, axis=0)
        for _ in range(-(-passes // FLAGS.batch)):
            argmax(batch).numpy()

    return run


def art_certifier(model, sigma, x_shape):
    """ART's randomized-smoothing wrapper of the same model, or None."""
    try:
        from art.estimators.certification.randomized_smoothing import (
            TensorFlowV2RandomizedSmoothing,
        )
    except Exception as e:  # not installed, or broken on this Keras
        print(f"ART not available: {type(e).__name__}: {e}")
        return None
    from scipy import stats

    art = TensorFlowV2RandomizedSmoothing(
        model, nb_classes=10, input_shape=x_shape, sample_size=FLAGS.n0,
        scale=sigma, alpha=FLAGS.alpha, clip_values=(0.0, 1.0))

    def lower_bound(k, n):
        # ART computes this with statsmodels' proportion_confint(k, n,
        # 2 alpha, "beta")[0], the same number; statsmodels is not
        # installed here. One scalar per example: no effect on the timing.
        return stats.beta.ppf(FLAGS.alpha, k, n - k + 1) if k else 0.0

    art._lower_confidence_bound = lower_bound
    return art


def throughput(x):
    import numpy as np

    from benchmarks.common import interleaved_timing
    from keras_adv import certification, models

    sigma, n, n0 = 0.25, FLAGS.throughput_n, FLAGS.n0
    model = models.small_cnn(seed=0)
    x = x[: FLAGS.throughput_examples]
    passes = len(x) * (n0 + n)
    inline = inline_limit(model, sigma)
    forward = forward_only(model)
    fns = {
        "keras_adv certify": lambda: certification.certify(
            model, x, sigma=sigma, n0=n0, n=n, alpha=FLAGS.alpha,
            batch_size=FLAGS.batch, seed=0),
        "inline tf.function limit": lambda: inline(x, passes),
        "model forward only (no noise)": lambda: forward(x, passes),
    }
    art = art_certifier(model, sigma, x.shape[1:])
    if art is not None:
        fns["ART TensorFlowV2RandomizedSmoothing"] = lambda: art.certify(
            x, n=n, batch_size=FLAGS.batch)
    times = interleaved_timing(fns, FLAGS.repeats)
    ours = times["keras_adv certify"]
    print(f"Throughput: {len(x)} examples x (n0={n0} + n={n}) = {passes:,} "
          f"noisy passes per call, batch {FLAGS.batch}, median of "
          f"{FLAGS.repeats} interleaved runs")
    print(f"{'variant':38s} {'passes/s':>10s} {'keras_adv vs it':>16s}")
    for name, t in times.items():
        print(f"{name:38s} {passes / t:10.0f} {t / ours:15.2f}x")
    if art is not None:  # same answers, up to the noise
        ours_cert = certification.certify(model, x, sigma=sigma, n0=n0, n=n,
                                          seed=0)
        art_pred, _ = art.certify(x, n=n, batch_size=FLAGS.batch)
        agree = float(np.mean(art_pred == ours_cert.prediction))
        print(f"prediction agreement with ART: {agree:.2f}")


def train(defense_name, sigma, data):
    import keras

    from keras_adv import defenses, models

    (x_train, y_train), _ = data
    keras.utils.set_random_seed(0)
    if defense_name == "gaussian":
        defense = defenses.GaussianAugmentation(sigma=sigma)
    else:
        defense = defenses.SmoothAdv(sigma=sigma, eps=0.5, steps=2, samples=2,
                                     warmup_epochs=2)
    base = models.small_cnn(seed=0)
    model = models.AdversarialModel(base, defense=defense)
    compile_classifier(model, metrics=())
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64, verbose=0)
    return base, defense, time.perf_counter() - start


def grid(data):
    from keras_adv import certification

    _, (x_test, y_test) = data
    settings = [(FLAGS.grid_examples, FLAGS.grid_n)]
    if FLAGS.big_examples > 0:
        settings.append((FLAGS.big_examples, FLAGS.big_n))
    head = " ".join(f"r={r:<5g}" for r in RADII)
    print(f"\nCertified accuracy (alpha={FLAGS.alpha}, n0={FLAGS.n0}, "
          f"{FLAGS.epochs} training epochs)")
    print(f"{'model':52s} {'images':>6s} {'n':>7s}  {head}  {'s':>6s}")
    for name in FLAGS.defenses:
        for sigma in (float(s) for s in FLAGS.sigmas):
            model, defense, seconds = train(name, sigma, data)
            label = f"{defense!r}"[:52]
            for count, n in settings:
                report = certification.evaluate_certified(
                    model, x_test[:count], y_test[:count], sigma=sigma,
                    radii=RADII, n0=FLAGS.n0, n=n, alpha=FLAGS.alpha,
                    batch_size=FLAGS.batch, seed=0)
                accs = " ".join(f"{a:7.3f}"
                                for a in report.certified_accuracy_curve)
                print(f"{label:52s} {count:6d} {n:7d}  {accs}  "
                      f"{report.seconds:6.0f}", flush=True)
            print(f"  (trained in {seconds:.0f} s)", flush=True)


def main(argv):
    del argv
    from benchmarks.common import machine
    from keras_adv import datasets

    print(f"Machine: {machine()}")
    data = datasets.load("mnist5k")
    if FLAGS.part in ("throughput", "all"):
        throughput(data[1][0])
    if FLAGS.part in ("grid", "all"):
        grid(data)


if __name__ == "__main__":
    app.run(main)
