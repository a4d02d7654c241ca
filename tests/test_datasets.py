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


def test_hide_labels_keeps_exactly_k_per_class():
    y = np.repeat(np.arange(10), 40)
    hidden = datasets.hide_labels(y, labels_per_class=10, seed=3)
    assert np.all(np.bincount(hidden[hidden >= 0]) == 10)
    assert np.all(hidden[hidden >= 0] == y[hidden >= 0])
    assert (hidden == -1).sum() == 300
    np.testing.assert_array_equal(
        hidden, datasets.hide_labels(y, labels_per_class=10, seed=3))
    with pytest.raises(ValueError, match="labels_per_class=41"):
        datasets.hide_labels(y, labels_per_class=41)
    with pytest.raises(ValueError, match="Received: y with shape"):
        datasets.hide_labels(y.reshape(20, 20), labels_per_class=1)


def test_semi_supervised_dataset_batches():
    x_l = np.arange(10, dtype="float32")[:, None]
    y_l = np.arange(10) % 3
    x_u = -np.arange(1, 101, dtype="float32")[:, None]
    ds = datasets.semi_supervised_dataset(x_l, y_l, x_u, batch_size=20,
                                          labeled_share=0.3, seed=1)
    batches = list(ds)
    assert len(batches) == 100 // 14  # one pass over the unlabeled set
    seen = set()
    for x, y in batches:
        x, y = x.numpy()[:, 0], y.numpy()
        assert x.shape == (20,) and (y >= 0).sum() == 6
        assert np.all((x >= 0) == (y >= 0))  # labeled rows are the x_l ones
        np.testing.assert_array_equal(y[y >= 0], y_l[x[y >= 0].astype(int)])
        seen.update(x[x < 0].tolist())
    assert len(seen) == 98  # no unlabeled row twice in an epoch
    with pytest.raises(ValueError, match="labeled_share=1.0"):
        datasets.semi_supervised_dataset(x_l, y_l, x_u, labeled_share=1.0)
    with pytest.raises(ValueError, match="x_unlabeled with shape"):
        datasets.semi_supervised_dataset(x_l, y_l, x_u[:, :0])
