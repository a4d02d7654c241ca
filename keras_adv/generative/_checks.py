"""Argument checks of the generative package (one-line ValueErrors that name
the argument and the value received, raised before any work)."""

import numbers

import numpy as np


def integer(value, name, minimum):
    """`value` as an int >= `minimum`, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            value < minimum):
        raise ValueError(
            f"{name} must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def image_shape(value):
    """`(height, width, channels)` with sides divisible by 4, as a tuple."""
    ok = isinstance(value, (tuple, list)) and len(value) == 3 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
        for v in value)
    if not ok or value[0] % 4 or value[1] % 4:
        raise ValueError(
            "image_shape must be (height, width, channels) with height and "
            "width positive multiples of 4 (for example (28, 28, 1) or "
            f"(32, 32, 3)). Received: image_shape={value!r}"
        )
    return tuple(int(v) for v in value)


def images(x, name, shape=None):
    """A float32 copy-free view of image array `x`, rank 4 and in [0, 1]."""
    arr = np.asarray(x)
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch of images (rank 4: n, height, "
            f"width, channels). Received: {name} with shape {arr.shape}"
        )
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{name} must hold images of shape {tuple(shape)}. Received: "
            f"{name} with shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(
            arr.dtype, np.complexfloating):
        raise ValueError(
            f"{name} must hold real numbers. Received: {name} with dtype "
            f"{arr.dtype}"
        )
    low, high = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 1:
        raise ValueError(
            f"{name} must hold finite values in [0, 1]. Received: {name} with "
            f"values in [{low}, {high}]"
        )
    return arr.astype(np.float32, copy=False)


def class_labels(y, name, n, num_classes):
    """`y` as an int64 array of `n` labels in [0, num_classes)."""
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n or not np.issubdtype(
            arr.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of {n} integer labels. Received: "
            f"{name} with shape {arr.shape} and dtype {arr.dtype}"
        )
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}]. Received: {name} "
            f"with values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64)


def seed(value, name="seed"):
    """`None` or an integer seed >= 0."""
    if value is None:
        return None
    return integer(value, name, 0)
