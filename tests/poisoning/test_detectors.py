"""Spectral signatures and activation clustering on planted representations:
a model whose penultimate representation is its flattened input lets the test
place the poison exactly."""

import keras
import numpy as np
import pytest

from keras_adv import models
from keras_adv.models import feature_model
from keras_adv.poisoning import (
    activation_clustering,
    spectral_scores,
    spectral_signature,
)
from keras_adv.poisoning.clustering import cluster_class


def flat_model():
    """Penultimate representation = the flattened 4x5 input."""
    return keras.Sequential([keras.Input((4, 5, 1)),
                             keras.layers.Flatten(name="flat"),
                             keras.layers.Dense(3, name="head")])


def planted(n_clean=100, n_poison=15, seed=0, shift=6.0):
    """Three classes of Gaussian points; class 0 gets `n_poison` rows moved
    along one direction, then all mapped into [0, 1]. Returns x (n, 4, 5,
    1), y, poison indices."""
    rng = np.random.RandomState(seed)
    feats = rng.normal(size=(3 * n_clean + n_poison, 20))
    y = np.concatenate([np.repeat([0, 1, 2], n_clean), np.zeros(n_poison)])
    direction = np.zeros(20)
    direction[3] = shift
    feats[3 * n_clean:] += direction
    poison = np.arange(3 * n_clean, 3 * n_clean + n_poison)
    # One affine map into the [0, 1] image box (the detectors' default
    # clip="auto"): centring and uniform scaling change no ranking.
    feats = (feats - feats.min()) / (feats.max() - feats.min())
    return feats.reshape(-1, 4, 5, 1).astype("float32"), y.astype(int), poison


def test_spectral_scores_hand_computed():
    f = np.zeros((4, 2))
    f[0] = [3.0, 0.0]
    np.testing.assert_allclose(spectral_scores(f),
                               [2.25**2, 0.75**2, 0.75**2, 0.75**2])
    np.testing.assert_array_equal(spectral_scores(np.ones((3, 2))), 0.0)


def test_spectral_scores_rank_planted_rows_first():
    x, y, poison = planted()
    rows = np.flatnonzero(y == 0)
    scores = spectral_scores(x[rows].reshape(len(rows), -1))
    top = rows[np.argsort(-scores)[:len(poison)]]
    assert set(top) == set(poison)


def test_spectral_signature_flags_per_class_budget():
    x, y, poison = planted()
    x0 = x.copy()
    flagged = spectral_signature(flat_model(), x, y, expected_fraction=0.1,
                                 remove_factor=1.5)
    np.testing.assert_array_equal(x, x0)
    assert flagged.dtype == np.int64 and np.all(np.diff(flagged) > 0)
    # floor(1.5 * 0.1 * n_class) per class: 115 -> 17, 100 -> 15, 100 -> 15
    counts = np.bincount(y[flagged], minlength=3)
    np.testing.assert_array_equal(counts, [17, 15, 15])
    assert np.all(np.isin(poison, flagged))


def test_activation_clustering_flags_planted_cluster_only():
    x, y, poison = planted(shift=10.0)
    for reduce in ("ica", "pca"):
        flagged = activation_clustering(flat_model(), x, y, reduce=reduce,
                                        n_components=5)
        assert flagged.dtype == np.int64
        np.testing.assert_array_equal(flagged, poison)


def test_activation_clustering_threshold_controls_flagging():
    x, y, _ = planted(shift=10.0)
    # 15 of 115 rows = 0.13: kept below a 0.1 threshold
    flagged = activation_clustering(flat_model(), x, y, size_threshold=0.1,
                                    n_components=5)
    assert len(flagged) == 0


def test_cluster_class_two_blobs():
    rng = np.random.RandomState(1)
    f = np.concatenate([rng.normal(size=(40, 6)), rng.normal(size=(10, 6)) + 8])
    ids = cluster_class(f, n_components=3, reduce="pca")
    assert len(set(ids[:40])) == 1 and len(set(ids[40:])) == 1
    assert ids[0] != ids[-1]


def test_feature_model_layers():
    m = models.small_cnn(seed=0)
    assert feature_model(m).output_shape == (None, 128)
    assert feature_model(m, layer=m.layers[2].name).output_shape == (None, 3136)
    fx = keras.Input((4, 5, 1))
    h = keras.layers.Flatten(name="f")(fx)
    func = keras.Model(fx, keras.layers.Dense(2)(keras.layers.Dense(7)(h)))
    assert feature_model(func).output_shape == (None, 7)
    x = np.random.RandomState(0).normal(size=(3, 4, 5, 1)).astype("float32")
    np.testing.assert_allclose(feature_model(flat_model())(x),
                               x.reshape(3, 20))


@pytest.mark.parametrize("call", [spectral_signature, activation_clustering])
def test_bad_inputs(call):
    x, y, _ = planted()
    model = flat_model()
    extra = {"expected_fraction": 0.1} if call is spectral_signature else {}
    with pytest.raises(ValueError, match="Received: layer='nope'"):
        call(model, x, y, layer="nope", **extra)
    with pytest.raises(ValueError, match="y must have one label per image"):
        call(model, x, y[:-1], **extra)
    with pytest.raises(ValueError, match="x must not be empty"):
        call(model, x[:0], y[:0], **extra)
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        call(lambda t: t, x, y, **extra)
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="model must be built"):
        call(unbuilt, x, y, **extra)


@pytest.mark.parametrize("kwargs, match", [
    (dict(expected_fraction=1.2), "Received: expected_fraction=1.2"),
    (dict(expected_fraction=0.1, remove_factor=0), "Received: remove_factor=0"),
])
def test_spectral_bad_numbers(kwargs, match):
    x, y, _ = planted()
    with pytest.raises(ValueError, match=match):
        spectral_signature(flat_model(), x, y, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(reduce="tsne"), "Received: reduce='tsne'"),
    (dict(size_threshold=0.6), "Received: size_threshold=0.6"),
    (dict(n_components=0), "Received: n_components=0"),
])
def test_clustering_bad_arguments(kwargs, match):
    x, y, _ = planted()
    with pytest.raises(ValueError, match=match):
        activation_clustering(flat_model(), x, y, **kwargs)
