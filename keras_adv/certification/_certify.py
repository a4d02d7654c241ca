"""Randomized smoothing: CERTIFY and PREDICT (Cohen, Rosenfeld and Kolter 2019).

The smoothed classifier is `g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)`.
Its class counts come from `sample_counts`, which draws the Gaussian noise
and counts the base classifier's predictions in one compiled graph: a
`tf.while_loop` over chunks of `batch_size` noisy inputs, each chunk a slice
of the flattened (example, sample) index, so chunks stay full whether `n` is
larger than `batch_size` (several chunks per example) or smaller (several
examples per chunk). A draw whose scores are not all finite votes for no
class: the loop counts such draws per example and `check_finite_votes`
raises after it, naming the example. The statistics (Clopper-Pearson
bound, binomial test) run in NumPy/SciPy on the counts.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf
from scipy import stats

from keras_adv import ops, validation
from keras_adv.attacks import core
from keras_adv.certification.thresholds import binomtest_passes
from keras_adv.progress import Progress

ABSTAIN = -1
LONG_DRAWS = 100_000  # noisy copies that make a long run (progress=None)


class Certificate(NamedTuple):
    """What `certify` returns, one entry per example.

    Attributes:
        prediction: int64 array `(batch,)`, the class of the smoothed
            classifier, or -1 where it abstains.
        radius: float64 array `(batch,)`, the certified L2 radius (0 where
            it abstains).
        counts: int64 array `(batch, classes)`, the per-class counts of the
            `n` certification samples (each row sums to `n`).

    Example:

    >>> c = Certificate(np.array([1]), np.array([0.5]), np.array([[3, 97]]))
    >>> int(c.counts.sum())
    100
    """

    prediction: np.ndarray
    radius: np.ndarray
    counts: np.ndarray


def certify(model, x, *, sigma, n0=100, n=100_000, alpha=0.001,
            batch_size=1000, seed=None, clip=None, progress=None):
    """Certified L2 robustness of the Gaussian-smoothed `model` (CERTIFY).

    Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via
    Randomized Smoothing", ICML 2019, Algorithm CERTIFY. For each example,
    `n0` noisy copies `x + N(0, sigma^2 I)` select the class c_A (the most
    frequent base prediction, the lowest index on ties); `n` fresh copies
    count k = #{f(x + noise) = c_A}; the one-sided Clopper-Pearson lower
    bound `p_lower = Beta(alpha; k, n - k + 1)` (`clopper_pearson_lower`)
    bounds P(f(x + noise) = c_A) with probability >= 1 - alpha. If
    `p_lower > 1/2` the smoothed classifier predicts c_A and no L2
    perturbation of norm < `sigma * Phi^-1(p_lower)` changes that; else it
    abstains (prediction -1, radius 0). Noise is not clipped to any input
    box (the theorem is about the unclipped Gaussian).

    Noise and counting run in one compiled graph per model and
    configuration (`sample_counts`); the model runs with `training=False`.

    Args:
        model: a Keras model or callable mapping a batch to class scores
            `(batch, classes)` (logits or probabilities: only the argmax is
            used), or one unit for a binary classifier (class 1 where the
            logit is > 0; counts have two columns).
        x: float array or tensor `(batch, ...)`, finite.
        sigma: noise standard deviation (> 0).
        n0: selection samples per example (>= 1).
        n: estimation samples per example (>= 1).
        alpha: failure probability of each certificate, in (0, 1).
        batch_size: noisy inputs per forward pass (>= 1).
        seed: integer for a repeatable certificate (same seed, same
            `batch_size`: same result); `None` draws from the global
            generator (`keras.utils.set_random_seed` governs it).
        clip: the data box `(min, max)` that `x` must lie in, or `None`
            (no check). The noise is never clipped.
        progress: stage lines on stderr (`certify: counting 100000 noise
            samples of 10 examples`, repeated while a stage runs); `None`:
            on a terminal from `LONG_DRAWS` noisy copies in all.

    Returns:
        A `Certificate(prediction, radius, counts)` of NumPy arrays.

    Raises:
        ValueError: sigma <= 0 or not finite, n0 or n < 1, alpha outside
            (0, 1), batch_size < 1, a bad seed, x empty, not finite or not
            of the model's input shape, a model output that is not
            `(batch, classes)`, or model scores with a NaN or an infinity
            on any noisy copy (`check_finite_votes`, naming the example;
            no certificate is returned).

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> x = np.zeros((3, 2), "float32")
    >>> cert = certify(model, x, sigma=0.5, n0=10, n=100, seed=0)
    >>> cert.counts.sum(axis=1).tolist()
    [100, 100, 100]
    """
    x, sigma, num_classes = check_inputs(
        model, x, sigma=sigma, batch_size=batch_size, clip=clip)
    n0 = validation.check_int("n0", n0)
    n = validation.check_int("n", n)
    alpha = validation.check_probability("alpha", alpha)
    seed_t = ops.seed_tensor(seed)
    with Progress.resolve(progress, int(x.shape[0]) * (n0 + n),
                          long=LONG_DRAWS, prefix="certify") as stage:
        stage(f"selecting classes from {n0} noise samples of {len(x)} "
              "examples")
        select = _counts(model, x, sigma, n0, batch_size, num_classes,
                         tf.random.experimental.stateless_fold_in(seed_t, 0))
        stage(f"counting {n} noise samples of {len(x)} examples")
        counts = _counts(model, x, sigma, n, batch_size, num_classes,
                         tf.random.experimental.stateless_fold_in(seed_t, 1))
    top = np.argmax(select, axis=1)
    k = counts[np.arange(len(top)), top]
    p_lower = clopper_pearson_lower(k, n, alpha=alpha)
    certified = p_lower > 0.5
    radius = np.zeros(len(top), np.float64)
    radius[certified] = sigma * stats.norm.ppf(p_lower[certified])
    prediction = np.where(certified, top, ABSTAIN).astype(np.int64)
    return Certificate(prediction, radius, counts)


def predict(model, x, *, sigma, n=100, alpha=0.001, batch_size=1000,
            seed=None, clip=None, progress=None):
    """The smoothed classifier's prediction with a binomial test (PREDICT).

    Cohen, Rosenfeld and Kolter 2019, Algorithm PREDICT: `n` noisy copies
    `x + N(0, sigma^2 I)` give class counts; with n_A >= n_B the two top
    counts, the prediction is the top class when the two-sided binomial test
    of n_A successes in n_A + n_B trials at p = 1/2
    (`scipy.stats.binomtest`) has a p-value <= `alpha`, else -1 (abstain).
    The returned class differs from the smoothed classifier's with
    probability at most `alpha`.

    Args:
        model: a Keras model or callable returning class scores.
        x: float array or tensor `(batch, ...)`, finite.
        sigma: noise standard deviation (> 0).
        n: samples per example (>= 1).
        alpha: error probability, in (0, 1).
        batch_size: noisy inputs per forward pass (>= 1).
        seed: integer for a repeatable result, or `None`.
        clip: the data box `x` must lie in, or `None` (as `certify`).
        progress: stage lines on stderr, as `certify`.

    Returns:
        An int64 NumPy array `(batch,)` of classes, -1 where it abstains.

    Raises:
        ValueError: as `certify`.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> predict(model, np.zeros((2, 2), "float32"), sigma=0.5, seed=0).shape
    (2,)
    """
    x, sigma, num_classes = check_inputs(
        model, x, sigma=sigma, batch_size=batch_size, clip=clip)
    n = validation.check_int("n", n)
    alpha = validation.check_probability("alpha", alpha)
    counts = _counted(progress, "predict", model, x, sigma, n, batch_size,
                      num_classes, seed)
    return _binomial_decision(counts, alpha)


def sample_counts(model, x, *, sigma, n, batch_size=1000, seed=None, clip=None,
                  progress=None):
    """Per-class counts of the base predictions on `n` noisy copies of each
    example of `x` (`x + N(0, sigma^2 I)`, unclipped).

    The sampling and counting run in one `tf.function` compiled once per
    model and configuration (cached weakly, as the attacks' loops): a
    `tf.while_loop` over chunks of `batch_size` noisy inputs taken from the
    flattened (example, sample) index, so every forward pass but the last
    is full. Chunk c draws its noise from the stateless generator at
    `fold_in(seed, c)`.

    Args:
        model: a Keras model or callable returning class scores.
        x: float array or tensor `(batch, ...)`, finite.
        sigma: noise standard deviation (> 0).
        n: samples per example (>= 1).
        batch_size: noisy inputs per forward pass (>= 1).
        seed: integer or `None`.
        clip: the data box `x` must lie in, or `None` (as `certify`).
        progress: stage lines on stderr, as `certify`.

    Returns:
        An int64 NumPy array `(batch, classes)` whose rows sum to `n`.

    Raises:
        ValueError: as `certify`.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> sample_counts(model, np.ones((2, 2), "float32"), sigma=0.1, n=50,
    ...               seed=0).sum(axis=1).tolist()
    [50, 50]
    """
    x, sigma, num_classes = check_inputs(
        model, x, sigma=sigma, batch_size=batch_size, clip=clip)
    n = validation.check_int("n", n)
    return _counted(progress, "sample_counts", model, x, sigma, n,
                    batch_size, num_classes, seed)


def clopper_pearson_lower(k, n, *, alpha):
    """One-sided Clopper-Pearson lower confidence bound on a binomial
    proportion: `Beta(alpha; k, n - k + 1)`, and 0 for k = 0.

    With probability >= 1 - alpha the true proportion is >= the bound
    (Clopper and Pearson 1934; the two-sided interval at level 2 alpha).

    Args:
        k: successes, an integer or integer array in [0, n].
        n: trials (>= 1).
        alpha: in (0, 1).

    Returns:
        A float64 NumPy array shaped like `k`.

    Example:

    >>> round(float(clopper_pearson_lower(1000, 1000, alpha=0.001)), 6)
    0.993116
    """
    n = validation.check_int("n", n)
    k_in = np.asarray(k)
    if k_in.dtype.kind not in "iuf" or not np.all(np.isfinite(k_in)) or (
            np.any(k_in != np.round(k_in))) or np.any(k_in < 0) or np.any(
            k_in > n):
        raise ValueError(
            f"k must hold integer counts in [0, n={n}]. Received: "
            f"k={validation.short(k if np.ndim(k) == 0 else k_in.tolist())}")
    alpha = validation.check_probability("alpha", alpha)
    k = k_in.astype(np.float64)
    safe = np.maximum(k, 1.0)
    bound = stats.beta.ppf(alpha, safe, n - safe + 1.0)
    return np.where(k > 0, bound, 0.0)


# --------------------------------------------------------------------------
# Checks and the compiled counting loop
# --------------------------------------------------------------------------


def check_inputs(model, x, *, sigma, batch_size, clip=None):
    """Validates the shared arguments (before any sampling); returns
    `(x, sigma, num_classes)`, 2 classes for a one-unit binary model.
    Example: `x, sigma, k = check_inputs(model, x, sigma=0.25,
    batch_size=1000)`."""
    validation.check_model(model)
    sigma = float(validation.check_number("sigma", sigma, positive=True))
    validation.check_int("batch_size", batch_size)
    x = validation.check_x(x, validation.check_clip(clip))
    validation.check_input_shape(model, x)
    return x, sigma, ops.num_classes(model, x)


def _counted(progress, name, model, x, sigma, n, batch_size, num_classes,
             seed):
    """`_counts` at `seed` under one stage line of `name`."""
    with Progress.resolve(progress, int(x.shape[0]) * n, long=LONG_DRAWS,
                          prefix=name) as stage:
        stage(f"counting {n} noise samples of {len(x)} examples")
        return _counts(model, x, sigma, n, batch_size, num_classes,
                       ops.seed_tensor(seed))


def _counts(model, x, sigma, n, batch_size, num_classes, seed):
    """Runs the cached compiled counting loop; returns int64 NumPy counts
    `(batch, classes)`, after `check_finite_votes`."""
    fn = core.compiled(model, count_loop, input_rank=x.shape.rank,
                       batch_size=int(batch_size), num_classes=num_classes)
    counts = core.run_relaxed(
        fn, x, tf.constant(sigma, tf.float32), tf.constant(n, tf.int64),
        tf.cast(seed, tf.int64)).numpy()
    check_finite_votes(counts[:, -1], n)
    return counts[:, :-1]


def check_finite_votes(nonfinite, n):
    """Raises `ValueError` naming the first example with a noisy copy whose
    model scores are not finite (NaN or inf votes for no class: counting it
    would certify on votes that do not exist).

    Example: `check_finite_votes(np.array([0, 0]), 100)` returns None.
    """
    bad = np.flatnonzero(nonfinite)
    if bad.size:
        i = int(bad[0])
        more = (f" (and {bad.size - 1} more example"
                f"{'s' if bad.size > 2 else ''})" if bad.size > 1 else "")
        raise ValueError(
            "model output must be finite on the noisy copies of x (a NaN or "
            "infinite score cannot vote for a class). Received: a model "
            f"output that is not finite on {int(nonfinite[i])} of {n} noisy "
            f"copies of example {i}{more}")


def count_loop(model, x, sigma, n, seed, *, batch_size, num_classes):
    """The counting computation on checked tensors (traceable, no checks).

    Chunk c holds the noisy inputs with flat indices
    `[c * batch_size, min((c + 1) * batch_size, batch * n))`; index j
    belongs to example `j // n`. Returns int64 counts `(batch, classes +
    1)`: the last column counts the copies whose scores are not all finite,
    which vote for no class.

    Example: `count_loop(model, x, 0.25, tf.constant(1000, tf.int64),
    tf.constant([0, 0], tf.int64), batch_size=1000, num_classes=10)`.
    """
    in_dtype = x.dtype
    x32 = tf.cast(x, tf.float32)
    batch = tf.shape(x, out_type=tf.int64)[0]
    total = batch * n
    size = tf.constant(batch_size, tf.int64)
    chunks = (total + size - 1) // size

    def body(c, counts):
        start = c * size
        index = start + tf.range(tf.minimum(size, total - start))
        example = index // n
        clean = tf.gather(x32, example)
        noise = tf.random.stateless_normal(
            tf.shape(clean), tf.random.experimental.stateless_fold_in(seed, c))
        scores = ops.model_logits(model, tf.cast(clean + sigma * noise,
                                                 in_dtype))
        pred = tf.where(
            tf.reduce_all(tf.math.is_finite(scores), axis=-1),
            tf.argmax(scores, axis=-1, output_type=tf.int64), num_classes)
        counts = tf.tensor_scatter_nd_add(
            counts, tf.stack([example, pred], axis=1),
            tf.ones_like(pred))
        return c + 1, counts

    zeros = tf.zeros(
        tf.stack([batch, tf.constant(num_classes + 1, tf.int64)]), tf.int64)
    _, counts = tf.while_loop(
        lambda c, _: c < chunks, body, [tf.constant(0, tf.int64), zeros])
    return counts


def _binomial_decision(counts, alpha):
    """PREDICT's decision on `(batch, classes)` counts (rows of finite votes,
    each summing to n >= 1): `binomtest(n_A, n_A + n_B, 0.5).pvalue <=
    alpha`, vectorised (`thresholds.binomtest_passes`, the same decisions)."""
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(len(counts))
    a = counts[rows, order[:, 0]]
    b = counts[rows, order[:, 1]] if counts.shape[1] > 1 else 0 * a
    passed = binomtest_passes(a, a + b, alpha)
    return np.where(passed, order[:, 0], ABSTAIN).astype(np.int64)
