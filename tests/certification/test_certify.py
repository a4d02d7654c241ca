"""CERTIFY and PREDICT on models with known answers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_adv import certification
from keras_adv.attacks import core
from keras_adv.certification import _certify

SIGMA = 0.25
DIM = 10


def hyperplane_model(seed=0):
    """Two-class linear model: class 0 iff u.x + b > 0, with ||u|| = 1, so
    the distance of x to the decision boundary is |u.x + b|."""
    rng = np.random.RandomState(seed)
    u = rng.normal(size=DIM)
    u /= np.linalg.norm(u)
    b = 0.1
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(2)])
    w = np.stack([u, -u], axis=1).astype("float32")
    model.layers[0].set_weights([w, np.array([b, -b], "float32")])
    return model, u, b


def points_at(u, b, distances, seed=1):
    """Points whose signed distance u.x + b is each of `distances`."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 1, size=(len(distances), DIM))
    x += (np.asarray(distances) - (x @ u + b))[:, None] * u[None, :]
    return x.astype("float32")


def constant_model(cls, classes=3):
    """Predicts `cls` everywhere (a Dense with zero weights and a bias)."""
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(classes)])
    bias = np.zeros(classes, "float32")
    bias[cls] = 1.0
    model.layers[0].set_weights([np.zeros((DIM, classes), "float32"), bias])
    return model


def test_linear_radius_is_below_and_close_to_the_distance():
    model, u, b = hyperplane_model()
    ratios = np.array([0.2, 0.5, 1.0, 1.5, 2.0])
    signed = np.concatenate([ratios, -ratios]) * SIGMA
    x = points_at(u, b, signed)
    cert = certification.certify(model, x, sigma=SIGMA, n=100_000, seed=0)
    distance = np.abs(signed)
    np.testing.assert_array_equal(cert.prediction, (signed < 0).astype(int))
    assert np.all(cert.radius <= distance)
    assert np.all(cert.radius >= 0.9 * distance), cert.radius / distance


def test_linear_radius_exceeds_the_distance_at_most_alpha_often():
    model, u, b = hyperplane_model()
    x = points_at(u, b, np.full(400, 0.5 * SIGMA), seed=2)
    cert = certification.certify(model, x, sigma=SIGMA, n0=50, n=2000,
                                 alpha=0.01, seed=3)
    too_large = np.mean(cert.radius > 0.5 * SIGMA)
    assert too_large <= 0.01 + 3 * np.sqrt(0.01 * 0.99 / 400)
    # Not vacuous: most points are certified near their distance.
    assert np.median(cert.radius) > 0.35 * SIGMA


def test_radius_is_the_clopper_pearson_bound_of_the_counts():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [0.3, -0.6, 0.05, 1.0])
    alpha = 0.01
    cert = certification.certify(model, x, sigma=SIGMA, n0=100, n=3000,
                                 alpha=alpha, seed=5)
    for pred, radius, row in zip(*cert):
        if pred < 0:
            assert radius == 0.0
            continue
        k = row[pred]
        p_lower = stats.beta.ppf(alpha, k, 3000 - k + 1)
        assert p_lower > 0.5
        np.testing.assert_allclose(radius, SIGMA * stats.norm.ppf(p_lower),
                                   rtol=1e-12)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (7, 10), (10, 10),
                                 (512, 1000), (99_990, 100_000)])
