"""The data side of `evaluate_robustness`: arrays or a `tf.data.Dataset`
cut into the same chunks of `batch_size` consecutive examples.

The chunk is the unit of work of the evaluation: its content depends only
on the data, `batch_size` and `num_examples`, never on how a dataset was
batched, so arrays and a stream of the same examples give the same chunks.
A dataset is re-cut with `rebatch(batch_size)` (the same as
`unbatch().batch(batch_size)` with one copy; bounded memory: one chunk at a
time).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_adv import validation

# Examples at the head of the data kept for the masking checks and metrics.
SAMPLE_SIZE = 500


@dataclasses.dataclass
class Chunks:
    """The data as chunks of `batch_size` examples: `(x, y)` NumPy pairs,
    `y` None for a dataset of inputs alone (labels = predictions).

    `total` is the number of examples when it is known before reading them
    (arrays, a dataset of known cardinality with `num_examples`), else None.
    """

    data: object
    y: object
    batch_size: int
    total: object
    clip: object
    streamed: bool
    model: object = None

    def iterate(self, start=0):
        """Yields `(x, y)` for chunk `start` onwards (earlier chunks are
        skipped without any model work)."""
        if self.streamed:
            yield from self._stream(start)
            return
        b = self.batch_size
        for i in range(start * b, self.total, b):
            end = min(self.total, i + b)
            x = np.asarray(self.data[i:end], np.float32)
            y = None if self.y is None else self.y[i:end]
            yield x, y

    def _stream(self, start):
        ds = self.data.rebatch(self.batch_size).skip(start).prefetch(1)
        options = tf.data.Options()
        # Autotuning's threads compete with the attacks for the cores (a
        # tenth of the throughput on 2 cores); one chunk ahead is enough.
        options.autotune.enabled = False
        ds = ds.with_options(options)
        left = None if self.total is None else self.total - start * (
            self.batch_size)
        for element in _read(ds):
            if left is not None and left <= 0:
                return
            x, y = element if isinstance(element, tuple) else (element, None)
            if left is not None and len(x) > left:
                x, y = x[:left], None if y is None else y[:left]
            if left is not None:
                left -= len(x)
            x = np.asarray(x)
            if x.dtype == np.float64:
                x = x.astype(np.float32)
            validation.check_x(x, self.clip)  # a bad chunk of the stream
            validation.check_input_shape(self.model, x, "data")
            yield x, y


def _read(ds):
    """The dataset's elements as NumPy, with the error tf.data raises for
    batches of different shapes turned into one line."""
    iterator = ds.as_numpy_iterator()
    while True:
        try:
            element = next(iterator)
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError,
                tf.errors.FailedPreconditionError) as e:
            first = (e.message or str(e)).strip().splitlines()[0]
            first = first.split("}} ")[-1][:200]
            raise ValueError(
                "data must yield batches of one input shape. Received: data "
                f"whose batches could not be joined ({first})") from None
        yield element


def open_data(data, y, *, batch_size, num_examples, clip, model=None):
    """Checks `data` (arrays or a finite `tf.data.Dataset`) and `y`, and
    returns its `Chunks`. For arrays every chunk is checked before any work.

    Raises:
        ValueError: naming the argument: `y` given with a dataset, a
            dataset of infinite or unknown cardinality without
            `num_examples`, a dataset whose elements are not `x`, `(x, y)`
            or `(x, y, sample_weight)`, unbatched or of another shape than
            the model's input, or bad arrays.

    Example: `chunks = open_data(x, y, batch_size=500, num_examples=None,
    clip=(0.0, 1.0))`.
    """
    if num_examples is not None:
        num_examples = validation.check_int("num_examples", num_examples)
    if isinstance(data, tf.data.Dataset):
        return _open_dataset(data, y, batch_size, num_examples, clip, model)
    if isinstance(data, np.ndarray) and data.dtype.kind == "f":
        x = data
    elif tf.is_tensor(data) and data.dtype.is_floating:
        x = data.numpy()
    else:
        x = validation.check_x(data, clip).numpy()
    n = len(x) if num_examples is None else min(len(x), num_examples)
    if n == 0 or x.ndim < 2:
        validation.check_x(x[:n], clip)  # empty or unbatched: its message
    validation.check_input_shape(model, x)
    for i in range(0, n, batch_size):  # bad values fail before any work
        validation.check_x(x[i:min(n, i + batch_size)], clip)
    if y is not None:
        y = y.numpy() if tf.is_tensor(y) else np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(
                f"y must have one label per example of x ({len(x)}). "
                f"Received: y with shape {y.shape}")
        y = y[:n]
    return Chunks(x, y, batch_size, n, clip, streamed=False, model=model)


def _open_dataset(ds, y, batch_size, num_examples, clip, model):
    """`Chunks` over a dataset of batches (see `open_data`)."""
    if y is not None:
        raise ValueError(
            "y must be None when the data is a tf.data.Dataset (its elements "
            "carry the labels: (x, y) batches, or x alone for labels = "
            f"predictions). Received: y={validation.short(y)}")
    spec = ds.element_spec
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        ds = ds.map(lambda *e: (e[0], e[1]))
        spec = spec[0]
    elif not isinstance(spec, tf.TensorSpec):
        raise ValueError(
            "data must be a dataset of x batches or of (x, y) or (x, y, "
            f"sample_weight) tuples. Received: data with elements {spec}")
    expected = validation.declared_input_shape(model)
    if spec.shape.rank is not None and (spec.shape.rank < 2 or (
            expected is not None and validation.shape_fits(
                expected[1:], tuple(spec.shape), trailing=False))):
        raise ValueError(
            "data must yield batches of shape (batch, ...): call .batch(n) "
            "on the dataset. Received: data with elements of shape "
            f"{tuple(spec.shape)}")
    if spec.shape.rank is not None:
        validation.check_input_shape(model, spec.shape, "data")
    if not spec.dtype.is_floating:
        raise ValueError(
            "data must yield floating inputs. Received: data with dtype "
            f"{spec.dtype.name}")
    cardinality = int(ds.cardinality())
    if cardinality < 0 and num_examples is None:
        kind = ("infinite" if cardinality == tf.data.INFINITE_CARDINALITY
                else "unknown")
        raise ValueError(
            "num_examples must cap a dataset whose length is not known (or "
            "declare it: ds.apply(tf.data.experimental.assert_cardinality("
            f"n))). Received: data with {kind} cardinality and "
            "num_examples=None")
    # Batches may have any size: the examples are known only once read;
    # num_examples is a cap (the chunks stop there) and the progress target.
    return Chunks(ds, None, batch_size, num_examples, clip, streamed=True,
                  model=model)


def first_examples(chunks, count):
    """Reads chunks until `count` examples are in hand (or the data ends).

    Returns `(head, rest)`: the list of chunks read and the iterator that
    continues after them.

    Example: `head, rest = first_examples(chunks.iterate(), SAMPLE_SIZE)`.
    """
    head, seen = [], 0
    for x, y in chunks:
        head.append((x, y))
        seen += len(x)
        if seen >= count:
            break
    return head, chunks
