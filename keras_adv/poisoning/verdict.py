"""A per-class test for a poisoned sub-population, with a stated
false-alarm rate.

Per class, the representations are centred and reduced to their top 10,
then top 20, principal components, whitened (unit variance each), and split
by 2-means. The statistic is the ratio of the split's separation (the gap
between the two cluster means along the line joining them, over the pooled
within-cluster spread on that line) to its mean under a single Gaussian of
the same size and dimension, the larger of the two (`DIMS`). A poison that
the model learned forms its own cluster, well apart from the class: ratios
of 2.4 to 8.7 on mnist5k at a 5% or 10% rate, where the classes of 36 clean
models gave 1.0 to 1.98. The p-value of a ratio is the upper tail of a
Gumbel law (`NULL_LOCATION`, `NULL_SCALE`) fitted so that the largest ratio
of a clean model's ten classes follows the law fitted to those 36 maxima
(location 1.6146, scale 0.0703, by maximum likelihood; per class, the
location less `scale * ln 10`): the test is calibrated on the worst class
of clean models, where false alarms come from (docs/poisoning.md). A class
is suspect when its p-value is at most `alpha / classes` (Bonferroni over
the classes tested). Of the two clusters, the poison is the one whose
members spread more around their mean: its rows come from several source
classes (or were pushed towards them), where the clean rows are one class.

A separated class is then asked whether its poison cluster behaves as a
trigger does (`trigger_test`): blended with images of other classes (STRIP's
superimposition), rows that carry a trigger keep their class (low entropy),
the rows of a natural sub-population lose it like the rest of their class.
The class is suspect only when the cluster's median blend entropy is at
most `ENTROPY_RATIO` of the rest of the class's and a one-sided Mann-Whitney
test puts it lower at the same level. Natural sub-populations separate as
well as poison does on some data (scikit-learn's digits: classes 1 and 9 of
every clean model, ratios up to 4.65); their clusters keep 0.79 to 1.16 of the
rest's entropy, where every backdoor cluster measured kept at most 0.17.
"""

import functools

import numpy as np

DIMS = (10, 20)
MIN_ROWS = 50
ENTROPY_RATIO = 0.5
NULL_DRAWS = 16
# Gumbel law of the ratio on clean classes (docs/poisoning.md).
NULL_LOCATION = 1.453
NULL_SCALE = 0.0703


def whiten(feats, dims=10):
    """Top `dims` whitened principal-component scores of one class.

    Example: `whiten(np.random.rand(100, 20)).std(axis=0)` is about 1.
    """
    f = np.asarray(feats, np.float64)
    f = f[:, f.std(axis=0) > 1e-9 * (1.0 + np.abs(f).max())]
    centred = f - f.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = int(min(dims, np.sum(s > 1e-9 * (s[0] if len(s) else 0))))
    return u[:, :k] * np.sqrt(len(f) - 1)


def split_1d(v):
    """The 2-means split of a 1-D sample (exact): True above the cut.

    Example: `split_1d(np.array([0., .1, 5., 5.2])).tolist()` is
    `[False, False, True, True]`.
    """
    order = np.argsort(v, kind="stable")
    s = v[order]
    n = len(s)
    left = np.cumsum(s)[:-1]
    k = np.arange(1, n)
    gain = left**2 / k + (s.sum() - left) ** 2 / (n - k)
    cut = int(np.argmax(gain)) + 1
    out = np.zeros(n, bool)
    out[order[cut:]] = True
    return out


def two_means(z, iters=50):
    """2-means of `z` (n, k), started from the exact 1-D split of each
    column and from the 2-means of the first 5 columns, kept at the lowest
    within-cluster sum of squares.

    Example: `two_means(np.random.rand(30, 3)).dtype` is `bool`.
    """
    best, best_sse = None, np.inf
    starts = [split_1d(z[:, j]) for j in range(z.shape[1])]
    if z.shape[1] > 5:
        starts.append(two_means(z[:, :5], iters))
    for lab in starts:
        for _ in range(iters):
            if lab.all() or not lab.any():
                break
            a, b = z[~lab].mean(axis=0), z[lab].mean(axis=0)
            new = z @ (b - a) > (b @ b - a @ a) / 2
            if np.array_equal(new, lab):
                break
            lab = new
        if lab.all() or not lab.any():
            continue
        sse = (((z[lab] - z[lab].mean(axis=0)) ** 2).sum()
               + ((z[~lab] - z[~lab].mean(axis=0)) ** 2).sum())
        if sse < best_sse:
            best, best_sse = lab, sse
    return np.zeros(len(z), bool) if best is None else best


def separation(z, lab):
    """Gap between the two cluster means along the line joining them, over
    the pooled within-cluster standard deviation on that line.

    Example: two unit clusters 6 apart give about 6.
    """
    a, b = z[~lab].mean(axis=0), z[lab].mean(axis=0)
    gap = np.linalg.norm(b - a)
    if gap == 0 or lab.all() or not lab.any():
        return 0.0
    p = z @ ((b - a) / gap)
    within = (((p[lab] - p[lab].mean()) ** 2).sum()
              + ((p[~lab] - p[~lab].mean()) ** 2).sum())
    return float(gap / np.sqrt(within / (len(p) - 2) + 1e-300))


