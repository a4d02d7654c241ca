"""Helpers of the semi-supervised tests: a NumPy softmax, the loss object and
the task loss."""

import keras
import numpy as np

SCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def softmax_np(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def task_loss(y, y_pred, sample_weight=None):
    return SCE(y, y_pred, sample_weight=sample_weight)
