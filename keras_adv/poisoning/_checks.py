"""Argument and data checks of the poisoning package.

Every check raises `ValueError("<what is wanted>. Received: name=value")`
before any work is done, and none of them modifies its argument.
"""

import numbers

import numpy as np

from keras_adv import ops, validation


def short(value, limit=60):
    """A short repr for error messages. Example: `short(np.zeros(3))`."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_rate(rate, name="rate"):
    """Returns `rate` as a float in [0, 1]. Example: `check_rate(0.05)`."""
    ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
    if not ok or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(
            f"{name} must be a number in [0, 1]. Received: {name}={short(rate)}"
        )
    return float(rate)


def check_positive(value, name, *, integer=False, upper=None):
    """Returns a number > 0 (an int when `integer`), at most `upper`.

    Example: `check_positive(0.3, "eps")`.
    """
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and np.isfinite(float(value)) and value > 0
    ok = ok and (upper is None or value <= upper)
    if not ok:
        what = "an integer" if integer else "a finite number"
        bound = "> 0" if upper is None else f"in (0, {upper}]"
        raise ValueError(
            f"{name} must be {what} {bound}. Received: {name}={short(value)}"
        )
    return int(value) if integer else float(value)


def check_images(x, name="x", *, clip=None, model=None):
    """Returns `x` as a numeric array `(n, H, W, C)` (a view when possible).

    With `clip` (a pair, or `"auto"`: `(0, 255)` for integer dtypes, `(0,
    1)` for floats; `validation.data_box`), the values must lie in that
    box; with `model`, the images must fit its declared input shape.

    Example: `check_images(np.zeros((2, 28, 28, 1)))`.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an array of images. Received: {name}={short(x)}"
        ) from None
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be a numeric array of shape (n, height, width, "
            f"channels). Received: {name} of shape {arr.shape} and dtype "
            f"{arr.dtype}"
        )
    if len(arr) == 0:
        raise ValueError(f"{name} must not be empty. Received: {name} of "
                         f"shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite. Received: {name} with "
                         "NaN or infinite values")
    if clip is not None:
        validation.check_in_box(arr, validation.data_box(arr, clip), name)
    if model is not None:
        validation.check_input_shape(model, arr, name)
    return arr


def model_classes(model):
    """The number of classes `model` declares (2 for one output unit), or
    None. Example: `model_classes(small_cnn())` is 10."""
    return ops.declared_classes(model)


def check_labels(y, n=None, num_classes=None, name="y"):
    """Sparse int64 labels from sparse `(n,)`/`(n, 1)` or one-hot `(n, k)`.

    Returns `(labels, num_classes, one_hot)`; `num_classes` is the argument,
    else the one-hot width, else `max(labels) + 1`.

    Example: `check_labels([0, 2, 1])` returns `(array([0, 2, 1]), 3, False)`.
    """
    arr = np.asarray(y)
    one_hot = arr.ndim == 2 and arr.shape[1] > 1
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if one_hot:
        labels = np.argmax(arr, axis=1)
        width = arr.shape[1]
    elif arr.ndim == 1 and len(arr) and np.all(np.mod(arr, 1) == 0):
        labels = arr.astype(np.int64)
        width = None
    else:
        raise ValueError(
            f"{name} must hold integer labels (n,) or one-hot rows (n, "
            f"classes). Received: {name} of shape {np.shape(y)}"
        )
    if n is not None and len(labels) != n:
        raise ValueError(
            f"{name} must have one label per image ({n}). Received: {name} "
            f"of length {len(labels)}"
        )
    if labels.min() < 0:
        raise ValueError(f"{name} must be >= 0. Received: {name} with "
                         f"label {int(labels.min())}")
    if num_classes is None:
        num_classes = width or int(labels.max()) + 1
    num_classes = check_positive(num_classes, "num_classes", integer=True)
    if labels.max() >= num_classes:
        raise ValueError(
            f"{name} must be < num_classes={num_classes}. Received: {name} "
            f"with label {int(labels.max())}"
        )
    return labels, num_classes, one_hot


def check_class(value, name, num_classes, allow_none=False):
    """Returns a class index in [0, num_classes). Example:
    `check_class(0, "target", 10)`."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or not 0 <= value < num_classes:
        raise ValueError(
            f"{name} must be a class in [0, {num_classes}). Received: "
            f"{name}={short(value)}"
        )
    return int(value)


def check_seed(seed):
    """A NumPy generator from `seed`; `None` draws from NumPy's global state
    (so `keras.utils.set_random_seed` governs it). Example: `check_seed(0)`."""
    if seed is None:
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))
    ok = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not ok or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 or None. Received: "
                         f"seed={short(seed)}")
    return np.random.default_rng(int(seed))


def check_model(model):
    """Raises unless `model` is a Keras model. Example:
    `check_model(small_cnn())`."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(
            f"model must be a keras.Model. Received: model={short(model)}"
        )
    return model


def like_labels(labels, one_hot, num_classes, dtype):
    """Labels back in the caller's format (sparse or one-hot). Example:
    `like_labels(np.array([1]), True, 3, np.float32)`."""
    if one_hot:
        return np.eye(num_classes, dtype=dtype)[labels]
    return labels.astype(dtype)