@functools.lru_cache(maxsize=256)
def gaussian_reference(n, k):
    """Mean separation of the 2-means split of `n` draws of a standard
    Gaussian in `k` dimensions (whitened as a class is), over `NULL_DRAWS`
    fixed draws.

    Example: `gaussian_reference(600, 10)` is about 3.0.
    """
    rng = np.random.RandomState(1000 * n + k)
    out = []
    for _ in range(NULL_DRAWS):
        z = whiten(rng.normal(size=(n, k)), k)
        out.append(separation(z, two_means(z)))
    return float(np.mean(out))


def p_value(ratio):
    """Upper tail of the clean-class Gumbel law at `ratio`.

    Example: `p_value(1.453)` is about 0.63; `p_value(2.0)` about 4e-4.
    """
    t = (ratio - NULL_LOCATION) / NULL_SCALE
    return float(-np.expm1(-np.exp(-t)))


def class_statistic(feats):
    """The test of one class: `(ratio, p_value, poison, score)`.

    `poison` marks the 2-means cluster taken as the poison (the one whose
    members spread more around their mean in `feats`), `score` ranks rows
    towards it (projection on the line from the other cluster's mean).

    Example: `class_statistic(np.random.rand(200, 16))[1] > 0.01` is True.
    """
    feats = np.asarray(feats, np.float64)
    ratio, z, lab = 0.0, None, np.zeros(len(feats), bool)
    full = whiten(feats, max(DIMS))  # one SVD: fewer dims are its columns
    for dims in DIMS:
        zd = full[:, :dims]
        split = two_means(zd) if zd.shape[1] else lab
        if split.all() or not split.any():
            continue
        r = separation(zd, split) / gaussian_reference(len(zd), zd.shape[1])
        if r > ratio:
            ratio, z, lab = r, zd, split
    if z is None:
        return 0.0, 1.0, lab, np.zeros(len(feats))
    if _spread(feats[~lab]) > _spread(feats[lab]):
        lab = ~lab
    score = z @ (z[lab].mean(axis=0) - z[~lab].mean(axis=0))
    return ratio, p_value(ratio), lab, score


def _spread(f):
    return np.sqrt(((f - f.mean(axis=0)) ** 2).sum(axis=1).mean())


def trigger_test(entropy, poison, level):
    """Whether a class's poison cluster keeps its class under blending as
    a trigger does: `(ratio, p_value, confirmed)`, `ratio` the cluster's
    median entropy over the rest's (1.0 when both are 0), `p_value` the
    one-sided Mann-Whitney test of the cluster's entropies being lower.

    Example: `trigger_test(np.r_[np.zeros(20), np.ones(80)],
    np.arange(100) < 20, 0.01)[2]` is True.
    """
    from scipy.stats import mannwhitneyu

    inside, rest = np.median(entropy[poison]), np.median(entropy[~poison])
    ratio = float(inside / rest) if rest > 0 else (1.0 if inside == 0
                                                   else np.inf)
    p = float(mannwhitneyu(entropy[poison], entropy[~poison],
                           alternative="less").pvalue)
    return ratio, p, bool(ratio <= ENTROPY_RATIO and p <= level)


def decide_classes(feats, labels, classes, *, alpha, expected_fraction=None,
                   entropy=None):
    """The verdict on every class: `{"<class>": {...}}`.

    Each entry holds `rows` (the class's size), `statistic`, `p_value`,
    `separated` (the p-value at most the class's level), `entropy_ratio`
    and `entropy_p_value` (`trigger_test`, for separated classes),
    `suspect` (separated and confirmed by the trigger test),
    `estimated_fraction` (the poison cluster's share of the class, for
    suspect classes), `flagged` (rows recommended for removal: the poison
    cluster, or the `ceil(expected_fraction * rows)` rows nearest it when
    `expected_fraction` is given) and `abstained` (why a class was not
    tested: fewer than `MIN_ROWS` rows, or None). Classes are tested at
    `alpha / tested` each (Bonferroni). `entropy(c, rows)` gives the blend
    entropies of a class's rows; None decides by the separation alone.

    Example: `decide_classes(f, y, range(10), alpha=0.05)["0"]["suspect"]`.
    """
    out, tested = {}, []
    for c in classes:
        rows = np.flatnonzero(labels == c)
        entry = {"rows": int(len(rows)), "statistic": None, "p_value": None,
                 "separated": False, "entropy_ratio": None,
                 "entropy_p_value": None, "suspect": False,
                 "estimated_fraction": None, "flagged": [], "abstained": None}
        if len(rows) < MIN_ROWS:
            entry["abstained"] = (f"{len(rows)} rows, fewer than the "
                                  f"{MIN_ROWS} the test needs")
        else:
            ratio, p, poison, score = class_statistic(feats[rows])
            entry.update(statistic=float(ratio), p_value=float(p))
            tested.append((c, entry, rows, poison, score))
        out[str(int(c))] = entry
    level = alpha / max(1, len(tested))
    for c, entry, rows, poison, score in tested:
        if entry["p_value"] > level:
            continue
        entry["separated"] = True
        if entropy is not None:
            ratio, p, confirmed = trigger_test(
                np.asarray(entropy(c, rows)), poison, level)
            entry.update(entropy_ratio=ratio, entropy_p_value=p)
            if not confirmed:
                continue
        entry["suspect"] = True
        entry["estimated_fraction"] = float(poison.mean())
        if expected_fraction is not None:
            count = int(np.ceil(expected_fraction * len(rows)))
            poison = np.zeros(len(rows), bool)
            poison[np.argsort(-score, kind="stable")[:count]] = True
        entry["flagged"] = [int(i) for i in np.sort(rows[poison])]
    return out
