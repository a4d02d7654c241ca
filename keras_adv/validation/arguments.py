"""Checks of arguments: models, numbers, norms, losses, eps lists, clip
boxes, rates, classes, seeds (part of `keras_adv.validation`)."""

import math
import numbers
import os

import keras
import numpy as np
import tensorflow as tf

NORMS = ("linf", "l2")
LOSSES = ("ce", "margin", "dlr")
_NORM_ALIASES = {"linf": "linf", "inf": "linf", "l2": "l2", 2: "l2"}


def check_model(model):
    """Raises `ValueError` unless `model` is callable. Example:
    `check_model(keras_model)`."""
    if not callable(model):
        raise ValueError(f"model must be callable. Received: model={model!r}")
    return model


def check_from_logits(from_logits):
    """Validates `from_logits` (None, True or False). Example:
    `check_from_logits(None)`."""
    if from_logits not in (None, True, False):
        raise ValueError(
            "from_logits must be None, True or False. Received: "
            f"from_logits={from_logits!r}"
        )
    return from_logits


def check_norm(norm):
    """Returns the canonical norm name (`"linf"` or `"l2"`).

    Accepts `"linf"`, `"inf"`, `np.inf`, `"l2"` and `2`.

    Example:

    >>> check_norm(np.inf)
    'linf'
    """
    key = norm.lower() if isinstance(norm, str) else norm
    if isinstance(key, float) and math.isinf(key) and key > 0:
        return "linf"
    try:
        return _NORM_ALIASES[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"norm must be one of {NORMS}. Received: norm={norm!r}"
        ) from None


def check_int(name, value, minimum=1):
    """Validates an integer argument >= `minimum`. Example:
    `check_int("steps", 10)`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(
            f"{name} must be >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def check_number(name, value, *, positive=False, allow_none=False,
                 upper=None, allow_tensor=True):
    """Validates a finite scalar >= 0 (> 0 when `positive`, <= `upper` when
    given). The one number check of keras_adv.

    Returns a Python number as a `float`, a tensor unchanged (checked when its
    value is known, i.e. eagerly; symbolic tensors are checked by the
    caller's graph assertions), and `None` when `allow_none`. Booleans and
    strings are refused; so are tensors when `allow_tensor=False`
    (configuration objects hold plain values).

    Example:

    >>> check_number("eps", 0.3)
    0.3
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required. Received: {name}=None")
    is_tensor = tf.is_tensor(value) or isinstance(value, tf.Variable)
    if isinstance(value, (str, bytes, bool, np.bool_)) or (is_tensor and (
        not allow_tensor
        or not (value.dtype.is_floating or value.dtype.is_integer)
    )):
        raise ValueError(f"{name} must be a number. Received: {name}={value!r}")
    if is_tensor:
        if not tf.executing_eagerly():
            return value
        arr = np.asarray(value)
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a number. Received: {name}={value!r}"
            ) from None
    if arr.ndim != 0:
        raise ValueError(
            f"{name} must be a scalar. Received: {name} with shape {arr.shape}"
        )
    v = float(arr)
    bad = not math.isfinite(v) or v < 0 or (positive and v == 0)
    if upper is not None:
        bad = bad or v > upper
    if bad:
        rule = "> 0" if positive else ">= 0"
        if upper is not None:
            rule = f"in {'(' if positive else '['}0, {upper}]"
        raise ValueError(
            f"{name} must be a finite number {rule}. Received: {name}={value!r}"
        )
    return value if is_tensor else v


