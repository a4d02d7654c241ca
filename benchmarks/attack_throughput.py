"""PGD-20 throughput on the mnist5k CNN, side by side in one process.

Compares keras_adv.attacks.pgd with the same loop written inline as a plain
tf.function (Python-unrolled), the same loop as a tf.while_loop and under XLA
(to justify the implementation choice), and, when installed, CleverHans tf2
PGD (eager and inside tf.function) and ART's TensorFlowV2 PGD. All use the
same model, eps, step size, steps, random start and batch. Timings are
interleaved round-robin and the median is reported as a ratio.

Then the peak bytes held by TensorFlow's CPU allocator during one call, as
steps grow from 10 to 100 (`tf.config.experimental.get_memory_info`).

With `--contention`, PGD-{steps} again under two conditions alternating in
one run: "quiet" (only as quiet as the machine is: other work on it is not
stopped) and "busy" (a subprocess spinning a TensorFlow matmul loop on one
thread, so one core is taken), each round reporting the median of interleaved
runs of keras_adv.pgd, the inline loops and CleverHans' compiled PGD as
ratios, and the first call of keras_adv.pgd against its steady state.

Then tracing cost: first call against steady-state call for PGD-100 with 5
restarts and APGD-100 on 200 mnist5k images (and, with `--suite`, the
standard `evaluate_robustness` suite), and the steady-state throughput of
`keras_adv.attacks.pgd` (one `tf.while_loop`) against the Python-unrolled
loop it replaced, kept below as `unrolled_pgd_loop` (the baseline only).

With `--first_calls`, only the first call of PGD-{steps} on --batch images
against its steady state, each variant (keras_adv.pgd in two halves and in
one loop, the inline `tf.while_loop`, CleverHans compiled, one compiled
gradient step, keras_adv.pgd run eagerly) as the first attack of fresh
processes: the fixed cost any compiled PGD pays on its first call.

    python3 dev.py bench attack_throughput
    python3 -m benchmarks.attack_throughput --first_calls
    python3 -m benchmarks.attack_throughput --contention --skip_memory \
        --skip_variants --trace_n 0
"""

import contextlib
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_integer("batch", 256, "Examples per attack call.")
flags.DEFINE_integer("steps", 20, "PGD steps.")
flags.DEFINE_integer("repeats", 5, "Timed repetitions per variant.")
flags.DEFINE_float("eps", 0.3, "L-inf budget.")
flags.DEFINE_float("step_size", 0.01, "PGD step size.")
flags.DEFINE_bool("skip_memory", False, "Skip the memory scan.")
flags.DEFINE_bool("skip_variants", False, "Skip the PGD-20 variant table.")
flags.DEFINE_integer("trace_n", 200, "Images for the first-call measurements.")
flags.DEFINE_integer("trace_repeats", 3, "Steady-state calls per attack.")
flags.DEFINE_bool("suite", False, "Also time the standard evaluation suite.")
flags.DEFINE_bool("contention", False,
                  "Also time PGD quiet and beside a busy process, alternating.")
flags.DEFINE_integer("rounds", 2, "Quiet/busy round pairs with --contention.")
flags.DEFINE_bool("first_calls", False,
                  "Only the first call against the steady state of PGD-{steps} "
                  "on --batch images, each variant in fresh processes.")
flags.DEFINE_integer("first_call_runs", 3, "Fresh processes per variant.")
flags.DEFINE_string("first_call_of", None, "Internal: one variant, this process.")
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


def cleverhans_pgd(model):
    """CleverHans tf2 PGD with this benchmark's settings, as a function of
    `(x, y)`; raises ImportError when CleverHans is not installed."""
    import numpy as np
    from cleverhans.tf2.attacks.projected_gradient_descent import (
        projected_gradient_descent as ch_pgd,
    )

    def ch(xb, yb):
        return ch_pgd(model, xb, FLAGS.eps, FLAGS.step_size, FLAGS.steps,
                      np.inf, clip_min=0.0, clip_max=1.0, y=yb,
                      rand_init=True, rand_minmax=FLAGS.eps,
                      sanity_checks=False)

    return ch


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
        ch = cleverhans_pgd(model)
    except Exception as e:  # not installed, or broken on this Keras
        print(f"CleverHans not available: {type(e).__name__}: {e}")
    else:
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


