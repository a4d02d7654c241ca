"""Resumable evaluation (`evaluation/checkpoint.py`): the file written
after every chunk, a finished checkpoint's report returned at once, a
mismatch named by its field, a run killed with SIGKILL resumed to the
uninterrupted report, a file that is data only, and the path's check."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_adv.evaluation import checkpoint as ckpt
from keras_adv.evaluation import evaluate_robustness
from tests.evaluation.conftest import SUITE, plain

ROOT = Path(__file__).resolve().parents[2]


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
    assert plain(seeded) == plain(first)
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


def test_check_path_wants_a_file_in_an_existing_folder(tmp_path):
    assert ckpt.check_path(None) is None
    assert ckpt.check_path(tmp_path / "run.ckpt") == str(tmp_path / "run.ckpt")
    for bad in (tmp_path, tmp_path / "missing" / "run.ckpt", 3):
        with pytest.raises(ValueError, match=r"checkpoint must be a file path "
                           r"in an existing folder, or None\. Received: "
                           r"checkpoint="):
            ckpt.check_path(bad)


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
    assert plain(resumed) == plain(whole)
    assert 0.0 < whole.robust_accuracy[1] < whole.robust_accuracy[0]
