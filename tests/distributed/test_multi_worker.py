"""MultiWorkerMirroredStrategy with two real worker processes on localhost.

The two workers (`worker.py`, one `TF_CONFIG` each, free ports, CPU only)
train `AdversarialModel` with PGD-AT for one epoch of 8 global batches of 32
mnist5k images (16 per worker), then, when `evaluate_robustness` takes
`strategy=`, evaluate the trained model under the same strategy. This
process computes the same things without a strategy and compares.

Why the runs are comparable:

- Data: every worker builds the whole dataset of global batches with
  `auto_shard_policy = DATA`; the strategy splits each global batch into one
  slice per replica, so the two replicas of a step see exactly the batch of
  one process (`worker.dataset`).
- Gradients: `AdversarialModel` averages its loss per replica and divides
  by the number of replicas before the gradients are summed across them,
  so the update is the one-process mean over the global batch.
- Attack: `PGDTraining(random_start=False)`. With the random start,
  `PGDTraining` draws its start from the global generator on each replica
  (seed `None`), so the draws depend on the split and the runs could not be
  compared. Without it PGD is a deterministic function of the weights and
  the batch.

Tolerance: the all-reduce adds the two half-batch gradients in a different
order from one batch's reduction (float32), so the weights agree up to
rounding: `atol=1e-6` on weights of scale 0.02-0.35 after steps that moved
them by up to 0.08 (observed difference: 1.5e-8).

The workers run once per module (the CI part of this file: 62-73 s of CPU
time, 131-152 s of wall time on two cores at load 6-7, most of it
TensorFlow start-ups and tracing); the time bound is `TIMEOUT` seconds,
after which both processes are killed. The restart test and the
parameter-server probe are marked slow.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_adv import _keras_compat
from tests.distributed import launcher, worker

WORKER = Path(worker.__file__)
TIMEOUT = 240.0
UNTIMED = ("timings", "seconds", "seconds_per_example")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Runs the two workers once; returns their output folder and results."""
    out = tmp_path_factory.mktemp("multi_worker")
    results = launcher.run_workers(WORKER, [out], num_workers=2,
                                   timeout=TIMEOUT, log_dir=out)
    return out, results


def logs(results):
    return "\n".join(f"--- worker {i} (return code {code}) ---\n{text[-3000:]}"
                     for i, (code, text) in enumerate(results))


def saved_weights(out):
    with np.load(out / "weights.npz") as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def test_pgd_training_matches_one_process(cluster):
    out, results = cluster
    assert (out / "weights.npz").exists(), logs(results)
    distributed = saved_weights(out)
    initial = worker.build().get_weights()
    model = worker.train()
    single = model.get_weights()

    assert [w.shape for w in distributed] == [w.shape for w in single]
    moved = max(np.abs(s - i).max() for s, i in zip(single, initial))
    assert moved > 1e-2  # the comparison is not between untrained weights
    for d, s in zip(distributed, single):
        np.testing.assert_allclose(d, s, rtol=0, atol=1e-6)

    # evaluate() and evaluate(adversarial=True) under the strategy too.
    scores = json.loads((out / "scores.json").read_text())
    assert scores.pop("replicas") == 2
    expected = worker.scores(model)
    assert scores.keys() == expected.keys()
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, rel=1e-5), key


def test_plain_keras_model_fails_under_multi_worker(cluster):
    """The workaround is still needed: a plain Keras model in the same
    script fails to start `fit` (keras-team/keras#20585). When this test
    fails, Keras has fixed it: update docs/distributed.md and drop
    `_keras_compat.MultiWorkerFitFixes`."""
    out, results = cluster
    assert (out / "plain_fit.txt").exists(), logs(results)
    assert (out / "plain_fit.txt").read_text().startswith(
        "ValueError: Attempt to convert a value (PerReplica:")


