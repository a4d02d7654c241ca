"""Evaluation at scale: memory of a streamed evaluation, its throughput, and
the cost of checkpointing.

Synthetic CIFAR-sized data (32x32x3 float32, uniform in [0, 1], each batch
drawn from a stateless generator seeded by its index, so deterministic and
never held as one array by the streamed run), a small CNN (untrained, labels
= its predictions so that every example is attacked) and FGSM.

1. Memory. Two fresh processes evaluate --n examples, one streamed from
   `tf.data` (batches generated on the fly), one as a single in-memory
   array built from the same batches. Each reports the growth of its peak
   resident memory (ru_maxrss) over its own baseline after imports and a
   warm-up evaluation. Target: streamed growth under a quarter of the
   array's size.
2. Throughput. In one process, alternating: the same --speed_n examples as
   an array and as `Dataset.from_tensor_slices(x).batch(128)` (re-cut into
   chunks of --batch_size). Target: streamed at least 0.9x.
3. Checkpoint overhead. In one process, alternating: the array run with
   and without `checkpoint=` (written after every chunk). Target: under 5%.
   On a shared machine the difference of two wall times is noisy, so the
   seconds spent inside the checkpoint functions (fingerprint, load, save)
   are also summed during the checkpointed runs and divided by their wall
   time.

    nice -n 10 python3 dev.py bench evaluation_scale
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from examples.common import define_flags

flags.DEFINE_integer("speed_n", 10_000, "Examples for the timings.")
flags.DEFINE_integer("batch_size", 500, "Examples per chunk.")
flags.DEFINE_integer("repeats", 3, "Timed runs per variant.")
flags.DEFINE_bool("memory", True, "Run part 1 (two subprocesses).")
flags.DEFINE_string("mode", "", "Internal: 'stream' or 'array' runs one "
                    "memory measurement and prints it as JSON.")
define_flags(quick=None, num_examples=50_000)
FLAGS = flags.FLAGS

SHAPE = (32, 32, 3)
DATA_BATCH = 128
KWARGS = dict(eps=1 / 255, attacks="fgsm", seed=0, checks=False,
              metrics=False, progress=False)


def synthetic(n):
    """`n` examples as a dataset of `DATA_BATCH` batches, batch `i` drawn
    with the stateless seed `(0, i)`."""
    import tensorflow as tf

    sizes = [DATA_BATCH] * (n // DATA_BATCH)
    if n % DATA_BATCH:
        sizes.append(n % DATA_BATCH)

    def batch(i, size):
        return tf.random.stateless_uniform(
            tf.concat([[size], SHAPE], 0), seed=tf.stack([0, i]))

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(sizes), dtype=tf.int64), tf.constant(sizes)))
    return ds.map(batch)


def as_array(n):
    """The same `n` examples as one NumPy array."""
    import numpy as np

    return np.concatenate(list(synthetic(n).as_numpy_iterator()))


def model():
    """A small CNN on 32x32x3 inputs (fixed weights)."""
    from keras_adv import models

    return models.small_cnn(input_shape=SHAPE, width=16, seed=0)


def peak_mb():
    """This process's peak resident memory in MB (Linux: ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(mode):
    """One memory measurement in this (fresh) process."""
    import keras_adv

    net = model()
    keras_adv.evaluate_robustness(net, synthetic(FLAGS.batch_size),
                                  batch_size=FLAGS.batch_size, **KWARGS)
    base = peak_mb()
    t0 = time.perf_counter()
    n = FLAGS.num_examples
    data = synthetic(n) if mode == "stream" else as_array(n)
    report = keras_adv.evaluate_robustness(net, data,
                                           batch_size=FLAGS.batch_size,
                                           **KWARGS)
    print(json.dumps({"mode": mode, "base_mb": base,
                      "growth_mb": peak_mb() - base,
                      "seconds": time.perf_counter() - t0,
                      "examples": report.num_examples,
                      "robust": report.robust_accuracy}))