def check_loss(loss):
    """Validates an attack loss name. Example: `check_loss("dlr")`."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss!r}")
    return loss


def parse_eps(eps, name="eps"):
    """Validates eps: a number, a non-empty list of numbers (>= 0), or a
    string of comma-separated numbers (the command line's `--eps`).

    Returns `(list of floats, whether a single number was given)`.

    Example:

    >>> parse_eps([0.1, 0.3])
    ([0.1, 0.3], False)
    >>> parse_eps("0.1,0.2")
    ([0.1, 0.2], False)
    """
    if isinstance(eps, str):
        values, scalar = eps.split(","), False
    elif isinstance(eps, (list, tuple, np.ndarray)):
        values, scalar = list(eps), False
    else:
        values, scalar = [eps], True
    if not values:
        raise ValueError(f"{name} must not be empty. Received: {name}={eps!r}")
    out = []
    for v in values:
        try:
            if isinstance(v, str):
                v = float(v)
            if np.ndim(v) > 0:
                raise ValueError
            out.append(check_number(name, v, allow_tensor=False))
        except (ValueError, TypeError):
            what = ("numbers separated by commas, each finite and >= 0"
                    if isinstance(eps, str)
                    else "a finite number >= 0 or a list of them")
            raise ValueError(
                f"{name} must be {what}. Received: {name}={eps!r}"
            ) from None
    return out, scalar


def check_attack(model, *, eps, norm, loss, clip, from_logits):
    """The checks every gradient or score attack starts with: a callable
    model, `eps >= 0`, a known norm and loss, a valid box and `from_logits`.
    Returns the normalised `(norm, loss, clip)`.

    Example: `norm, loss, clip = check_attack(model, eps=0.3, norm="linf",
    loss="ce", clip=(0.0, 1.0), from_logits=None)`.
    """
    check_model(model)
    check_number("eps", eps)
    norm = check_norm(norm)
    loss = check_loss(loss)
    clip = check_clip(clip)
    check_from_logits(from_logits)
    return norm, loss, clip






# --------------------------------------------------------------------------
# Data checks
# --------------------------------------------------------------------------


def check_clip(clip):
    """Validates `clip`: None or a pair (min, max) with min < max.

    Example:

    >>> check_clip((0, 1))
    (0.0, 1.0)
    """
    if clip is None:
        return None
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise ValueError(
            f"clip must be None or a pair (min, max). Received: clip={clip!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"clip must be finite with min < max. Received: clip={clip!r}"
        )
    return (lo, hi)


def short(value, limit=60):
    """`repr(value)` cut to `limit` characters for error messages; an array
    is named by its shape. Example: `short(np.zeros(3))`."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_probability(name, value):
    """A probability in the open interval (0, 1), as a float: a failure or
    false-alarm level (certification's `alpha`, the poisoning verdict's).

    Example:

    >>> check_probability("alpha", 0.001)
    0.001
    """
    try:
        number = float(check_number(name, value, positive=True,
                                    allow_tensor=False))
    except (ValueError, TypeError):
        number = None
    if number is None or number >= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1). Received: "
                         f"{name}={short(value)}")
    return number


def check_rate(rate, name="rate"):
    """Returns `rate` as a float in [0, 1]. Example: `check_rate(0.05)`."""
    ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
    if not ok or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(
            f"{name} must be a number in [0, 1]. Received: {name}={short(rate)}"
        )
    return float(rate)


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


def check_seed(seed, name="seed"):
    """`None` or an integer seed >= 0, returned as is. Example:
    `check_seed(0)`."""
    if seed is None:
        return None
    return check_int(name, seed, 0)


def numpy_rng(seed):
    """A NumPy generator from `seed` (checked); `None` draws from NumPy's
    global state (so `keras.utils.set_random_seed` governs it). Example:
    `numpy_rng(0)`."""
    if seed is None:
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))
    ok = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not ok or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 or None. Received: "
                         f"seed={short(seed)}")
    return np.random.default_rng(int(seed))


def check_path(path, name="path"):
    """A file or directory path (a non-empty `str` or `os.PathLike`),
    returned as a `str`. Example: `check_path("model.keras")`."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"{name} must be a file or directory path. "
                         f"Received: {name}={short(path)}")
    return os.fspath(path)


def check_keras_model(model, name="model"):
    """Raises unless `model` is a `keras.Model`. Example:
    `check_keras_model(small_cnn())`."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"{name} must be a keras.Model. Received: {name}={short(model)}"
        )
    return model


def check_image_shape(value):
    """`(height, width, channels)` with sides divisible by 4, as a tuple.
    Example: `check_image_shape((28, 28, 1))`."""
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


# ---- flags (attacks) ----


def check_bool(name, value):
    """Returns `value` as a Python bool; `True`/`False` and NumPy bools only
    (a string such as "False" is truthy, so it is refused, as are 0 and 1).

    Example:

    >>> check_bool("targeted", np.bool_(True))
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be a bool. Received: {name}={short(value)}"
        )
    return bool(value)
