"""Spectral signatures (Tran et al. 2018): poison stands out along the top
singular direction of a class's centred representations."""

import contextlib

import numpy as np

from keras_adv import ops, validation
from keras_adv.poisoning import features
from keras_adv.poisoning.features import LONG_ROWS
from keras_adv.progress import Progress


def spectral_scores(feats):
    """Outlier scores of one class: squared projection of each centred row on
    the top right-singular vector of the centred matrix.

    Args:
        feats: array `(n, d)` of representations of one class.

    Returns:
        float64 scores `(n,)`, >= 0.

    Example:

    >>> f = np.zeros((4, 2)); f[0] = [3.0, 0.0]
    >>> spectral_scores(f).round(2).tolist()
    [5.06, 0.56, 0.56, 0.56]
    """
    f = np.asarray(feats, dtype=np.float64)
    centred = f - f.mean(axis=0, keepdims=True)
    if len(f) < 2 or not np.any(centred):
        return np.zeros(len(f))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[0]) ** 2


def spectral_signature(model, x, y, *, expected_fraction, layer=None,
                       remove_factor=1.5, batch_size=256, clip="auto",
                       progress=None):
    """Flags training rows whose representation carries a spectral signature.

    Tran, Li and Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS
    2018. For each class (by the given labels), the representations at
    `layer` are centred and the top right-singular vector found; each row
    scores its squared projection on it, and the
    `floor(remove_factor * expected_fraction * n_class)` highest-scoring rows
    of each class are flagged. `expected_fraction` is the largest share of a
    class expected to be poison: 5% of the whole set relabelled to one class
    of ten is about a third of that class.

    Args:
        model: the Keras model trained on (x, y).
        x: training images `(n, H, W, C)`.
        y: their labels, sparse or one-hot.
        expected_fraction: expected poisoned share within a class, in [0, 1].
        layer: `None` (the input of the last layer) or a layer name.
        remove_factor: how many times `expected_fraction` to flag (> 0; the
            paper's 1.5).
        batch_size: rows per forward pass.
        clip: the data box `x` must lie in, or `"auto"` (`(0, 255)` for
            integer images, `(0, 1)` for floating ones).
        progress: stage lines on stderr (`spectral_signature:
            representations of 5000 rows`); `None`: on a terminal from
            `LONG_ROWS` rows.

    Returns:
        Sorted int64 indices into `x` of the flagged rows.

    Raises:
        ValueError: `expected_fraction` outside [0, 1], `remove_factor` not
            > 0, a layer name that does not exist, bad images or labels, or
            labels and images of different lengths.

    Example:

    >>> flagged = spectral_signature(model, p.x, p.y, expected_fraction=0.35)
    ... # doctest: +SKIP
    >>> recall = np.isin(p.index, flagged).mean()  # doctest: +SKIP
    """
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    labels, _, _ = validation.check_label_array(y, len(x), ops.num_classes(model))
    frac = validation.check_rate(expected_fraction, "expected_fraction")
    factor = validation.check_number("remove_factor", remove_factor, positive=True)
    batch_size = validation.check_int("batch_size", batch_size)
    features.feature_model(model, layer=layer)  # checks the layer before work
    with Progress.resolve(progress, len(x), long=LONG_ROWS,
                          prefix="spectral_signature") as stage:
        stage(f"representations of {len(x)} rows")
        feats = features.extract(model, x, layer, batch_size)
        stage(f"spectral scores of {len(np.unique(labels))} classes")
        with _one_thread():  # small SVDs: threads only add contention
            return flag_classes(feats, labels, factor, frac)


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional (comes with scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(1)


def flag_classes(feats, labels, factor, frac):
    """Rows flagged from representations `feats`: `frac` is one expected
    share for every class, or a dict `{class: share}` (classes left out are
    not scanned).

    Example: `flag_classes(f, y, 1.5, {0: 0.3})` scans class 0 only.
    """
    flagged = []
    for c in np.unique(labels):
        share = frac.get(int(c), 0.0) if isinstance(frac, dict) else frac
        rows = np.flatnonzero(labels == c)
        count = min(len(rows), int(np.floor(factor * share * len(rows))))
        if count == 0:
            continue
        scores = spectral_scores(feats[rows])
        order = np.argsort(-scores, kind="stable")
        flagged.append(rows[order[:count]])
    if not flagged:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate(flagged)).astype(np.int64)