def memory_part():
    """Part 1: each mode in its own process."""
    out = {}
    for mode in ("stream", "array"):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.evaluation_scale",
             f"--mode={mode}", f"--num_examples={FLAGS.num_examples}",
             f"--batch_size={FLAGS.batch_size}"],
            capture_output=True, text=True, check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def timing_part():
    """Parts 2 and 3: alternating runs in this process."""
    import tensorflow as tf

    import keras_adv
    from benchmarks.common import interleaved_timing

    net = model()
    x = as_array(FLAGS.speed_n)
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "run.ckpt")
    b = FLAGS.batch_size

    def array():
        return keras_adv.evaluate_robustness(net, x, batch_size=b, **KWARGS)

    def streamed():
        ds = tf.data.Dataset.from_tensor_slices(x).batch(DATA_BATCH)
        return keras_adv.evaluate_robustness(net, ds, batch_size=b, **KWARGS)

    from keras_adv.evaluation import checkpoint as ckpt

    spent = {"seconds": 0.0, "wall": 0.0}

    def timed(fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - t0
        return wrapper

    for name in ("fingerprint", "load", "save"):
        setattr(ckpt, name, timed(getattr(ckpt, name)))

    def checkpointed():
        if os.path.exists(path):
            os.remove(path)
        t0 = time.perf_counter()
        report = keras_adv.evaluate_robustness(net, x, batch_size=b,
                                               checkpoint=path, **KWARGS)
        spent["wall"] += time.perf_counter() - t0
        return report

    same = (array().robust_accuracy == streamed().robust_accuracy
            == checkpointed().robust_accuracy)
    times = interleaved_timing({"array": array, "streamed": streamed,
                                "checkpointed": checkpointed},
                               repeats=FLAGS.repeats)
    size = os.path.getsize(path) / 2**20
    return times, same, size, spent["seconds"] / spent["wall"]


def main(_):
    if FLAGS.mode:
        measure_memory(FLAGS.mode)
        return
    from benchmarks.common import machine

    print(f"Machine: {machine()}")
    if FLAGS.memory:
        memory_report()
    timing_report()


def memory_report():
    """Prints part 1."""
    array_mb = FLAGS.num_examples * 32 * 32 * 3 * 4 / 2**20
    mem = memory_part()
    print(f"\n1. Peak RSS growth, {FLAGS.num_examples} examples 32x32x3 float32 "
          f"(array {array_mb:.0f} MB), FGSM, batch_size {FLAGS.batch_size}")
    print(f"{'run':<10}{'growth MB':>12}{'baseline MB':>14}{'seconds':>10}"
          f"{'robust':>9}")
    for mode in ("stream", "array"):
        r = mem[mode]
        print(f"{mode:<10}{r['growth_mb']:>12.0f}{r['base_mb']:>14.0f}"
              f"{r['seconds']:>10.1f}{r['robust']:>9.4f}")
    ratio = mem["stream"]["growth_mb"] / array_mb
    print(f"streamed growth / array size: {ratio:.3f} (target < 0.25: "
          f"{'met' if ratio < 0.25 else 'NOT met'}); same robust accuracy: "
          f"{mem['stream']['robust'] == mem['array']['robust']}")


def timing_report():
    """Prints parts 2 and 3."""
    times, same, size, inside = timing_part()
    n = FLAGS.speed_n
    print(f"\n2-3. {n} examples, median of {FLAGS.repeats} alternating runs "
          f"(same reports: {same})")
    print(f"{'run':<14}{'seconds':>9}{'examples/s':>12}{'ratio':>8}")
    for name in ("array", "streamed", "checkpointed"):
        t = times[name]
        print(f"{name:<14}{t:>9.2f}{n / t:>12.0f}"
              f"{times['array'] / t:>8.3f}")
    speed = times["array"] / times["streamed"]
    overhead = times["checkpointed"] / times["array"] - 1
    print(f"streamed throughput / in-memory: {speed:.3f} (target >= 0.9: "
          f"{'met' if speed >= 0.9 else 'NOT met'})")
    print(f"checkpoint overhead: {overhead:+.1%} of wall time (alternating "
          f"runs), {inside:.1%} inside the checkpoint functions; "
          f"{n // FLAGS.batch_size} writes of {size:.2f} MB (target < 5%: "
          f"{'met' if max(overhead, inside) < 0.05 else 'NOT met'})")


if __name__ == "__main__":
    app.run(main)
