"""Sample quality in a classifier's features: Frechet distance and class
coverage (mode collapse shows up in both)."""

import warnings
from typing import NamedTuple

import keras
import numpy as np
import scipy.linalg

from keras_adv import ops, validation
from keras_adv.progress import Progress

LONG_IMAGES = 10_000  # images that make a long run (progress=None)


def _features(feature_model, x, batch_size, counter):
    """Float64 feature vectors `(n, d)` of images `x`, in batches, each
    counted by `counter` (a `Progress`)."""
    parts = []
    for start in range(0, len(x), batch_size):
        out = feature_model(x[start:start + batch_size])
        if isinstance(out, keras.KerasTensor):  # pragma: no cover - guard
            raise ValueError("feature_model must run on arrays.")
        counter.step(min(batch_size, len(x) - start))
        parts.append(np.asarray(keras.ops.convert_to_numpy(out), np.float64))
    feats = np.concatenate(parts).reshape(len(x), -1)
    if not np.all(np.isfinite(feats)):
        raise ValueError(
            "feature_model must give finite features. Received: features "
            "with NaN or inf values"
        )
    return feats


def _as_batch(x, name):
    arr = np.asarray(x)
    if arr.ndim < 2 or len(arr) < 2:
        raise ValueError(
            f"{name} must be a batch of at least 2 inputs (rank >= 2). "
            f"Received: {name} with shape {arr.shape}"
        )
    return arr.astype(np.float32, copy=False)


def _sqrtm(matrix, strict=True):
    """`scipy.linalg.sqrtm(matrix)`; `None` when it is inaccurate (a
    singular matrix, non-finite entries) and `strict`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning)
                   for w in caught)
    if strict and (singular or not np.all(np.isfinite(root))):
        return None
    return root


def frechet_distance_from_moments(mu1, sigma1, mu2, sigma2):
    """The Frechet distance between two Gaussians N(mu1, S1) and N(mu2, S2).

    `||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))` (Heusel et al. 2017),
    with `scipy.linalg.sqrtm` and its real part (the imaginary part is
    numerical noise for covariance matrices); a singular product is
    regularised with `1e-6 I` on both covariances, as the authors' code
    (dead ReLU features make feature covariances singular).

    Args:
        mu1, mu2: means, shape `(d,)`.
        sigma1, sigma2: covariances, shape `(d, d)`.

    Returns:
        A float >= 0 (up to rounding).

    Raises:
        ValueError: shapes that do not match.

    Example:

    >>> frechet_distance_from_moments(np.zeros(2), np.eye(2),
    ...                               np.ones(2), np.eye(2))
    2.0
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "mu1, mu2, sigma1 and sigma2 must have shapes (d,), (d,), (d, d), "
            f"(d, d). Received: shapes {mu1.shape}, {mu2.shape}, "
            f"{sigma1.shape}, {sigma2.shape}"
        )
    covmean = _sqrtm(sigma1 @ sigma2)
    if covmean is None:
        offset = np.eye(d) * 1e-6
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset), strict=False)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2.0 * np.trace(covmean))


