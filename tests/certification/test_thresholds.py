"""PREDICT's binomial test as a table: the same decisions as
`scipy.stats.binomtest`, for every trial count up to 10 000, built in
O(n) vectorised work."""

import time

import numpy as np
import pytest
from scipy import stats

from keras_adv.certification.thresholds import (
    binomtest_pvalues,
    decision_thresholds,
    decode_thresholds,
    encode_thresholds,
)


def scipy_pvalues(k, m):
    """`scipy.stats.binomtest(k, m, 0.5).pvalue` for m / 2 <= k <= m,
    transcribed line by line from SciPy's two-sided branch (its binary
    search for the last outcome below the mode that is no more likely than
    k, with the relative tolerance 1 + 1e-7) and vectorised."""
    k, m = np.broadcast_arrays(np.asarray(k, float), np.asarray(m, float))
    d = stats.binom.pmf(k, m, 0.5) * (1 + 1e-7)
    lo, hi = np.zeros_like(m), np.floor(0.5 * m)
    ix = np.full_like(m, np.nan)
    active = lo < hi
    while active.any():
        mid = lo + (hi - lo) // 2
        value = stats.binom.pmf(mid, m, 0.5)
        equal = active & (value == d)
        ix[equal] = mid[equal]
        lo = np.where(active & (value < d), mid + 1, lo)
        hi = np.where(active & (value > d), mid - 1, hi)
        active &= ~equal & (lo < hi)
    rest = np.isnan(ix)
    below = stats.binom.pmf(lo, m, 0.5) <= d
    ix[rest] = np.where(below, lo, lo - 1)[rest]
    pvalue = stats.binom.cdf(ix, m, 0.5) + stats.binom.sf(k - 1, m, 0.5)
    return np.where(k == 0.5 * m, 1.0, np.minimum(1.0, pvalue))


