"""Non-finite base scores never vote: CERTIFY, PREDICT, the counts and the
report refuse them, naming the example; SmoothedClassifier abstains."""

import re

import keras
import numpy as np
import pytest

from keras_adv import certification

DIM = 4
SIGMA = 0.1
# Example 1 has x[0] = 2: every noisy copy is > 0.9 (the NaN region of
# `nan_where_model`); the others have x[0] = 0, nine sigma below it.
X = np.array([[0.0, 2.0, 2.0, -2.0], [2.0, 0.0, 0.0, 0.0],
              [0.0, -0.4, 0.5, 0.2]], "float32")
FINITE = [0, 2]


def plain_model(classes=3):
    """A fixed linear model `DIM -> classes` (no NaN anywhere)."""
    rng = np.random.RandomState(0)
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(classes)])
    model.layers[0].set_weights([rng.normal(size=(DIM, classes)).astype(
        "float32"), np.zeros(classes, "float32")])
    return model


def constant_scores_model(value, classes=3):
    """Scores `[value, 0, ...]` everywhere (zero kernel, a bias): NaN, +inf
    or -inf for the non-finite cases."""
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(classes)])
    bias = np.zeros(classes, "float32")
    bias[0] = value
    model.layers[0].set_weights([np.zeros((DIM, classes), "float32"), bias])
    return model


def nan_where_model(classes=3):
    """`plain_model`'s scores, NaN where x[:, 0] > 0.9 (a Functional model of
    Keras ops, no Lambda layer)."""
    inputs = keras.Input((DIM,))
    scores = plain_model(classes)(inputs)
    above = keras.ops.greater(inputs[:, :1], 0.9)
    outputs = keras.ops.where(above, float("nan"), scores)
    return keras.Model(inputs, outputs)


NONFINITE = {
    "nan": lambda: constant_scores_model(float("nan")),
    "+inf": lambda: constant_scores_model(float("inf")),
    "-inf": lambda: constant_scores_model(-float("inf")),
}
KW = dict(sigma=SIGMA, batch_size=100, seed=0)
CALLS = {
    "certify": lambda m, x: certification.certify(m, x, n0=100, n=100, **KW),
    "predict": lambda m, x: certification.predict(m, x, n=100, **KW),
    "sample_counts": lambda m, x: certification.sample_counts(
        m, x, n=100, **KW),
    "evaluate_certified": lambda m, x: certification.evaluate_certified(
        m, x, np.zeros(len(x), "int64"), n0=100, n=100, **KW),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("kind", sorted(NONFINITE))
def test_non_finite_scores_are_refused(kind, call):
    with pytest.raises(ValueError, match=(
            r"^model output must be finite .* Received: a model output that "
            r"is not finite on 100 of 100 noisy copies of example 0 \(and 2 "
            r"more examples\)$")):
        CALLS[call](NONFINITE[kind](), X)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_nan_on_one_example_names_it(call):
    with pytest.raises(ValueError, match=(
            r"not finite on 100 of 100 noisy copies of example 1$")):
        CALLS[call](nan_where_model(), X)


def test_finite_examples_keep_their_results():
    # Without the NaN example the results are those of the plain model,
    # bit for bit (the same draws reach the same scores).
    model, plain = nan_where_model(), plain_model()
    for call in ("certify", "predict", "sample_counts"):
        got, want = CALLS[call](model, X[FINITE]), CALLS[call](plain, X[FINITE])
        for a, b in zip(*(r if isinstance(r, tuple) else (r,)
                          for r in (got, want))):
            np.testing.assert_array_equal(a, b)
    assert CALLS["certify"](plain, X[FINITE]).radius.min() > 0


def test_partly_non_finite_draws_are_counted():
    # x[0] = 0.9 exactly: about half the copies fall in the NaN region.
    x = np.array([[0.9, 0.0, 0.0, 0.0]], "float32")
    with pytest.raises(ValueError, match=r"not finite on (\d+) of 400 ") as e:
        certification.sample_counts(nan_where_model(), x, sigma=SIGMA, n=400,
                                    batch_size=64, seed=0)
    bad = int(re.search(r"not finite on (\d+) of", str(e.value)).group(1))
    assert 150 < bad < 250


def smoothed(model, **kwargs):
    """A seeded SmoothedClassifier of `model` (n = 50)."""
    return certification.SmoothedClassifier(
        model, sigma=SIGMA, n=50, alpha=0.01, seed=0, **kwargs)


def test_smoothed_classifier_abstains_on_non_finite_draws():
    out = smoothed(nan_where_model(), batch_size=20)(X)
    want = smoothed(plain_model(), batch_size=20)(X)
    np.testing.assert_array_equal(out["nonfinite"].numpy(), [0, 50, 0])
    assert out["prediction"].numpy()[1] == -1
    np.testing.assert_array_equal(out["counts"].numpy()[1], [0, 0, 0])
    # The finite examples keep their exact results.
    for key in ("prediction", "counts"):
        np.testing.assert_array_equal(out[key].numpy()[FINITE],
                                      want[key].numpy()[FINITE])
    np.testing.assert_array_equal(want["nonfinite"].numpy(), [0, 0, 0])
    assert (want["prediction"].numpy()[FINITE] >= 0).all()


@pytest.mark.parametrize("kind", sorted(NONFINITE))
def test_smoothed_classifier_abstains_on_non_finite_models(kind):
    out = smoothed(NONFINITE[kind]())(X)
    np.testing.assert_array_equal(out["prediction"].numpy(), [-1, -1, -1])
    np.testing.assert_array_equal(out["nonfinite"].numpy(), [50, 50, 50])
    np.testing.assert_array_equal(out["counts"].numpy(), np.zeros((3, 3)))


def test_smoothed_classifier_abstains_on_a_few_bad_draws():
    # x[0] is 2.6 sigma below the NaN region: about 0.5% of the copies are
    # NaN; the other 99.5% agree, and still the answer is an abstention.
    x = np.repeat([[0.9 - 2.6 * SIGMA, 0.0, 0.0, 0.0]], 4, axis=0)
    out = certification.SmoothedClassifier(
        nan_where_model(), sigma=SIGMA, n=2000, alpha=0.01, seed=1)(x)
    bad = out["nonfinite"].numpy()
    assert (bad > 0).all() and (bad < 40).all(), bad
    np.testing.assert_array_equal(out["prediction"].numpy(), [-1] * 4)
    np.testing.assert_array_equal(out["counts"].numpy().sum(axis=1) + bad,
                                  [2000] * 4)
