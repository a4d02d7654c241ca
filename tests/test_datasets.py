"""The embedded data and the offline behaviour of the tfds path."""

import time

import numpy as np
import pytest

from keras_adv import datasets


def test_mnist5k_split(mnist5k):
    (x_train, y_train), (x_test, y_test) = mnist5k
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10


def test_mnist5k_split_is_fixed(mnist5k):
    (x_train, y_train), (x_test, _) = datasets.load("mnist5k")
    np.testing.assert_array_equal(x_train, mnist5k[0][0])
    np.testing.assert_array_equal(y_train, mnist5k[0][1])
    # no image is in both splits
    train_keys = {a.tobytes() for a in x_train}
    assert not any(a.tobytes() in train_keys for a in x_test)


def test_load_tf_pipelines():
    train, test = datasets.load_tf("mnist5k", batch_size=100, seed=1)
    xb, yb = next(iter(train))
    assert xb.shape == (100, 28, 28, 1) and yb.shape == (100,)
    assert sum(int(b[1].shape[0]) for b in test) == 1000


def test_unknown_name():
    with pytest.raises(ValueError, match=r"Received: name='imagenet'"):
        datasets.load("imagenet")


def test_bad_batch_size():
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        datasets.load_tf(batch_size=0)


def test_tfds_offline_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "_reachable", lambda host, timeout: False)
    start = time.monotonic()
    with pytest.raises(datasets.DatasetUnavailableError, match="mnist5k"):
        datasets.load("mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 60  # an error, not a hang