def frechet_distance(feature_model, real, fake, *, batch_size=256,
                     progress=None):
    """The Frechet distance between real and generated images (an FID).

    Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs trained by
    a two time-scale update rule converge to a local Nash equilibrium",
    NeurIPS 2017: fit a Gaussian to the features of each set and return
    `||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`. The features
    come from `feature_model`, any Keras model or callable mapping a batch
    of images to feature vectors, for example a classifier's penultimate
    layer (`keras_adv.models.feature_model(classifier)`), not Inception: the figures
    compare models and generators on the same features, not across papers.
    Covariances are unbiased (`ddof=1`), as the authors' code.

    Args:
        feature_model: callable `images -> (batch, d)` features (extra
            axes are flattened).
        real: real images, `(n_r, ...)`, n_r >= 2.
        fake: generated images, `(n_g, ...)` of the same trailing shape.
        batch_size: images per `feature_model` call (>= 1).
        progress: count the images through `feature_model` on stderr
            (`frechet_distance: features of 512/2000 images`); `None`: on a
            terminal from `LONG_IMAGES` images.

    Returns:
        A float >= 0 (0 for identical sets, up to rounding).

    Raises:
        ValueError: fewer than 2 images in a set, mismatched shapes,
            a bad `batch_size`, or non-finite features.

    Example:

    >>> flat = keras.layers.Flatten()
    >>> x = np.random.default_rng(0).random((50, 4, 4, 1), "float32")
    >>> abs(frechet_distance(flat, x, x)) < 1e-6
    True
    """
    real, fake = _as_batch(real, "real"), _as_batch(fake, "fake")
    validation.check_input_shape(feature_model, real, "real")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"fake must have the trailing shape of real {real.shape[1:]}. "
            f"Received: fake with shape {fake.shape}"
        )
    batch_size = validation.check_int("batch_size", batch_size, 1)
    moments, total = [], len(real) + len(fake)
    with Progress.resolve(progress, total, long=LONG_IMAGES, total=total,
                          counts=True, prefix="frechet_distance",
                          label="features of {} images") as counter:
        for x in (real, fake):
            feats = _features(feature_model, x, batch_size, counter)
            moments += [feats.mean(axis=0),
                        np.cov(feats, rowvar=False, ddof=1)]
    return frechet_distance_from_moments(*moments)


class ClassCoverage(NamedTuple):
    """What `class_coverage` returns.

    Attributes:
        shares: float array `(num_classes,)`, the share of images per
            predicted class (sums to 1).
        confidence: mean max-probability.
        min_share: the smallest share.
        counts: int array of predictions per class.

    Example: `class_coverage(clf, fake).min_share`.
    """

    shares: np.ndarray
    confidence: float
    min_share: float
    counts: np.ndarray


def class_coverage(classifier, fake, *, batch_size=256):
    """How generated images spread over a classifier's classes.

    Each image is assigned the class the classifier predicts. A generator
    that covers the data gives shares near the data's class shares (0.1
    each on mnist5k); mode collapse gives some classes near 0. Confidence
    is the mean max-probability (softmax of the classifier's logits;
    outputs that are already distributions, rows >= 0 summing to 1, are
    used as they are): blurry or off-manifold samples give low confidence.

    Args:
        classifier: callable `images -> (batch, num_classes)` logits or
            probabilities (a Keras classifier).
        fake: generated images, `(n, ...)`, n >= 1.
        batch_size: images per classifier call (>= 1).

    Returns:
        A `ClassCoverage(shares, confidence, min_share, counts)`.

    Raises:
        ValueError: an empty `fake`, a bad `batch_size`, classifier
            outputs that are not `(n, num_classes)` or not finite.

    Example:

    >>> clf = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> clf.layers[0].set_weights([np.eye(2, dtype="float32"), np.zeros(2)])
    >>> cov = class_coverage(clf, np.array([[1., 0.], [0., 1.]]))
    >>> cov.shares.tolist(), cov.counts.tolist()
    ([0.5, 0.5], [1, 1])
    """
    fake = np.asarray(fake)
    if fake.ndim < 2 or len(fake) == 0:
        raise ValueError(
            "fake must be a non-empty batch of inputs (rank >= 2). Received: "
            f"fake with shape {fake.shape}"
        )
    batch_size = validation.check_int("batch_size", batch_size, 1)
    validation.check_input_shape(classifier, fake, "fake")
    probs = ops.probabilities(
        classifier, fake.astype(np.float32, copy=False), batch_size,
        name="classifier")
    counts = np.bincount(probs.argmax(axis=-1), minlength=probs.shape[1])
    shares = counts / counts.sum()
    return ClassCoverage(shares=shares,
                         confidence=float(probs.max(axis=-1).mean()),
                         min_share=float(shares.min()), counts=counts)
