"""Production behaviour: tf.distribute, mixed precision, resumption,
reproducibility. Runs that need a fresh TensorFlow runtime (logical devices,
op determinism) run in a subprocess."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_adv

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
"""

COMMON = """
import keras
import keras_adv
from keras_adv.defenses import PGDTraining
from keras_adv.models import AdversarialModel, small_cnn

(x, y), _ = keras_adv.datasets.load("mnist5k")
x, y = x[:512], y[:512]

def train(strategy=None, random_start=False, epochs=2):
    keras.utils.set_random_seed(0)
    scope = (strategy or tf.distribute.get_strategy()).scope()
    with scope:
        model = AdversarialModel(
            small_cnn(seed=0, width=8),
            defense=PGDTraining(eps=0.1, steps=3, random_start=random_start))
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    history = model.fit(x, y, batch_size=64, epochs=epochs, shuffle=False,
                        verbose=0)
    return model, history.history
"""


def run_script(*parts, timeout=600):
    """Runs Python snippets in a fresh interpreter; returns its last printed
    line as JSON."""
    code = "\n".join(textwrap.dedent(p) for p in (PRELUDE,) + parts)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_matches_single_device():
    out = run_script("""
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    """, COMMON, """
        _, single = train()
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        _, mirrored = train(strategy)
        print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                          "single": single["loss"],
                          "mirrored": mirrored["loss"]}))
    """)
    assert out["replicas"] == 2
    assert np.all(np.isfinite(out["mirrored"]))
    np.testing.assert_allclose(out["mirrored"], out["single"], rtol=0.02)


def test_op_determinism_gives_bit_identical_runs():
    out = run_script("""
        tf.config.experimental.enable_op_determinism()
    """, COMMON, """
        runs = []
        for _ in range(2):
            model, hist = train(random_start=True)
            keras.utils.set_random_seed(1)
            x_adv = keras_adv.attacks.pgd(model, x[:64], y[:64], eps=0.2,
                                          steps=5)  # seed=None: global RNG
            runs.append({
                "loss": hist["loss"],
                "weights": float(sum(np.abs(w).sum()
                                     for w in model.get_weights())),
                "adv": x_adv.numpy().tobytes().hex()[:4000],
                "adv_sum": float(np.abs(x_adv.numpy()).sum()),
            })
        print(json.dumps(runs))
    """)
    first, second = out
    assert first == second


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    out = run_script(COMMON, f"""
        backup = {str(tmp_path / "backup")!r}

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 2:
                    raise RuntimeError("interrupted")

        def resumable(extra):
            keras.utils.set_random_seed(0)
            model = AdversarialModel(
                small_cnn(seed=0, width=8),
                defense=PGDTraining(eps=0.1, steps=3, random_start=False,
                                    warmup_epochs=2))
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(
                              from_logits=True))
            callbacks = [keras.callbacks.BackupAndRestore(backup)] + extra
            model.fit(x, y, batch_size=64, epochs=4, shuffle=False, verbose=0,
                      callbacks=callbacks)
            return model

        try:
            resumable([Interrupt()])
        except RuntimeError:
            pass
        resumed = resumable([])
        keras.utils.set_random_seed(0)
        import shutil
        shutil.rmtree(backup, ignore_errors=True)
        straight = resumable([])
        diff = max(float(np.abs(a - b).max()) for a, b in
                   zip(resumed.get_weights(), straight.get_weights()))
        print(json.dumps({{"max_diff": diff}}))
    """)
    assert out["max_diff"] < 1e-5


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_and_attacks(policy, mnist5k):
    (x, y), _ = mnist5k
    x, y = x[:256], y[:256]
    try:
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = keras_adv.models.AdversarialModel(
            keras_adv.models.small_cnn(seed=0, width=8),
            defense=keras_adv.defenses.PGDTraining(eps=0.2, steps=3))
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True),
                      metrics=["accuracy"])
        hist = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history
        assert all(np.isfinite(v).all() for v in hist.values())
        assert model.base.layers[-1].compute_dtype in ("bfloat16", "float16")
        x_adv = keras_adv.attacks.pgd(model, x, y, eps=0.2, steps=5, seed=0)
        assert np.isfinite(x_adv.numpy()).all()
        assert np.abs(x_adv.numpy() - x).max() <= 0.2 + 1e-6
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mirrored_strategy_semi_supervised_combination_with_metrics():
    """Metrics (built before the distributed step), -1 labels split across
    replicas, BatchNormalization and a three-member combination."""
    out = run_script("""
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        import keras_adv
        from keras_adv.defenses import DataSparsity, PGDTraining, VAT

        rng = np.random.RandomState(0)
        x = rng.rand(64, 6).astype("float32")
        y = np.where(np.arange(64) % 3 == 0, np.arange(64) % 4, -1)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            base = keras.Sequential([
                keras.Input((6,)), keras.layers.Dense(8),
                keras.layers.BatchNormalization(), keras.layers.ReLU(),
                keras.layers.Dense(4)])
            model = keras_adv.models.AdversarialModel(base, defense=[
                PGDTraining(eps=0.1, steps=2), VAT(eps=1.0),
                DataSparsity(weight=1.0)])
            model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
                from_logits=True), metrics=["accuracy"])
        logs = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
        print(json.dumps({k: v for k, v in logs.items()}))
    """)
    for key in ("loss", "adv_loss", "vat_loss", "smoothness_loss",
                "accuracy", "adv_accuracy"):
        assert np.all(np.isfinite(out[key])), key