@pytest.mark.skipif(
    not worker.supports_strategy(),
    reason="evaluate_robustness does not take strategy= in this version",
)
def test_distributed_evaluation_matches_one_process(cluster):
    out, results = cluster
    assert [code for code, _ in results] == [0, 0], logs(results)
    distributed = json.loads((out / "report.json").read_text())

    # The reference evaluates the weights the workers evaluated, so that
    # only the evaluation differs between the two runs.
    model = worker.build()
    model.set_weights(saved_weights(out))
    single = worker.evaluate(model)

    for key in UNTIMED:
        distributed.pop(key), single.pop(key)
    assert distributed["num_examples"] == worker.NUM_EVAL
    assert distributed == single


@pytest.mark.slow  # a TensorFlow start-up (about 20 s) for a Keras fact
def test_parameter_server_strategy_is_not_supported_by_keras_fit():
    """Keras 3 `fit` has no `ClusterCoordinator` support (keras-team/keras
    #18624: "Parameter server training is not supported in Keras 3"): it
    fails on its own dataset before any step, for a plain model and for
    `AdversarialModel` alike. When this test fails, Keras has changed:
    update docs/distributed.md."""
    probe = Path(__file__).with_name("parameter_server_probe.py")
    env = dict(os.environ, PYTHONPATH=str(launcher.ROOT),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, str(probe)], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env,
                          cwd=launcher.ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    expected = ("ValueError: To use this dataset, you need to pass this "
                "dataset to ClusterCoordinator.create_per_worker_dataset.")
    assert found == {"plain": expected, "adversarial": expected}


def test_workers_are_killed_at_the_time_bound(tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(60)\n")
    start = time.monotonic()
    results = launcher.run_workers(script, num_workers=2, timeout=1.0,
                                   log_dir=tmp_path)
    assert time.monotonic() - start < 20
    assert [code for code, _ in results] == [None, None]


def test_tf_config_names_both_workers():
    p0, p1 = launcher.free_ports(2)
    assert p0 != p1
    config = launcher.tf_config([p0, p1], 1)
    assert config == {
        "cluster": {"worker": [f"localhost:{p0}", f"localhost:{p1}"]},
        "task": {"type": "worker", "index": 1},
    }
    assert json.loads(json.dumps(config)) == config


def test_multi_worker_workarounds_do_nothing_on_one_worker():
    logs = {"loss": tf.constant(1.5), "curve": tf.constant([1.0, 2.0])}
    assert not _keras_compat.multi_worker(tf.distribute.get_strategy())
    assert not _keras_compat.multi_worker(None)
    assert _keras_compat.per_replica_logs(logs) is logs
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert not _keras_compat.multi_worker(tf.distribute.get_strategy())
        assert _keras_compat.per_replica_logs(logs) is logs


@pytest.mark.slow
def test_backup_and_restore_resumes_across_workers(tmp_path):
    """Both workers stop before the second epoch (as a preemption); started
    again, they restore from their own backup folders and end with the
    weights of two uninterrupted epochs in one process (same tolerance)."""
    stopped = launcher.run_workers(WORKER, [tmp_path, "interrupt"],
                                   timeout=TIMEOUT, log_dir=tmp_path)
    assert [code for code, _ in stopped] == [1, 1], logs(stopped)
    assert "interrupted before epoch 1" in stopped[0][1]
    assert not (tmp_path / "resumed.npz").exists()
    resumed = launcher.run_workers(WORKER, [tmp_path, "resume"],
                                   timeout=TIMEOUT, log_dir=tmp_path)
    assert [code for code, _ in resumed] == [0, 0], logs(resumed)
    with np.load(tmp_path / "resumed.npz") as f:
        distributed = [f[f"arr_{i}"] for i in range(len(f.files))]
    single = worker.train(epochs=2).get_weights()
    one_epoch = worker.train(epochs=1).get_weights()
    assert max(np.abs(s - o).max() for s, o in zip(single, one_epoch)) > 1e-3
    for d, s in zip(distributed, single):
        np.testing.assert_allclose(d, s, rtol=0, atol=1e-6)
