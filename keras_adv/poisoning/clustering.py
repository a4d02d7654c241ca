"""Activation clustering (Chen et al. 2018): poison forms its own cluster."""

import warnings

import numpy as np

from keras_adv import ops, reporting, validation
from keras_adv.poisoning import features
from keras_adv.poisoning.features import LONG_ROWS
from keras_adv.progress import Progress

REDUCTIONS = ("ica", "pca")


def activation_clustering(model, x, y, *, layer=None, n_components=10,
                          reduce="ica", size_threshold=0.35, seed=None,
                          batch_size=256, clip="auto", progress=None):
    """Flags training rows that form a small separate cluster in their class.

    Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by
    Activation Clustering", SafeAI@AAAI 2019 (arXiv 2018). For each class,
    the representations at `layer` are reduced to `n_components` dimensions
    (FastICA as in the paper, or PCA), split by 2-means (scikit-learn
    `KMeans`, `n_init=10`, fixed `seed`), and the smaller cluster is flagged
    when its share of the class is below `size_threshold` (the paper's
    "relative size" analysis; 0.35 is ART's default). A clean class splits
    into two large clusters and nothing is flagged.

    Args:
        model: the Keras model trained on (x, y).
        x: training images `(n, H, W, C)`.
        y: their labels, sparse or one-hot.
        layer: `None` (the input of the last layer) or a layer name.
        n_components: dimensions kept before clustering (the paper's 10;
            fewer when a class has fewer rows; a representation with at most
            this many non-constant features is clustered unreduced).
        reduce: `"ica"` or `"pca"`.
        size_threshold: a smaller cluster at most this share of its class is
            flagged, in (0, 0.5].
        seed: integer seed of ICA and k-means (`None`: NumPy's global
            generator).
        batch_size, clip: rows per forward pass and the data box, as
            `spectral_signature`.
        progress: stage lines on stderr (`activation_clustering:
            representations of 5000 rows`); `None`: on a terminal from
            `LONG_ROWS` rows.

    Returns:
        The flagged rows: sorted int64 indices into `x`.

    Raises:
        ValueError: a layer name that does not exist, `reduce` unknown,
            `n_components` not a positive integer, `size_threshold` outside
            (0, 0.5], bad images or labels, or labels and images of
            different lengths.

    Example:

    >>> flagged = activation_clustering(model, p.x, p.y)  # doctest: +SKIP
    >>> recall = np.isin(p.index, flagged).mean()  # doctest: +SKIP
    """
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    labels, _, _ = validation.check_label_array(y, len(x), ops.num_classes(model))
    n_components = validation.check_int("n_components", n_components)
    threshold = validation.check_number("size_threshold", size_threshold,
                                        positive=True, upper=0.5)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}. Received: "
                         f"reduce={validation.short(reduce)}")
    validation.numpy_rng(seed)
    batch_size = validation.check_int("batch_size", batch_size)
    features.feature_model(model, layer=layer)
    with Progress.resolve(progress, len(x), long=LONG_ROWS,
                          prefix="activation_clustering") as stage:
        stage(f"representations of {len(x)} rows")
        feats = features.extract(model, x, layer, batch_size)
        stage(f"{reduce} and 2-means of {len(np.unique(labels))} classes")
        return flag_clusters(feats, labels, n_components, reduce, threshold,
                             seed)


def flag_clusters(feats, labels, n_components=10, reduce="ica",
                  size_threshold=0.35, seed=None):
    """Rows flagged from representations `feats` (`activation_clustering`
    after the checks and the forward passes).

    Example: `flag_clusters(f, y)` is an int64 array of rows.
    """
    flagged = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        clusters = cluster_class(feats[rows], n_components, reduce, seed)
        sizes = np.bincount(clusters, minlength=2)
        small = int(np.argmin(sizes))
        if sizes[small] <= size_threshold * len(rows):
            flagged.append(rows[clusters == small])
    if not flagged:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate(flagged)).astype(np.int64)


def cluster_class(feats, n_components=10, reduce="ica", seed=0):
    """2-means cluster ids (0 or 1) of one class's representations after
    reduction to `n_components` dimensions.

    Example: `cluster_class(np.random.rand(50, 20)).shape` is `(50,)`.
    """
    missing = reporting.missing_module(("sklearn", "threadpoolctl"))
    if missing is not None:  # pragma: no cover - exercised by hand
        raise ImportError(
            f"activation_clustering needs scikit-learn ({missing} is not "
            "installed): pip install 'keras_adv[poisoning]'.")
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA, FastICA
    from threadpoolctl import threadpool_limits

    if len(feats) < 2:
        return np.zeros(len(feats), np.int64)
    keep = feats[:, feats.std(axis=0) > 0]
    dims = min(n_components, keep.shape[1], len(feats) - 1)
    if dims < 1:
        return np.zeros(len(feats), np.int64)
    # One BLAS/OpenMP thread: on these small matrices, thread start-up and
    # contention on a busy machine cost up to 25x (docs/poisoning.md).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # FastICA convergence notes
        if keep.shape[1] <= n_components:
            reducer = None  # already small enough: clustered as it is
        elif reduce == "ica":
            reducer = FastICA(n_components=dims, whiten="unit-variance",
                              max_iter=1000, tol=5e-3, random_state=seed)
        else:
            reducer = PCA(n_components=dims, random_state=seed)
        low = keep if reducer is None else reducer.fit_transform(keep)
        km = KMeans(n_clusters=2, n_init=10, random_state=seed)
        return km.fit_predict(low).astype(np.int64)