def test_clopper_pearson_matches_scipy(k, n):
    got = certification.clopper_pearson_lower(k, n, alpha=0.001)
    want = 0.0 if k == 0 else stats.beta.ppf(0.001, k, n - k + 1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # The bound is a valid lower confidence bound: P(K >= k) = alpha there.
    if 0 < k:
        assert stats.binom.sf(k - 1, n, got) == pytest.approx(0.001, rel=1e-6)


def test_all_correct_radius_is_capped_by_n_and_alpha():
    cert = certification.certify(constant_model(2), np.zeros((2, DIM)),
                                 sigma=SIGMA, n0=10, n=1000, alpha=0.001,
                                 seed=0)
    np.testing.assert_array_equal(cert.prediction, [2, 2])
    cap = SIGMA * stats.norm.ppf(0.001 ** (1 / 1000))
    np.testing.assert_allclose(cert.radius, [cap, cap], rtol=1e-12)
    assert cap == pytest.approx(2.46 * SIGMA, abs=0.01 * SIGMA)
    np.testing.assert_array_equal(cert.counts, [[0, 0, 1000]] * 2)


@pytest.mark.parametrize("n,batch_size,examples", [
    (7, 5, 3), (1, 1000, 4), (1000, 64, 2), (10, 25, 5), (3000, 1000, 1)])
def test_counts_sum_to_n_for_any_chunking(n, batch_size, examples):
    model, u, b = hyperplane_model()
    x = points_at(u, b, np.linspace(-0.2, 0.2, examples))
    counts = certification.sample_counts(model, x, sigma=SIGMA, n=n,
                                         batch_size=batch_size, seed=0)
    assert counts.shape == (examples, 2) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts.sum(axis=1), n)


def test_counts_follow_the_gaussian():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [SIGMA, 0.0, -2 * SIGMA])
    n = 20_000
    counts = certification.sample_counts(model, x, sigma=SIGMA, n=n,
                                         batch_size=700, seed=1)
    expected = stats.norm.cdf([1.0, 0.0, -2.0])
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(counts[:, 0] / n - expected) <= tolerance)


def test_hyperplane_point_abstains():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [0.0, 0.0])
    cert = certification.certify(model, x, sigma=SIGMA, n=10_000, seed=0)
    np.testing.assert_array_equal(cert.prediction, [-1, -1])
    np.testing.assert_array_equal(cert.radius, [0.0, 0.0])
    np.testing.assert_array_equal(
        certification.predict(model, x, sigma=SIGMA, n=10_000, seed=0),
        [-1, -1])


def test_predict_far_points_and_binomial_rule():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [2 * SIGMA, -2 * SIGMA])
    pred = certification.predict(model, x, sigma=SIGMA, n=200, seed=0)
    np.testing.assert_array_equal(pred, [0, 1])
    counts = np.array([[60, 40, 0], [70, 30, 0], [0, 3, 0], [5, 5, 5]])
    got = _certify._binomial_decision(counts, 0.05)
    want = [0 if stats.binomtest(a, a + b_, 0.5).pvalue <= 0.05 else -1
            for a, b_ in [(60, 40), (70, 30), (3, 0), (5, 5)]]
    want[2] = 1 if want[2] == 0 else -1  # the top class of row 2 is 1
    np.testing.assert_array_equal(got, want)
    assert got.tolist() == [-1, 0, -1, -1]


def test_same_seed_same_certificate():
    model, u, b = hyperplane_model()
    x = points_at(u, b, [0.1, -0.2, 0.3])
    a = certification.certify(model, x, sigma=SIGMA, n=5000, seed=7)
    c = certification.certify(model, x, sigma=SIGMA, n=5000, seed=7)
    d = certification.certify(model, x, sigma=SIGMA, n=5000, seed=8)
    for first, second in zip(a, c):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(a.counts, d.counts)
    keras.utils.set_random_seed(3)
    e = certification.certify(model, x, sigma=SIGMA, n=5000)
    keras.utils.set_random_seed(3)
    f = certification.certify(model, x, sigma=SIGMA, n=5000)
    np.testing.assert_array_equal(e.counts, f.counts)


def test_compiled_once_for_any_batch_of_examples():
    model, u, b = hyperplane_model()
    x = points_at(u, b, np.linspace(-1, 1, 9))
    for size in (9, 4, 1, 7):
        certification.certify(model, x[:size], sigma=SIGMA, n0=20, n=300,
                              batch_size=128, seed=size)
    fn = core.compiled(model, _certify.count_loop, input_rank=2,
                       batch_size=128, num_classes=2)
    assert fn.experimental_get_tracing_count() == 1


