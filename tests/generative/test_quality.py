"""Frechet distance and class coverage: exact values and properties."""

import keras
import numpy as np
import pytest
import scipy.linalg

from keras_adv.generative import (
    class_coverage,
    frechet_distance,
    frechet_distance_from_moments,
)
from keras_adv.models import feature_model
from tests.conftest import one_line_each_way


def identity(x):
    return np.asarray(x).reshape(len(x), -1)


def test_identical_sets_have_zero_distance():
    x = np.random.default_rng(0).random((200, 3, 3, 1), np.float32)
    assert abs(frechet_distance(identity, x, x, batch_size=17)) < 1e-6


def test_moments_formula_closed_form():
    """N(mu1, diag(a)) vs N(mu2, diag(b)): |mu1-mu2|^2 + sum (sqrt a -
    sqrt b)^2."""
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance_from_moments(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, abs=1e-9)


def test_two_gaussians_sample_distance_equals_moment_formula():
    rng = np.random.default_rng(1)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    real = rng.multivariate_normal([0, 0], np.eye(2), size=500)
    fake = rng.multivariate_normal([1, -1], cov, size=400)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = np.real(scipy.linalg.sqrtm(s_r @ s_f))
    expected = np.sum((mu_r - mu_f) ** 2) + np.trace(s_r + s_f - 2 * root)
    got = frechet_distance(identity, real.astype("float32"),
                           fake.astype("float32"))
    assert got == pytest.approx(expected, rel=1e-4)
    # and near the population value with these sample sizes
    population = frechet_distance_from_moments(
        np.zeros(2), np.eye(2), np.array([1.0, -1.0]), cov)
    assert got == pytest.approx(population, abs=0.3)


def test_singular_covariances_are_regularised():
    x = np.zeros((50, 3), np.float32)
    x[:, 0] = np.linspace(0, 1, 50)  # two dead features
    d = frechet_distance(identity, x, x + np.float32(0.5))
    assert d == pytest.approx(0.75, abs=1e-4)


def test_feature_model_gives_the_penultimate_features():
    clf = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6),
                            keras.layers.Dense(3)])
    feats = feature_model(clf)
    x = np.random.default_rng(0).random((5, 4), np.float32)
    np.testing.assert_allclose(feats(x), clf.layers[0](x), atol=1e-6)


def fixed_classifier(softmax=False):
    clf = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(3, activation="softmax" if softmax else None)])
    clf.layers[0].set_weights([2 * np.eye(3, dtype="float32"),
                               np.zeros(3, "float32")])
    return clf


@pytest.mark.parametrize("softmax", [False, True])
def test_class_coverage_exact(softmax):
    fake = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]], "float32")
    cov = class_coverage(fixed_classifier(softmax), fake)
    assert cov.counts.tolist() == [3, 1, 0]
    np.testing.assert_allclose(cov.shares, [0.75, 0.25, 0.0])
    assert cov.min_share == 0.0
    top = np.exp(2) / (np.exp(2) + 2)  # softmax of [2, 0, 0]
    assert cov.confidence == pytest.approx(top, abs=1e-6)


def test_bad_inputs():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="Received: fake with shape"):
        frechet_distance(identity, x, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(identity, x[:1], x)
    with pytest.raises(ValueError, match="batch_size=0"):
        frechet_distance(identity, x, x, batch_size=0)
    with pytest.raises(ValueError, match="Received: fake with shape"):
        class_coverage(fixed_classifier(), np.zeros((0, 3), np.float32))


def test_frechet_distance_progress_counts_the_images(capsys):
    x = np.random.default_rng(0).random((30, 3, 3, 1), np.float32)
    quiet, shown = one_line_each_way(
        lambda progress: frechet_distance(identity, x, x[:20], batch_size=8,
                                          progress=progress),
        capsys, "frechet_distance: features of 50/50 images (")
    assert shown == quiet