# A process that keeps one core busy: TensorFlow matmuls on one thread.
_SPIN = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
a = tf.random.normal((256, 256))
spin = tf.function(lambda a: tf.tanh(tf.matmul(a, a) * 0.01))
print("ready", flush=True)
while True:
    a = spin(a)
"""


def contention(model, x, y):
    """PGD throughput quiet and beside a busy process, alternating rounds;
    each round the median of interleaved runs, as ratios to CleverHans'
    compiled PGD (or the inline unrolled loop without CleverHans)."""
    import os

    import keras_adv
    from benchmarks.common import busy_core, interleaved_timing

    kw = dict(eps=FLAGS.eps, steps=FLAGS.steps, step_size=FLAGS.step_size)
    first, steady = _first_and_steady(
        lambda: keras_adv.attacks.pgd(model, x, y, **kw).numpy(),
        FLAGS.trace_repeats)
    print(f"\nkeras_adv.pgd PGD-{FLAGS.steps} first call {first:.2f} s, "
          f"steady {steady:.2f} s: first/steady {first / steady:.2f}")
    short = {"keras_adv.pgd (eager call, numpy in)": "keras_adv",
             "inline tf.function (unrolled)": "inline unrolled",
             "inline tf.function (tf.while_loop)": "inline while_loop",
             "CleverHans tf2 PGD (tf.function)": "CleverHans compiled"}
    fns = {short[k]: v for k, v in variants(model, x, y).items()
           if k in short}
    ref = ("CleverHans compiled" if "CleverHans compiled" in fns
           else "inline unrolled")
    # The peers' first calls (tracing included) against their steady state:
    # keras_adv's first call above came first in the process, theirs after.
    cells = []
    for name, fn in fns.items():
        if name != "keras_adv":
            p_first, p_steady = _first_and_steady(fn, FLAGS.trace_repeats)
            cells.append(f"{name} {p_first:.2f} s / {p_steady:.2f} s = "
                         f"{p_first / p_steady:.2f}")
    print("first/steady of the others: " + ";  ".join(cells))
    print(f"PGD-{FLAGS.steps}, batch {len(x)}, quiet and busy rounds "
          f"alternating, median of {FLAGS.repeats} interleaved runs; "
          f"throughput relative to {ref}:")
    for r in range(FLAGS.rounds):
        for cond in ("quiet", "busy"):
            with (busy_core(_SPIN, settle=1.0) if cond == "busy"
                  else contextlib.nullcontext()):
                times = interleaved_timing(fns, FLAGS.repeats)
            cells = "  ".join(f"{name} {times[ref] / t:.2f}x"
                              for name, t in times.items() if name != ref)
            print(f"round {r + 1} {cond:5s} (load {os.getloadavg()[0]:4.1f})"
                  f"  {cells}")
    # CPU seconds per call (all threads): the work done, which the load on
    # the machine hardly changes, unlike the wall time.
    cpu = {name: _cpu_seconds(fn) for name, fn in fns.items()}
    print("CPU s per call (median of 3): " + "  ".join(
        f"{name} {t:.2f}" for name, t in cpu.items()))


def _cpu_seconds(fn, repeats=3):
    import statistics

    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


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


def unrolled_pgd_loop(model, x, labels, eps, alpha, seed, *, steps, restarts,
                      norm="linf", clip=(0.0, 1.0)):
    """The Python-unrolled PGD loop that `keras_adv.attacks.pgd` used before
    the `tf.while_loop` primitive (CE loss, random start, worst case over
    restarts): the baseline of the old-against-new comparison."""
    import tensorflow as tf

    from keras_adv import ops
    from keras_adv.attacks.losses import attack_objective, is_successful

    x0 = tf.cast(x, tf.float32)

    def grad_at(adv):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(adv)
            logits = ops.model_logits(model, adv)
            total = tf.reduce_sum(attack_objective(
                logits, labels, loss="ce", targeted=False, source=labels))
        return tape.gradient(total, adv)

    best = best_obj = best_hit = None
    for r in range(restarts):
        start = ops.random_start(
            tf.shape(x0), eps, norm, seed + tf.constant([0, 1], tf.int64) * r)
        adv = ops.clip_box(x0 + start, clip)
        for _ in range(steps):
            adv = adv + alpha * ops.steepest_step(grad_at(adv), norm)
            adv = ops.clip_box(x0 + ops.project(adv - x0, eps, norm), clip)
        if restarts == 1:
            return adv
        logits = ops.model_logits(model, adv)
        obj = attack_objective(logits, labels, loss="ce", targeted=False,
                               source=labels)
        hit = is_successful(logits, labels, False)
        if best is None:
            best, best_obj, best_hit = adv, obj, hit
            continue
        better = (hit & ~best_hit) | ((hit == best_hit) & (obj > best_obj))
        best_obj = tf.where(better, obj, best_obj)
        best_hit = better | best_hit
        best = tf.where(tf.reshape(better, [-1, 1, 1, 1]), adv, best)
    return best


def _first_and_steady(fn, repeats):
    """Seconds of the first call (tracing included) and the median of
    `repeats` later calls."""
    import statistics

    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


FIRST_CALL_VARIANTS = {
    "keras_adv": "keras_adv.attacks.pgd (two halves)",
    "keras_adv_one_loop": "keras_adv.attacks.pgd, one loop",
    "inline_while": "inline tf.function (tf.while_loop)",
    "cleverhans": "CleverHans tf2 PGD (tf.function)",
    "one_step": "one compiled gradient step (no loop)",
    "eager": "keras_adv.attacks.pgd run eagerly",
}


def first_call_of(name, model, x, y):
    """First and steady seconds of one variant, the first attack in this
    (fresh) process; printed as one JSON line for `first_calls`."""
    import json

    import tensorflow as tf

    import keras_adv
    from keras_adv.attacks import _pgd

    kw = dict(eps=FLAGS.eps, steps=FLAGS.steps, step_size=FLAGS.step_size)
    xt, yt = tf.constant(x), tf.constant(y)
    if name in ("keras_adv", "keras_adv_one_loop", "eager"):
        if name == "keras_adv_one_loop":
            _pgd.HALVES_FROM = len(x) + 1
        tf.config.run_functions_eagerly(name == "eager")
        fn = lambda: keras_adv.attacks.pgd(model, x, y, **kw).numpy()  # noqa: E731
    elif name == "one_step":  # the least any compiled PGD traces
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function(autograph=False)
        def step(xb, yb):
            with tf.GradientTape() as tape:
                tape.watch(xb)
                loss = loss_fn(yb, model(xb, training=False))
            return xb + FLAGS.step_size * tf.sign(tape.gradient(loss, xb))

        fn = lambda: step(xt, yt).numpy()  # noqa: E731
    else:
        attack = (inline_pgd(model, while_loop=True) if name == "inline_while"
                  else tf.function(cleverhans_pgd(model)))
        fn = lambda: attack(xt, yt).numpy()  # noqa: E731
    first, steady = _first_and_steady(fn, 5)
    print("FIRST_CALL " + json.dumps(
        {"name": name, "first": first, "steady": steady}), flush=True)


def first_calls():
    """Each variant's first call against its steady state, each in
    `--first_call_runs` fresh processes (the first attack in the process:
    tracing, instantiation and oneDNN's first kernels all counted); the
    median per variant, and the least fixed cost any compiled PGD pays."""
    import json
    import statistics

    rows = {}
    for _ in range(FLAGS.first_call_runs):
        for name in FIRST_CALL_VARIANTS:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.attack_throughput",
                 f"--first_call_of={name}", f"--batch={FLAGS.batch}",
                 f"--steps={FLAGS.steps}", f"--eps={FLAGS.eps}",
                 f"--step_size={FLAGS.step_size}"],
                capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines()
                     if ln.startswith("FIRST_CALL ")]
            if not lines:
                tail = out.stderr.strip().splitlines()[-1:]
                print(f"{name}: not measured ({tail})")
                continue
            rows.setdefault(name, []).append(json.loads(lines[0][11:]))
    print(f"\nFirst call against steady state, PGD-{FLAGS.steps} on "
          f"{FLAGS.batch} images, each the first attack in a fresh process; "
          f"median of {FLAGS.first_call_runs} processes:")
    print(f"{'variant':40s} {'first s':>8s} {'steady s':>9s} {'ratio':>6s} "
          f"{'fixed s':>8s}")
    med = {}
    for name, runs in rows.items():
        first = statistics.median(r["first"] for r in runs)
        steady = statistics.median(r["steady"] for r in runs)
        med[name] = (first, steady)
        print(f"{FIRST_CALL_VARIANTS[name]:40s} {first:8.3f} {steady:9.3f} "
              f"{first / steady:6.2f} {first - steady:8.3f}")
    if "keras_adv" in med and "one_step" in med:
        budget = 0.3 * med["keras_adv"][1]
        floor = med["one_step"][0] - med["one_step"][1]
        print(f"A first call within 1.3x leaves {budget:.3f} s over the steady "
              f"state; one compiled gradient step alone costs {floor:.3f} s "
              f"more on its first call ({floor / med['keras_adv'][1]:.2f}x "
              "of the PGD steady state).")
    if "keras_adv" in med and "eager" in med:
        slower = med["eager"][1] / med["keras_adv"][1]
        print(f"Eager (no tracing): steady {slower:.2f}x the compiled "
              "steady state.")


def tracing_cost(model, x, y):
    """First-call against steady-state time, and old against new PGD."""
    import statistics

    import tensorflow as tf

    import keras_adv

    n, reps = len(x), FLAGS.trace_repeats
    model(x[:2])  # build the model and warm TensorFlow's kernels up
    rows = []
    pgd_kw = dict(eps=0.3, steps=100, restarts=5, step_size=0.01, seed=0)
    rows.append(("PGD-100x5 (keras_adv.attacks.pgd)", _first_and_steady(
        lambda: keras_adv.attacks.pgd(model, x, y, **pgd_kw).numpy(), reps)))
    old = tf.function(
        lambda xb, yb, e, a, s: unrolled_pgd_loop(model, xb, yb, e, a, s,
                                                  steps=100, restarts=5),
        autograph=False)
    args = (tf.constant(x), tf.constant(y, tf.int32), tf.constant(0.3),
            tf.constant(0.01), tf.constant([0, 0], tf.int64))
    rows.append(("PGD-100x5 (old unrolled loop)", _first_and_steady(
        lambda: old(*args).numpy(), reps)))
    rows.append(("APGD-100 (keras_adv.attacks.apgd)", _first_and_steady(
        lambda: keras_adv.attacks.apgd(model, x, y, eps=0.3, steps=100,
                                       seed=0).numpy(), reps)))
    if FLAGS.suite:
        rows.append(("standard suite (evaluate_robustness)", _first_and_steady(
            lambda: keras_adv.evaluate_robustness(model, x, y, eps=[0.3],
                                                  seed=0), 1)))
    print(f"\nFirst call against steady state, {n} mnist5k test images, "
          f"L-inf eps 0.3 (steady: median of {reps} calls):")
    print(f"{'attack':40s} {'first s':>8s} {'steady s':>9s} {'ratio':>6s}")
    for name, (first, steady) in rows:
        print(f"{name:40s} {first:8.2f} {steady:9.2f} {first / steady:6.2f}")
    # Old against new steady state, interleaved.
    new_t, old_t = [], []
    for _ in range(reps):
        start = time.perf_counter()
        keras_adv.attacks.pgd(model, x, y, **pgd_kw).numpy()
        new_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        old(*args).numpy()
        old_t.append(time.perf_counter() - start)
    new_s, old_s = statistics.median(new_t), statistics.median(old_t)
    print(f"\nPGD-100x5 steady state, interleaved median of {reps}: "
          f"while_loop {n / new_s:.1f} ex/s, unrolled {n / old_s:.1f} ex/s, "
          f"throughput ratio new/old {old_s / new_s:.2f}x")


def main(argv):
    del argv
    from benchmarks.common import interleaved_timing, machine, trained_cnn

    if FLAGS.first_calls:
        print(f"Machine: {machine()}")
        first_calls()
        return
    model, _, (x_test, y_test) = trained_cnn()
    x, y = x_test[: FLAGS.batch], y_test[: FLAGS.batch]
    if FLAGS.first_call_of:
        first_call_of(FLAGS.first_call_of, model, x, y)
        return
    print(f"Machine: {machine()}")
    if FLAGS.contention:
        contention(model, x, y)
    if FLAGS.trace_n:
        tracing_cost(model, x_test[: FLAGS.trace_n], y_test[: FLAGS.trace_n])
    if FLAGS.skip_variants:
        return
    print(f"\nPGD-{FLAGS.steps} L-inf eps={FLAGS.eps} step={FLAGS.step_size}, "
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
