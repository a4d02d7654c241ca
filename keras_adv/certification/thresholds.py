"""PREDICT's two-sided binomial test at p = 1/2, vectorised, and as a table.

`binomtest_pvalues` gives `scipy.stats.binomtest(a, m, 0.5).pvalue` for
arrays of counts, bit for bit: it makes the same SciPy calls as `binomtest`
(`binom.pmf`, `binom.cdf`, `binom.sf`) on the same numbers. `binomtest`
sums the probabilities of the outcomes no more likely than the observed one,
with a relative tolerance of 1 + 1e-7, and finds the last such outcome on
the other side of the mode by a binary search over `binom.pmf`; at p = 1/2
that outcome is the mirror image m - a, which is checked here (the pmf at
m - a is <= pmf(a) * (1 + 1e-7) < the pmf at m - a + 1) instead of
searched. Where that check cannot be made (a pmf below 1e-290, far in the
tails) `binomtest` itself is called.

`decision_thresholds` turns the test into a table indexed by the trial count
m = n_A + n_B: a walk from a normal-approximation guess to the boundary,
vectorised over every m at once (a few passes over O(n) entries instead of
a `binomtest` per count).
"""

import base64
import zlib

import numpy as np
from scipy import stats

from keras_adv import validation

_RERR = 1 + 1e-7  # binomtest's relative tolerance on "no more likely"
_TINY = 1e-290  # below it the pmf may lose the strict order the search uses


def binomtest_pvalues(a, m):
    """`scipy.stats.binomtest(a, m, 0.5).pvalue` (two-sided), elementwise.

    Args:
        a: the larger count, an integer array with m / 2 <= a <= m.
        m: trials, an integer array (>= 1) broadcastable with `a`.

    Returns:
        A float64 array of p-values, equal to `binomtest`'s bit for bit.

    Example:

    >>> bool(binomtest_pvalues(9, 10) == stats.binomtest(9, 10).pvalue)
    True
    """
    a, m = np.broadcast_arrays(np.asarray(a, np.float64),
                               np.asarray(m, np.float64))
    mirror = m - a
    limit = np.floor(0.5 * m)
    tolerated = stats.binom.pmf(a, m, 0.5) * _RERR
    low = stats.binom.pmf(mirror, m, 0.5)
    above = np.where(mirror + 1 <= limit,
                     stats.binom.pmf(np.minimum(mirror + 1, limit), m, 0.5),
                     np.inf)
    exact = (low >= _TINY) & (low <= tolerated) & (above > tolerated)
    pvalue = stats.binom.cdf(mirror, m, 0.5) + stats.binom.sf(a - 1, m, 0.5)
    # binomtest's shortcut for a = m / 2, and its cap at 1
    pvalue = np.where(2 * a == m, 1.0, np.minimum(1.0, pvalue))
    for i in np.flatnonzero(~exact & (2 * a != m)):
        pvalue.flat[i] = stats.binomtest(int(a.flat[i]), int(m.flat[i]),
                                         0.5).pvalue
    return pvalue


def decision_thresholds(n, *, alpha):
    """PREDICT's binomial test as a table: entry m (0 <= m <= n) is the
    smallest top count n_A > m / 2 whose two-sided test of n_A successes in
    m trials at p = 1/2 has p-value <= alpha (n + 1 when none has).

    The test's p-value falls as n_A grows past m / 2, so "n_A >= table[n_A
    + n_B]" is the same decision as `certification.predict`'s
    `scipy.stats.binomtest(n_A, n_A + n_B, 0.5).pvalue <= alpha`. Cost:
    about two vectorised binomial tails per entry, from a normal
    approximation walked to the exact boundary (`binomtest_pvalues` where a
    tail is within 1e-9 of alpha); n = 100 000 builds in a fraction of a
    second (`docs/certification.md`).

    Args:
        n: the largest trial count (>= 1).
        alpha: the test's level, in (0, 1).

    Returns:
        An int32 NumPy array of n + 1 thresholds.

    Raises:
        ValueError: n not an integer >= 1, alpha outside (0, 1).

    Example:

    >>> decision_thresholds(10, alpha=0.05).tolist()[10]
    9
    """
    n = validation.check_int("n", n)
    alpha = validation.check_probability("alpha", alpha)
    m = np.arange(n + 1, dtype=np.int64)
    low = m // 2 + 1
    z = stats.norm.isf(alpha / 2)
    guess = np.ceil(m / 2 + z * np.sqrt(m) / 2 + 0.5).astype(np.int64)
    table = np.clip(guess, low, m + 1)

    def passes(a, idx):
        return binomtest_passes(a, m[idx], alpha)

    todo = np.flatnonzero(table <= m)
    while todo.size:  # up while the test fails at table[m]
        todo = todo[~passes(table[todo], todo)]
        table[todo] += 1
        todo = todo[table[todo] <= m[todo]]
    todo = np.flatnonzero(table - 1 >= low)
    while todo.size:  # down while it passes at table[m] - 1
        todo = todo[passes(table[todo] - 1, todo)]
        table[todo] -= 1
        todo = todo[table[todo] - 1 >= low[todo]]
    table[table > m] = n + 1
    return table.astype(np.int32)


def binomtest_passes(a, m, alpha):
    """`binomtest_pvalues(a, m) <= alpha` for a top count `a` of `m`
    trials (`a >= m / 2`), the exact p-values computed only
    where twice the upper tail (the two-sided p-value up to rounding, a
    relative 1e-13) is too close to alpha, or too small, to decide."""
    estimate = 2.0 * stats.binom.sf(a - 1, m, 0.5)
    result = estimate <= alpha
    unsure = (np.abs(estimate - alpha) <= 1e-9 * alpha) | (estimate < 1e-250)
    if unsure.any():
        result[unsure] = binomtest_pvalues(a[unsure], m[unsure]) <= alpha
    return result


def encode_thresholds(table):
    """A threshold table as a short ASCII string (zlib of its steps, base64),
    for a model's config.

    Example: `decode_thresholds(encode_thresholds(t), len(t) - 1)`.
    """
    steps = np.diff(np.asarray(table, np.int64), prepend=0).astype("<i4")
    return base64.b64encode(zlib.compress(steps.tobytes(), 9)).decode("ascii")


def decode_thresholds(text, n):
    """The table of `encode_thresholds`, checked against its shape: n + 1
    entries, entry m either in (m / 2, m] or n + 1.

    Raises:
        ValueError: text that is not such a table.

    Example: `decode_thresholds(encode_thresholds(t), len(t) - 1)`.
    """
    size = 4 * (n + 1)
    try:
        raw = zlib.decompressobj().decompress(
            base64.b64decode(text, validate=True), size + 1)
    except (ValueError, TypeError, zlib.error):
        raw = b""
    table = None
    if len(raw) == size:
        table = np.cumsum(np.frombuffer(raw, "<i4").astype(np.int64))
        m = np.arange(n + 1)
        if not np.all((table == n + 1) | ((2 * table > m) & (table <= m))):
            table = None
    if table is None:
        raise ValueError(
            f"thresholds must be the decision table of n={n} as get_config "
            f"writes it. Received: thresholds={str(text)[:40]!r}")
    return table.astype(np.int32)
