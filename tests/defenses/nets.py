"""Small networks shared by the defense and model tests."""

import keras
import numpy as np

X = np.random.RandomState(0).rand(16, 6).astype("float32")


def mlp(seed=0, softmax=False):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16),
        keras.layers.ReLU(),
        keras.layers.Dense(3, activation="softmax" if softmax else None),
    ])
