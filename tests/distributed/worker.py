"""One worker of the multi-worker test (`test_multi_worker.py`).

Run as `python worker.py OUT_DIR [MODE]` with `TF_CONFIG` set, once per
worker: it trains `AdversarialModel` with PGD-AT under
`MultiWorkerMirroredStrategy`, scores it with `evaluate`, evaluates it with
`evaluate_robustness(..., strategy=...)` when that is supported, and
finally tries `fit` on a plain Keras model. The chief (worker 0) writes
`weights.npz`, `scores.json`, `report.json` and `plain_fit.txt` in
OUT_DIR. The modes `interrupt` and `resume` check `BackupAndRestore`
instead (`main`). Imported as a module (no `TF_CONFIG`), `train`, `scores`
and `evaluate` give the single-process reference on the same global
batches.
"""

import inspect
import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_adv

NUM_TRAIN = 256  # 8 steps of GLOBAL_BATCH
GLOBAL_BATCH = 32
NUM_EVAL = 64
# Examples per chunk: 4 chunks, so each of the two workers attacks two and
# the results travel between them.
EVAL_CHUNK = 16
EVAL_EPS = [0.05, 0.1]
EVAL_ATTACKS = ["fgsm", ("pgd", {"steps": 3})]


def data():
    """The training and evaluation slices of mnist5k (the same on every
    worker)."""
    (x, y), (x_test, y_test) = keras_adv.datasets.load("mnist5k")
    return (x[:NUM_TRAIN], y[:NUM_TRAIN]), (x_test[:NUM_EVAL], y_test[:NUM_EVAL])


def dataset(x, y):
    """Fixed global batches of `GLOBAL_BATCH` examples, in order.

    Every worker builds the whole dataset; `auto_shard_policy = DATA` lets
    the strategy split each global batch into one slice per replica (worker
    i takes the i-th `GLOBAL_BATCH / replicas` examples of every batch), so
    the replicas of one step see exactly the batch that one process sees.
    With `OFF` every worker would train on the whole batch sequence itself.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.with_options(options)


def build(strategy=None):
    """The fixed-seed PGD-AT model, created and compiled in the scope of
    `strategy` (the default strategy for `None`)."""
    with (strategy or tf.distribute.get_strategy()).scope():
        model = keras_adv.models.AdversarialModel(
            keras_adv.models.small_cnn(seed=0, width=4),
            defense=keras_adv.defenses.PGDTraining(
                eps=0.1, steps=3, step_size=0.04, random_start=False))
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    return model


def train(strategy=None, epochs=1, callbacks=()):
    """Trains `epochs` epochs of 8 global batches; returns the model."""
    keras.utils.set_random_seed(0)
    (x, y), _ = data()
    model = build(strategy)
    model.fit(dataset(x, y), epochs=epochs, verbose=0, shuffle=False,
              callbacks=list(callbacks))
    return model


class Interrupt(keras.callbacks.Callback):
    """Stops training at the start of epoch `epoch` (as a preemption)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"interrupted before epoch {epoch}")


def train_resumable(strategy, out, task, interrupt):
    """Two epochs with `BackupAndRestore` in a folder of this worker's own
    (`out/backup/worker_<task>`); `interrupt` stops before the second."""
    callbacks = [keras.callbacks.BackupAndRestore(
        str(out / "backup" / f"worker_{task}"))]
    if interrupt:
        callbacks.append(Interrupt(1))
    return train(strategy, epochs=2, callbacks=callbacks)


def scores(model):
    """`model.evaluate` on the evaluation slice: the clean loss, and the
    loss under the defense's own attack (PGD-3)."""
    _, (x, y) = data()
    clean = model.evaluate(dataset(x, y), verbose=0, return_dict=True)
    robust = model.evaluate(dataset(x, y), adversarial=True, verbose=0,
                            return_dict=True)
    return {"loss": float(clean["loss"]), "adv_loss": float(robust["adv_loss"])}


def plain_fit(strategy):
    """What `fit` of a plain Keras model does under `strategy`: `"ok"` or
    the first line of its error (Keras 3 fails under several workers,
    keras-team/keras#20585; `AdversarialModel` works around it)."""
    (x, y), _ = data()
    with strategy.scope():
        model = keras_adv.models.small_cnn(seed=0, width=4)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    try:
        model.fit(dataset(x, y), epochs=1, verbose=0, shuffle=False)
    except ValueError as e:
        return f"ValueError: {str(e).splitlines()[0]}"
    return "ok"


def supports_strategy():
    """Whether `evaluate_robustness` takes `strategy=`."""
    return "strategy" in inspect.signature(
        keras_adv.evaluate_robustness).parameters


def evaluate(model, strategy=None):
    """The report dict of the fixed evaluation, under `strategy` if given."""
    _, (x, y) = data()
    extra = {} if strategy is None else {"strategy": strategy}
    report = keras_adv.evaluate_robustness(
        model, x, y, eps=EVAL_EPS, attacks=EVAL_ATTACKS, seed=0,
        batch_size=EVAL_CHUNK, metrics=False, checks=False, **extra)
    return report.to_dict()


def main(out_dir, mode="train"):
    """`mode`: `"train"` (train, score, evaluate), or `"interrupt"` then
    `"resume"` (two epochs with `BackupAndRestore`, stopped after the
    first, then resumed)."""
    out = Path(out_dir)
    keras.config.disable_traceback_filtering()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = strategy.cluster_resolver.task_id
    chief = task == 0
    if mode != "train":
        model = train_resumable(strategy, out, task, mode == "interrupt")
        if chief:
            np.savez(out / "resumed.npz", *model.get_weights())
        return
    model = train(strategy)
    results = scores(model)
    if chief:
        np.savez(out / "weights.npz", *model.get_weights())
        results["replicas"] = strategy.num_replicas_in_sync
        (out / "scores.json").write_text(json.dumps(results))
    if supports_strategy():
        report = evaluate(model, strategy)
        if chief:
            (out / "report.json").write_text(json.dumps(report))
    outcome = plain_fit(strategy)  # last: it leaves a failed fit behind
    if chief:
        (out / "plain_fit.txt").write_text(outcome)


if __name__ == "__main__":
    assert "TF_CONFIG" in os.environ, "the worker needs TF_CONFIG"
    main(*sys.argv[1:])
