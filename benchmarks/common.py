"""Helpers shared by the benchmarks: the examples' common flags and small
trained CNN (`examples/common.py`, one home for both), and fair timing."""

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from examples.common import (  # noqa: E402, F401 - the shared plumbing
    compile_classifier,
    define_flags,
    mnist5k,
    train_small_cnn,
)


def trained_cnn(epochs=3, seed=0):
    """small_cnn trained on the mnist5k training split (the examples'
    `train_small_cnn`); returns model, train and test data."""
    train, test = mnist5k()
    return train_small_cnn(*train, epochs=epochs, seed=seed), train, test


def interleaved_timing(fns, repeats=5):
    """Times each callable `repeats` times, round-robin so that machine noise
    falls on all of them alike; returns the median seconds per callable."""
    for fn in fns.values():  # warm-up: tracing and first-call costs
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@contextlib.contextmanager
def busy_core(script, settle=0.0):
    """Runs `script` (Python that prints "ready" once it keeps one core
    busy) in a subprocess for the duration of the block, waiting `settle`
    seconds after "ready"; stopped when the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()  # "ready": TensorFlow is loaded and spinning
        time.sleep(settle)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def machine():
    """A one-line description of this machine and library versions."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, NumPy {np.__version__}"
    )