def test_transcription_and_shortcut_are_binomtest_bit_for_bit():
    m = np.concatenate([np.full(i - (i - 1) // 2, i) for i in range(1, 41)])
    k = np.concatenate([np.arange((i + 1) // 2, i + 1) for i in range(1, 41)])
    rng = np.random.default_rng(0)
    big = rng.integers(41, 100_001, 120)
    m = np.concatenate([m, big])
    k = np.concatenate([k, np.minimum(big, big // 2 + np.ceil(
        np.abs(rng.normal(1.5, 1.5, 120)) * np.sqrt(big) / 2).astype(int))])
    want = np.array([stats.binomtest(int(a), int(b), 0.5).pvalue
                     for a, b in zip(k, m)])
    np.testing.assert_array_equal(scipy_pvalues(k, m), want)
    np.testing.assert_array_equal(binomtest_pvalues(k, m), want)


# Levels, among them exact p-values of binomtest: ties must pass (<=).
TIES = [(60, 100), (9, 10), (5100, 10_000), (31, 40)]
ALPHAS = [0.001, 0.05, 1e-6, 0.3] + [
    stats.binomtest(k, m, 0.5).pvalue for k, m in TIES]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_table_is_binomtest_at_every_count_up_to_10000(alpha):
    n = 10_000
    table = decision_thresholds(n, alpha=alpha).astype(np.int64)
    m = np.arange(1, n + 1)
    t = table[1:]
    some = t <= m
    assert np.all(some | (t == n + 1)) and np.all(2 * t[some] > m[some])
    # table[m] passes; table[m] - 1 fails (or is <= m / 2, p-value 1).
    assert np.all(scipy_pvalues(t[some], m[some]) <= alpha)
    lower = some & (2 * (t - 1) >= m)
    assert np.all(scipy_pvalues(t[lower] - 1, m[lower]) > alpha)
    assert np.all(scipy_pvalues(m[~some], m[~some]) > alpha)  # none passes
    # Every count, not only the boundary, for m <= 1000.
    mm = np.concatenate([np.full(i - (i - 1) // 2, i) for i in range(1, 1001)])
    kk = np.concatenate([np.arange((i + 1) // 2, i + 1) for i in range(1, 1001)])
    np.testing.assert_array_equal(kk >= table[mm],
                                  scipy_pvalues(kk, mm) <= alpha)
    for k, mt in TIES:
        if alpha == stats.binomtest(k, mt, 0.5).pvalue:
            assert table[mt] == k


def test_estimate_margin_holds():
    # The table decides on twice the upper tail unless it is within 1e-9 of
    # alpha; the exact p-value is that within 1e-13 (here up to n = 1e5).
    rng = np.random.default_rng(1)
    m = rng.integers(1, 100_001, 20_000)
    k = np.minimum(m, m // 2 + 1 + (np.abs(rng.normal(0, 2, m.size))
                                    * np.sqrt(m) / 2).astype(int))
    exact = binomtest_pvalues(k, m)
    estimate = 2 * stats.binom.sf(k - 1, m, 0.5)
    keep = exact > 1e-250
    assert np.max(np.abs(estimate - exact)[keep] / exact[keep]) < 1e-12


@pytest.mark.parametrize("n", [1, 2, 7, 100, 999])
def test_smaller_tables_are_prefixes(n):
    full = decision_thresholds(10_000, alpha=0.001)[:n + 1]
    want = np.where(full == 10_001, n + 1, full)
    np.testing.assert_array_equal(decision_thresholds(n, alpha=0.001), want)
    assert decision_thresholds(n, alpha=0.001).dtype == np.int32


def test_known_entries():
    table = decision_thresholds(20, alpha=0.05)
    assert table[0] == 21 and table[5] == 21  # 5 of 5: p = 0.0625
    assert table[6] == 6 and table[10] == 9 and table[20] == 15
    assert stats.binomtest(15, 20).pvalue <= 0.05 < stats.binomtest(
        14, 20).pvalue


def test_100000_builds_in_well_under_a_few_seconds():
    start = time.perf_counter()
    table = decision_thresholds(100_000, alpha=0.001)
    seconds = time.perf_counter() - start
    assert seconds < 5.0  # measured 0.12 s; the per-count binomtest: hours
    m = np.array([100_000, 50_001, 77_777])
    t = table[m].astype(np.int64)
    assert np.all(binomtest_pvalues(t, m) <= 0.001)
    assert np.all(binomtest_pvalues(t - 1, m) > 0.001)


def test_encoding_round_trips_and_is_short():
    table = decision_thresholds(100_000, alpha=0.001)
    text = encode_thresholds(table)
    assert len(text) < 10_000 and text.isascii()
    np.testing.assert_array_equal(decode_thresholds(text, 100_000), table)


@pytest.mark.parametrize("text,n", [
    ("not base64!", 10), (encode_thresholds(decision_thresholds(10, alpha=0.05)), 11),
    (encode_thresholds(np.arange(11)), 10), ("", 10), (None, 10),
])
def test_decoding_refuses_what_is_not_a_table(text, n):
    with pytest.raises(ValueError, match=r"Received: thresholds="):
        decode_thresholds(text, n)


def test_decision_of_predict_is_vectorised_binomtest():
    from keras_adv.certification._certify import _binomial_decision
    rng = np.random.default_rng(2)
    counts = rng.multinomial(60, [0.5, 0.3, 0.2], size=300)
    got = _binomial_decision(counts, 0.01)
    order = np.argsort(-counts, axis=1, kind="stable")
    for row, o, g in zip(counts, order, got):
        a, b = int(row[o[0]]), int(row[o[1]])
        want = o[0] if stats.binomtest(a, a + b, 0.5).pvalue <= 0.01 else -1
        assert g == want
    assert (got >= 0).any() and (got == -1).any()


@pytest.mark.parametrize("n,alpha,needle", [
    (0, 0.01, r"Received: n=0"), (10.5, 0.01, r"Received: n=10\.5"),
    (10, 1.0, r"Received: alpha=1\.0"), (10, 0.0, r"Received: alpha=0\.0"),
])
def test_bad_arguments(n, alpha, needle):
    with pytest.raises(ValueError, match=needle):
        decision_thresholds(n, alpha=alpha)
