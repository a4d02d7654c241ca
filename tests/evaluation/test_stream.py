"""Streaming, resumable and distributed evaluation: a tf.data.Dataset gives
the report of the same arrays, a run killed with SIGKILL resumes from its
checkpoint to the uninterrupted report, and MirroredStrategy over two
logical CPUs gives the single-device report."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.evaluation import checkpoint as ckpt
from keras_adv.evaluation import evaluate_robustness

ROOT = Path(__file__).resolve().parents[2]
SUITE = ["fgsm", ("pgd", {"steps": 3})]
TIMING_KEYS = ("timings", "seconds", "seconds_per_example")


def _plain(report):
    """The report's dict without wall-clock figures."""
    return {k: v for k, v in report.to_dict().items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def test_set(mnist5k):
    _, (x, y) = mnist5k
    return x, y


def test_dataset_gives_the_array_report(trained_cnn, test_set):
    x, y = test_set  # the 1000 mnist5k test images
    kwargs = dict(eps=[0.05, 0.1], attacks=SUITE, batch_size=300, seed=0,
                  metrics=False)
    arrays = evaluate_robustness(trained_cnn, x, y, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    streamed = evaluate_robustness(trained_cnn, ds, **kwargs)
    assert _plain(streamed) == _plain(arrays)
    assert arrays.num_examples == 1000
    # Real numbers: a trained CNN, accuracy falling with eps.
    assert arrays.clean_accuracy > 0.85
    clean, r05, r10 = (arrays.clean_accuracy, *arrays.robust_accuracy)
    assert clean > r05 > r10
    assert arrays.attack_accuracy["pgd"] == arrays.robust_accuracy
    assert all(f >= p for f, p in zip(arrays.attack_accuracy["fgsm"],
                                      arrays.attack_accuracy["pgd"]))
    assert arrays.warnings == []


def test_dataset_of_inputs_alone_uses_predictions(trained_cnn, test_set):
    x, _ = test_set
    kwargs = dict(eps=0.1, attacks="fgsm", batch_size=64, seed=0,
                  checks=False, metrics=False)
    arrays = evaluate_robustness(trained_cnn, x[:200], None, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices(x[:200]).batch(50)
    streamed = evaluate_robustness(trained_cnn, ds, **kwargs)
    assert _plain(streamed) == _plain(arrays)
    assert streamed.clean_accuracy == 1.0 and streamed.robust_accuracy < 1.0


def test_num_examples_caps_arrays_and_streams(trained_cnn, test_set):
    x, y = test_set
    kwargs = dict(eps=0.1, attacks="fgsm", batch_size=64, seed=0,
                  checks=False, metrics=False)
    head = evaluate_robustness(trained_cnn, x[:150], y[:150], **kwargs)
    capped = evaluate_robustness(trained_cnn, x, y, num_examples=150, **kwargs)
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(40).repeat()
    streamed = evaluate_robustness(trained_cnn, endless, num_examples=150,
                                   **kwargs)
    assert head.num_examples == capped.num_examples == 150
    assert _plain(capped) == _plain(head) == _plain(streamed)


@pytest.mark.parametrize("case,match", [
    ("infinite", r"num_examples must cap a dataset whose length is not "
                 r"known .* Received: data with infinite cardinality and "
                 r"num_examples=None"),
    ("y_with_dataset", r"y must be None when the data is a tf\.data\.Dataset"
                       r".*Received: y="),
    ("num_examples", r"Received: num_examples=0"),
    ("checkpoint", r"Received: checkpoint="),
    ("elements", r"data must be a dataset of x batches"),
    ("strategy", r"strategy must be a tf\.distribute\.Strategy or None\. "
                 r"Received: strategy='mirrored'"),
])
def test_bad_stream_arguments(trained_cnn, test_set, tmp_path, case, match):
    x, y = test_set
    ds = tf.data.Dataset.from_tensor_slices((x[:8], y[:8])).batch(4)
    args, kwargs = (ds,), {}
    if case == "infinite":
        args = (ds.repeat(),)
    elif case == "y_with_dataset":
        args = (ds, y[:8])
    elif case == "num_examples":
        kwargs = {"num_examples": 0}
    elif case == "strategy":
        kwargs = {"strategy": "mirrored"}
    elif case == "checkpoint":
        kwargs = {"checkpoint": str(tmp_path / "missing" / "run.ckpt")}
    else:
        args = (tf.data.Dataset.from_tensor_slices(
            {"a": x[:8], "b": x[:8], "c": x[:8], "d": x[:8]}),)
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(trained_cnn, *args, eps=0.1, attacks="fgsm",
                            **kwargs)


def test_checkpoint_finished_mismatch_and_seed_none(trained_cnn, test_set,
                                                    tmp_path):
    x, y = test_set
    path = str(tmp_path / "run.ckpt")
    kwargs = dict(eps=0.1, attacks=SUITE, batch_size=50, checks=False,
                  metrics=False, num_examples=150)
    first = evaluate_robustness(trained_cnn, x, y, checkpoint=path, **kwargs)
    meta, flags, sample = ckpt.load(path)
    assert meta["chunks"] == 3 and flags.shape == (150, 3)
    assert isinstance(meta["fingerprint"]["seed"], int)  # drawn once, kept
    assert sample[0].shape == sample[1].shape == (150,)  # labels, correct
    assert flags[:, 2].mean() == first.robust_accuracy
    # A finished checkpoint gives the same report at once.
    t0 = time.perf_counter()
    again = evaluate_robustness(trained_cnn, x, y, checkpoint=path, **kwargs)
    assert time.perf_counter() - t0 < 2.0
    assert again.to_dict() == first.to_dict()
    # The stored seed reproduces the run without a checkpoint.
    seeded = evaluate_robustness(trained_cnn, x, y, seed=meta["fingerprint"][
        "seed"], **kwargs)
    assert _plain(seeded) == _plain(first)
    # Other arguments, data or weights: an error naming the field.
    for change, field in ((dict(kwargs, eps=0.2), "eps"),
                          (dict(kwargs, batch_size=30), "batch_size"),
                          (dict(kwargs, seed=123), "seed")):
        with pytest.raises(ValueError, match=rf"{field} differs.*Received: "
                           r"checkpoint="):
            evaluate_robustness(trained_cnn, x, y, checkpoint=path, **change)
    with pytest.raises(ValueError, match=r"data differs"):
        evaluate_robustness(trained_cnn, x[1:], y[1:], checkpoint=path,
                            **kwargs)


def test_checkpoint_is_data_only(tmp_path):
    path = tmp_path / "run.ckpt"
    with path.open("wb") as f:  # a pickled object where the JSON text goes
        np.savez(f, meta=np.array([{"format": 1}], dtype=object),
                 flags=np.zeros((1, 1), bool))
    with pytest.raises(ValueError, match=r"checkpoint must be a file written "
                       r"by evaluate_robustness.*Object arrays cannot be "
                       r"loaded"):
        ckpt.load(str(path))


KILLED = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import keras_adv
_, (x, y) = keras_adv.datasets.load("mnist5k")
model = keras.models.load_model(sys.argv[1])
keras_adv.evaluate_robustness(
    model, x, y, eps=[0.05, 0.1], attacks=[("pgd", {"steps": 20})],
    batch_size=25, num_examples=500, seed=0, checks=False, metrics=False,
    checkpoint=sys.argv[2], progress=False)
print("finished")
"""


def _chunks_done(path):
    try:
        return ckpt.load(path)[0]["chunks"]
    except (TypeError, ValueError):
        return 0


def test_sigkill_midway_then_resume_gives_the_uninterrupted_report(
        trained_cnn, test_set, tmp_path):
    x, y = test_set
    model_path = str(tmp_path / "model.keras")
    trained_cnn.save(model_path)
    script = tmp_path / "evaluate.py"
    script.write_text(KILLED)
    path = str(tmp_path / "run.ckpt")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), model_path, path], env=env,
            stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        try:
            deadline = time.time() + 240
            while _chunks_done(path) < 2 and time.time() < deadline:
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _chunks_done(path)
    assert 2 <= killed_at < 20, killed_at  # 500 examples: 20 chunks
    kwargs = dict(eps=[0.05, 0.1], attacks=[("pgd", {"steps": 20})],
                  batch_size=25, num_examples=500, seed=0, checks=False,
                  metrics=False)
    resumed = evaluate_robustness(trained_cnn, x, y, checkpoint=path, **kwargs)
    whole = evaluate_robustness(trained_cnn, x, y, **kwargs)
    assert ckpt.load(path)[0]["chunks"] == 20
    assert _plain(resumed) == _plain(whole)
    assert 0.0 < whole.robust_accuracy[1] < whole.robust_accuracy[0]


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


def test_chunk_result_bytes_round_trip():
    """What workers exchange under a multi-worker strategy: JSON bytes that
    give back the same result (no pickle)."""
    from keras_adv.evaluation.run import ChunkResult, Points

    flags = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]], bool)
    points = Points(broken=[np.array([0, 2]), np.array([5])], invalid=1,
                    nonfinite=2, error="model gave non-finite x", splits=1)
    result = ChunkResult(y=np.array([3, 1, 4], np.int32), flags=flags,
                         clean_nonfinite=1, black_only=[0, 1],
                         fgsm_correct=[2, 1], fgsm_only=[0, 0],
                         points=[("pgd", points, True)],
                         timings={"pgd": 0.25})
    back = ChunkResult.from_bytes(result.to_bytes())
    assert back.y.dtype == np.int32 and back.y.tolist() == [3, 1, 4]
    np.testing.assert_array_equal(back.flags, flags)
    assert back.flags.dtype == bool
    (name, got, count), = back.points
    assert (name, count) == ("pgd", True)
    assert got.indices().tolist() == [0, 2, 5]
    assert (got.invalid, got.nonfinite, got.error, got.splits) == (
        1, 2, "model gave non-finite x", 1)
    assert (back.black_only, back.fgsm_correct, back.timings) == (
        [0, 1], [2, 1], {"pgd": 0.25})
