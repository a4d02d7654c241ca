"""PGD-20 throughput on the mnist5k CNN, side by side in one process.

Compares keras_adv.attacks.pgd with the same loop written inline as a plain
tf.function (Python-unrolled), the same loop as a tf.while_loop and under XLA
(to justify the implementation choice), and, when installed, CleverHans tf2
PGD (eager and inside tf.function) and ART's TensorFlowV2 PGD. All use the
same model, eps, step size, steps, random start and batch. Timings are
interleaved round-robin and the median is reported as a ratio.

Then the peak bytes held by TensorFlow's CPU allocator during one call, as
steps grow from 10 to 100 (`tf.config.experimental.get_memory_info`).

    python3 dev.py bench attack_throughput
"""

from absl import app, flags

flags.DEFINE_integer("batch", 256, "Examples per attack call.")
flags.DEFINE_integer("steps", 20, "PGD steps.")
flags.DEFINE_integer("repeats", 5, "Timed repetitions per variant.")
flags.DEFINE_float("eps", 0.3, "L-inf budget.")
flags.DEFINE_float("step_size", 0.01, "PGD step size.")
flags.DEFINE_bool("skip_memory", False, "Skip the memory scan.")
FLAGS = flags.FLAGS


def inline_pgd(model, jit_compile=False, while_loop=False):
    """The PGD loop written by hand as one tf.function."""
    import tensorflow as tf

    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    eps, alpha, steps = FLAGS.eps, FLAGS.step_size, FLAGS.steps

    def step(x, y, adv):
        with tf.GradientTape() as tape:
            tape.watch(adv)
            loss = loss_fn(y, model(adv, training=False))
        grad = tape.gradient(loss, adv)
        adv = adv + alpha * tf.sign(grad)
        return tf.clip_by_value(x + tf.clip_by_value(adv - x, -eps, eps), 0, 1)

    @tf.function(jit_compile=jit_compile)
    def attack(x, y):
        adv = tf.clip_by_value(
            x + tf.random.uniform(tf.shape(x), -eps, eps), 0.0, 1.0)
        if while_loop:
            _, adv = tf.while_loop(lambda i, a: i < steps,
                                   lambda i, a: (i + 1, step(x, y, a)),
                                   (tf.constant(0), adv))
            return adv
        for _ in range(steps):
            adv = step(x, y, adv)
        return adv

    return attack


def variants(model, x, y):
    import numpy as np
    import tensorflow as tf

    import keras_adv

    xt, yt = tf.constant(x), tf.constant(y)
    kw = dict(eps=FLAGS.eps, steps=FLAGS.steps, step_size=FLAGS.step_size)
    inline = inline_pgd(model)
    inline_while = inline_pgd(model, while_loop=True)
    inline_xla = inline_pgd(model, jit_compile=True)
    out = {
        "keras_adv.pgd (eager call, numpy in)":
            lambda: keras_adv.attacks.pgd(model, x, y, **kw).numpy(),
        "inline tf.function (unrolled)": lambda: inline(xt, yt).numpy(),
        "inline tf.function (tf.while_loop)":
            lambda: inline_while(xt, yt).numpy(),
        "inline tf.function (XLA jit_compile)":
            lambda: inline_xla(xt, yt).numpy(),
    }
    try:
        from cleverhans.tf2.attacks.projected_gradient_descent import (
            projected_gradient_descent as ch_pgd,
        )
    except Exception as e:  # not installed, or broken on this Keras
        print(f"CleverHans not available: {type(e).__name__}: {e}")
    else:
        def ch(xb, yb):
            return ch_pgd(model, xb, FLAGS.eps, FLAGS.step_size, FLAGS.steps,
                          np.inf, clip_min=0.0, clip_max=1.0, y=yb,
                          rand_init=True, rand_minmax=FLAGS.eps,
                          sanity_checks=False)

        ch_graph = tf.function(ch)
        out["CleverHans tf2 PGD (eager)"] = lambda: ch(xt, yt).numpy()
        out["CleverHans tf2 PGD (tf.function)"] = lambda: ch_graph(xt, yt).numpy()
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    except Exception as e:
        print(f"ART not available: {type(e).__name__}: {e}")
    else:
        clf = TensorFlowV2Classifier(
            model, nb_classes=10, input_shape=x.shape[1:],
            loss_object=tf.keras.losses.SparseCategoricalCrossentropy(
                from_logits=True),
            clip_values=(0.0, 1.0))
        art_pgd = ProjectedGradientDescent(
            clf, norm=np.inf, eps=FLAGS.eps, eps_step=FLAGS.step_size,
            max_iter=FLAGS.steps, num_random_init=1, batch_size=len(x),
            verbose=False)
        out["ART TensorFlowV2 PGD"] = lambda: art_pgd.generate(x, y=y)
    return out


def peak_memory_mib(model, x, steps):
    """Peak MiB held by TensorFlow's CPU allocator during one PGD call
    (after a warm-up call, so tracing is not counted)."""
    import tensorflow as tf

    import keras_adv

    def run():
        keras_adv.attacks.pgd(model, x, eps=0.3, steps=steps, seed=0).numpy()

    run()
    tf.config.experimental.reset_memory_stats("CPU:0")
    base = tf.config.experimental.get_memory_info("CPU:0")["current"]
    run()
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return (peak - base) / 2**20


def main(argv):
    del argv
    from benchmarks.common import interleaved_timing, machine, trained_cnn

    model, _, (x_test, y_test) = trained_cnn()
    x, y = x_test[: FLAGS.batch], y_test[: FLAGS.batch]
    print(f"Machine: {machine()}")
    print(f"PGD-{FLAGS.steps} L-inf eps={FLAGS.eps} step={FLAGS.step_size}, "
          f"batch {FLAGS.batch}, median of {FLAGS.repeats} interleaved runs\n")
    times = interleaved_timing(variants(model, x, y), FLAGS.repeats)
    ref = times["inline tf.function (unrolled)"]
    ours = times["keras_adv.pgd (eager call, numpy in)"]
    print(f"{'variant':42s} {'ex/s':>9s} {'vs inline':>10s} {'keras_adv vs it':>16s}")
    for name, t in times.items():
        print(f"{name:42s} {len(x) / t:9.1f} {ref / t:9.2f}x {t / ours:15.2f}x")
    if FLAGS.skip_memory:
        return
    print("\nPeak TensorFlow CPU allocator memory during one PGD call "
          f"(batch {FLAGS.batch}):")
    for steps in (10, 25, 50, 100):
        print(f"  steps={steps:4d}: {peak_memory_mib(model, x, steps):7.1f} MiB")


if __name__ == "__main__":
    app.run(main)
