"""Poisoned training sets: BadNets backdoors and label flipping."""

from typing import NamedTuple

import numpy as np

from keras_adv import validation
from keras_adv.poisoning import triggers


class Poisoned(NamedTuple):
    """A poisoned copy of a data set.

    Attributes:
        x: the images with the poisoned rows changed (`None` from
            `label_flip`, which sees labels only).
        y: the labels, in the caller's format (sparse or one-hot).
        index: sorted int64 positions of the poisoned rows.

    Example:

    >>> p = backdoor(x, y, target=0, rate=0.05, seed=0)  # doctest: +SKIP
    >>> x_clean_rows = np.delete(p.x, p.index, axis=0)  # doctest: +SKIP
    """

    x: object
    y: np.ndarray
    index: np.ndarray


def backdoor(x, y, *, target, rate, trigger="patch", seed=None, source=None,
             num_classes=None, clip="auto"):
    """BadNets backdoor: stamps a trigger on some rows and relabels them.

    Gu et al. 2017, "BadNets: Identifying Vulnerabilities in the Machine
    Learning Model Supply Chain" (patch trigger); Chen et al. 2017 (blended
    trigger). `round(rate * len(x))` rows are drawn without replacement from
    the rows of class `source` (or, with `source=None`, from every class
    other than `target`), get the trigger (see `apply_trigger`) and the
    label `target`. A model trained on the result learns to send any
    triggered image to `target`.

    Args:
        x: training images `(n, H, W, C)`.
        y: labels, sparse `(n,)`/`(n, 1)` or one-hot `(n, classes)`.
        target: the class the trigger should produce.
        rate: share of the whole training set to poison, in [0, 1].
        trigger: `"patch"`, `"blend"` or a `Trigger`.
        seed: integer seed of the row choice; `None` draws from NumPy's
            global generator (set by `keras.utils.set_random_seed`).
        source: poison only rows of this class (`None`: all but `target`).
        num_classes: number of classes (`None`: the one-hot width or
            `max(y) + 1`).
        clip: the data box `(min, max)`, or `"auto"`: `(0, 255)` for
            integer images (uint8), `(0, 1)` for floating ones. `x` must lie
            in it; the trigger is stamped in its units (the patch at its
            maximum), and `x`'s dtype is kept.

    Returns:
        `Poisoned(x, y, index)`: new arrays; `x` and `y` are not modified.

    Raises:
        ValueError: a rate outside [0, 1] or asking for more rows than the
            candidate classes hold, a target or source out of range or equal,
            an empty source class, an unknown trigger or one that does not
            fit the images, labels and images of different lengths.

    Example:

    >>> (x, y), _ = keras_adv.datasets.load("mnist5k")  # doctest: +SKIP
    >>> p = backdoor(x, y, target=0, rate=0.05, seed=0)  # doctest: +SKIP
    >>> len(p.index), int(p.y[p.index[0]])  # doctest: +SKIP
    (200, 0)
    """
    x = validation.check_images(x, clip=clip)
    box = validation.data_box(x, clip)
    labels, k, _ = validation.check_label_array(y, len(x), num_classes)
    target = validation.check_class(target, "target", k)
    source = validation.check_class(source, "source", k, allow_none=True)
    rate = validation.check_rate(rate)
    if source is not None and source == target:
        raise ValueError(f"source must differ from target={target}. "
                         f"Received: source={source}")
    trig = triggers.resolve(trigger, x.shape[1:])
    rng = validation.numpy_rng(seed)
    pool = np.flatnonzero(labels == source if source is not None
                          else labels != target)
    if source is not None and len(pool) == 0:
        raise ValueError(f"source must be a class present in y. Received: "
                         f"source={source} (no rows)")
    index = _choose(rng, pool, int(round(rate * len(x))), rate)
    x_out = np.array(x, copy=True)
    x_out[index] = trig.apply(x[index], clip=box) if len(index) else x_out[index]
    return Poisoned(x_out, _relabel(y, index, target), index)


def label_flip(y, *, rate, num_classes, seed=None):
    """Random label flipping: `round(rate * n)` labels changed to another
    class drawn uniformly.

    The simplest poisoning attack (Biggio et al. 2011, "Support Vector
    Machines Under Adversarial Label Noise"); a baseline for the detectors.

    Args:
        y: labels, sparse `(n,)`/`(n, 1)` or one-hot `(n, num_classes)`.
        rate: share of labels to flip, in [0, 1].
        num_classes: number of classes (>= 2).
        seed: integer seed; `None` draws from NumPy's global generator.

    Returns:
        `Poisoned(None, y, index)`: new labels in `y`'s format; every row in
        `index` has a label different from the original.

    Raises:
        ValueError: a rate outside [0, 1], fewer than 2 classes, labels out
            of range or not labels.

    Example:

    >>> p = label_flip(np.zeros(10, "int64"), rate=0.3, num_classes=3, seed=0)
    >>> len(p.index), bool(np.all(p.y[p.index] != 0))
    (3, True)
    """
    rate = validation.check_rate(rate)
    num_classes = validation.check_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError("num_classes must be >= 2 to flip labels. Received: "
                         f"num_classes={num_classes}")
    labels, k, _ = validation.check_label_array(y, None, num_classes)
    rng = validation.numpy_rng(seed)
    index = _choose(rng, np.arange(len(labels)),
                    int(round(rate * len(labels))), rate)
    shift = rng.integers(1, k, size=len(index))
    new = (labels[index] + shift) % k
    out = np.array(y, copy=True)
    if out.ndim == 2 and out.shape[1] > 1:
        out[index] = np.eye(k, dtype=out.dtype)[new]
    else:
        out.reshape(len(labels))[index] = new
    return Poisoned(None, out, index)


def _choose(rng, pool, count, rate):
    if count > len(pool):
        raise ValueError(
            f"rate asks for {count} rows but only {len(pool)} rows can be "
            f"poisoned. Received: rate={rate}"
        )
    return np.sort(rng.choice(pool, size=count, replace=False)).astype(
        np.int64)


def _relabel(y, index, target):
    out = np.array(y, copy=True)
    if out.ndim == 2 and out.shape[1] > 1:
        out[index] = 0
        out[index, target] = 1
    else:
        out.reshape(len(out))[index] = target
    return out
