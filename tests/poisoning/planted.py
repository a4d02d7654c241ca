"""Planted representations for the poisoning tests: a model whose
penultimate representation is its flattened input lets a test place the
poison exactly."""

import keras
import numpy as np


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
