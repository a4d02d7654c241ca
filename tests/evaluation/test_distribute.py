"""Distributed evaluation (`evaluation/distribute.py`): the strategy
resolved from the argument or the active scope, and MirroredStrategy over
two logical CPUs giving the single-device report."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

from keras_adv.evaluation import distribute

ROOT = Path(__file__).resolve().parents[2]


def test_resolve_one_device_and_bad_values():
    assert distribute.resolve(None) is None  # no strategy in scope
    # One replica is one device: the plain loop.
    assert distribute.resolve(tf.distribute.OneDeviceStrategy("/cpu:0")) \
        is None
    with pytest.raises(ValueError, match=r"strategy must be a "
                       r"tf\.distribute\.Strategy or None\. Received: "
                       r"strategy='mirrored'"):
        distribute.resolve("mirrored")


MIRRORED = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import keras_adv
_, (x, y) = keras_adv.datasets.load("mnist5k")
model = keras.models.load_model(sys.argv[1])
kwargs = dict(eps=[0.05, 0.1], attacks=["fgsm", ("pgd", {"steps": 3})],
              batch_size=70, num_examples=400, seed=0, metrics=False,
              progress=False)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
single = keras_adv.evaluate_robustness(model, x, y, **kwargs)
given = keras_adv.evaluate_robustness(model, x, y, strategy=strategy, **kwargs)
with strategy.scope():
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    scoped = keras_adv.evaluate_robustness(model, ds, **kwargs)
drop = ("timings", "seconds", "seconds_per_example")
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **{
    k: {f: v for f, v in r.to_dict().items() if f not in drop}
    for k, r in (("single", single), ("given", given), ("scoped", scoped))}}))
"""


def test_mirrored_strategy_gives_the_single_device_report(trained_cnn,
                                                          tmp_path):
    model_path = str(tmp_path / "model.keras")
    trained_cnn.save(model_path)
    script = tmp_path / "mirrored.py"
    script.write_text(textwrap.dedent(MIRRORED))
    done = subprocess.run(
        [sys.executable, str(script), model_path], capture_output=True,
        text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["given"] == out["single"]
    assert out["scoped"] == out["single"]
    assert out["single"]["num_examples"] == 400  # 6 chunks: 3 steps of 2
    assert out["single"]["robust_accuracy"][1] < out["single"][
        "clean_accuracy"]