def test_softmax_model_and_inputs_are_not_mutated():
    model = keras.Sequential([keras.Input((DIM,)),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.RandomState(0).uniform(size=(3, DIM)).astype("float32")
    copy = x.copy()
    cert = certification.certify(model, x, sigma=SIGMA, n0=10, n=100, seed=0)
    np.testing.assert_array_equal(x, copy)
    assert cert.counts.shape == (3, 2)
    assert certification.certify(model, tf.constant(x), sigma=SIGMA, n0=10,
                                 n=100, seed=0).counts.tolist() \
        == cert.counts.tolist()


GOOD = dict(sigma=0.25, n0=10, n=100, alpha=0.001, batch_size=100, seed=0)


@pytest.mark.parametrize("name,value", [
    ("sigma", 0.0), ("sigma", -1.0), ("sigma", float("nan")),
    ("sigma", float("inf")), ("sigma", "0.25"), ("n0", 0), ("n0", 1.5),
    ("n", 0), ("n", -3), ("alpha", 0.0), ("alpha", 1.0), ("alpha", 1.5),
    ("alpha", float("nan")), ("batch_size", 0), ("seed", "a"),
])
def test_bad_arguments(name, value):
    model, _, _ = hyperplane_model()
    x = np.zeros((2, DIM), "float32")
    with pytest.raises(ValueError, match=f"Received: {name}="):
        certification.certify(model, x, **{**GOOD, name: value})
    if name != "n0":
        kwargs = {k: v for k, v in {**GOOD, name: value}.items() if k != "n0"}
        with pytest.raises(ValueError, match=f"Received: {name}="):
            certification.predict(model, x, **kwargs)


@pytest.mark.parametrize("x,needle", [
    (np.zeros((0, DIM), "float32"), "at least one example"),
    (np.full((2, DIM), np.nan, "float32"), "NaN or inf"),
    (np.full((2, DIM), np.inf, "float32"), "NaN or inf"),
    (np.zeros((2, DIM + 1), "float32"), "input shape"),
    (np.zeros(DIM, "float32"), "batched"),
    ("abc", "floating dtype"),
    ([[object()]], "array or tensor"),
])
def test_bad_x(x, needle):
    model, _, _ = hyperplane_model()
    with pytest.raises(ValueError, match=needle):
        certification.certify(model, x, **GOOD)


def test_bad_model():
    with pytest.raises(ValueError, match="Received: model="):
        certification.certify("model", np.zeros((1, DIM)), **GOOD)
    flat = keras.Sequential([keras.Input((DIM,)), keras.layers.Reshape((DIM, 1))])
    with pytest.raises(ValueError, match=r"\(batch, classes\)"):
        certification.certify(flat, np.zeros((1, DIM)), **GOOD)


@pytest.mark.parametrize("name", ["certify", "predict", "sample_counts"])
def test_progress_names_the_work_on_stderr(capsys, name):
    model = constant_model(1)
    x = np.zeros((3, DIM), "float32")
    kwargs = dict(sigma=SIGMA, n=20, seed=0)
    fn = getattr(certification, name)
    quiet = fn(model, x, progress=False, **kwargs)
    assert capsys.readouterr().err == ""
    shown = fn(model, x, progress=True, **kwargs)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith(f"{name}: counting 20 noise samples of 3 "
                                "examples (")
    if name == "certify":
        assert lines[0].startswith("certify: selecting classes from 100 "
                                   "noise samples of 3 examples (")
        quiet, shown = quiet.counts, shown.counts
    assert len(lines) == 1 + (name == "certify")
    np.testing.assert_array_equal(quiet, shown)  # the same draws


def test_progress_none_is_silent_off_a_terminal(capsys):
    certification.certify(constant_model(1), np.zeros((2, DIM), "float32"),
                          sigma=SIGMA, n0=10, n=100_000, batch_size=10_000,
                          seed=0)
    assert capsys.readouterr().err == ""  # long, but stderr is captured
