"""Checks of data: inputs against the box and the model's input shape,
labels, training batches, NumPy images (part of `keras_adv.validation`)."""


import keras
import numpy as np
import tensorflow as tf

from keras_adv.validation.arguments import (
    check_clip,
    check_int,
    short,
)


def check_x(x, clip):
    """Converts `x` to a float tensor and checks it (eagerly, in NumPy).

    Raises `ValueError` for a value that is not an array of numbers, a
    non-float dtype, rank < 2, an empty batch, NaN or inf values, or values
    outside the `clip` box.

    Example: `x = check_x(np.zeros((2, 4), "float32"), (0.0, 1.0))`.
    """
    if not tf.is_tensor(x):
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.dtype == object:
            raise ValueError(
                "x must be an array or tensor of numbers, of shape (batch, "
                f"...). Received: x={short(x)}"
            )
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        x = tf.convert_to_tensor(arr)
    if not x.dtype.is_floating:
        raise ValueError(
            f"x must have a floating dtype. Received: x with dtype {x.dtype.name}"
        )
    if x.shape.rank is not None and x.shape.rank < 2:
        raise ValueError(
            "x must be batched, of shape (batch, ...). Received: x with "
            f"shape {tuple(x.shape)}"
        )
    if not tf.executing_eagerly():
        checks = [tf.debugging.assert_all_finite(x, "x must not contain NaN or inf.")]
        if clip is not None:
            lo, hi = clip
            x32 = tf.cast(x, tf.float32)
            msg = f"x must lie inside clip={clip}."
            checks.append(tf.debugging.assert_greater_equal(x32, lo, message=msg))
            checks.append(tf.debugging.assert_less_equal(x32, hi, message=msg))
        with tf.control_dependencies(checks):
            return tf.identity(x)
    if x.shape[0] == 0:
        raise ValueError(
            "x must contain at least one example. Received: x with shape "
            f"{tuple(x.shape)}"
        )
    arr = tf.cast(x, tf.float32).numpy()
    if not np.isfinite(arr).all():
        n = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"x must not contain NaN or inf. Received: x with {n} non-finite "
            "values"
        )
    if clip is not None:
        lo, hi = clip
        if arr.min() < lo or arr.max() > hi:
            raise ValueError(
                f"x must lie inside clip={clip}. Received: x with values in "
                f"[{arr.min():.4g}, {arr.max():.4g}]. Scale x or pass "
                "clip=None."
            )
    return x


def check_input_shape(model, x, name="x"):
    """Raises `ValueError` when `x` (or a shape tuple) does not fit the input
    shape a Keras model declares: the batch axis, the rank and every known
    size. A missing batch axis gets its own message (add one with
    `x[None]`). A trailing axis of size 1 may be missing or extra (Keras
    adds or drops it itself). Models without a single declared input are
    left alone.

    Example: `check_input_shape(model, x)`.
    """
    expected = declared_input_shape(model)
    if expected is None:
        return
    got = tuple(x) if isinstance(x, (tuple, list, tf.TensorShape)) \
        else tuple(x.shape)
    got = tuple(None if g is None else int(g) for g in got)
    if shape_fits(expected, got):
        return
    if shape_fits(expected[1:], got):
        raise ValueError(
            f"{name} must have a batch axis: the model takes inputs of shape "
            f"{expected}. Received: {name} with shape {got} (use {name}[None] "
            "for one example)"
        )
    raise ValueError(
        f"{name} must match the input shape of the model {expected}. "
        f"Received: {name} with shape {got}"
    )


def declared_input_shape(model):
    """The `(None, ...)` input shape a Keras model declares, or None (not a
    Keras model, several inputs, not built). Example:
    `declared_input_shape(model)`."""
    if not hasattr(model, "get_config"):
        return None  # not a Keras model: no declared input shape
    try:
        expected = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if not isinstance(expected, tuple) or not expected or any(
        not (e is None or isinstance(e, int)) for e in expected
    ):
        return None
    return (None,) + expected[1:]


def shape_fits(expected, got, trailing=True):
    """Same sizes where both are known, allowing one trailing axis of size 1
    on either side (unless `trailing=False`). Example:
    `shape_fits((None, 28, 28, 1), (4, 28, 28))` is True."""
    def same(a, b):
        return len(a) == len(b) and all(
            e is None or g is None or e == g for e, g in zip(a, b))

    if same(expected, got) or not trailing:
        return same(expected, got)
    if len(got) == len(expected) - 1 and expected[-1] == 1:
        return same(expected[:-1], got)
    if len(got) == len(expected) + 1 and got[-1] == 1:
        return same(expected, got[:-1])
    return False


def data_box(x, clip="auto"):
    """The value box of image data: `clip` itself when it is a pair (checked
    by `check_clip`), `None` for `None` (no box), and for `"auto"` the box
    implied by the dtype: `(0, 255)` for integer images (uint8 and other
    integer dtypes), `(0, 1)` for floating ones.

    Example:

    >>> data_box(np.zeros((1, 2, 2, 1), "uint8"))
    (0.0, 255.0)
    """
    if isinstance(clip, str) and clip == "auto":
        dtype = np.asarray(x).dtype if not tf.is_tensor(x) else \
            x.dtype.as_numpy_dtype
        return (0.0, 255.0) if np.issubdtype(dtype, np.integer) else (0.0, 1.0)
    return check_clip(clip)


def check_in_box(x, box, name="x"):
    """Raises `ValueError` when array `x` has values outside `box` (a pair,
    or None for no box); names `x`, the box and the range found. Example:
    `check_in_box(x, (0.0, 1.0))`."""
    if box is None:
        return x
    arr = np.asarray(x)
    if arr.size == 0:
        return x
    low, high = float(np.min(arr)), float(np.max(arr))
    if low < box[0] or high > box[1]:
        lo, hi = (int(b) if float(b).is_integer() else b for b in box)
        raise ValueError(
            f"{name} must lie in the data box [{lo}, {hi}]. Received: {name} "
            f"with values in [{low:.4g}, {high:.4g}] (pass clip=(min, max) "
            "for data in another range)"
        )
    return x


def check_labels(y, batch, num_classes, name="y"):
    """Converts sparse or one-hot labels to an int32 vector and checks them.

    Accepts shapes `(batch,)`, `(batch, 1)` and one-hot `(batch, classes)`.
    Raises `ValueError` for a non-numeric dtype (strings, booleans); eagerly
    also for a wrong length or shape, non-integer values, or classes outside
    `[0, num_classes)`; in a graph the range check is a `tf.debugging`
    assertion.

    Example:

    >>> check_labels(np.eye(3)[[2, 0]], 2, 3).numpy().tolist()
    [2, 0]
    """
    try:
        y = tf.convert_to_tensor(y)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an array or tensor of class indices. Received: "
            f"{name}={short(y)}"
        ) from None
    if not (y.dtype.is_integer or y.dtype.is_floating):
        raise ValueError(
            f"{name} must hold integer class indices or one-hot rows. "
            f"Received: {name} with dtype {y.dtype.name}"
        )
    shape = tuple(y.shape)
    rank = y.shape.rank
    if rank == 2 and shape[1] not in (1, None) and shape[1] != num_classes:
        raise ValueError(
            f"{name} must have shape (batch,), (batch, 1) or one-hot (batch, "
            f"{num_classes}). Received: {name} with shape {shape}"
        )
    if rank == 2 and shape[1] == num_classes and num_classes != 1:
        y = tf.argmax(y, axis=-1, output_type=tf.int32)
    elif rank == 2 and shape[1] == 1:
        y = tf.reshape(y, [-1])
    elif rank != 1:
        raise ValueError(
            f"{name} must have shape (batch,), (batch, 1) or one-hot (batch, "
            f"{num_classes}). Received: {name} with shape {shape}"
        )
    if tf.executing_eagerly():
        if y.shape[0] != batch:
            raise ValueError(
                f"{name} must have one label per example of x ({batch}). "
                f"Received: {name} with shape {shape}"
            )
        arr = y.numpy()
        if y.dtype.is_floating:
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError(
                    f"{name} must hold integer class indices. Received: "
                    f"{name} with values such as {arr[:5].tolist()}"
                )
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(
                f"{name} must hold classes in [0, {num_classes}). Received: "
                f"{name} with values in [{arr.min()}, {arr.max()}]"
            )
        return tf.cast(y, tf.int32)
    y = tf.cast(y, tf.int32)
    msg = f"{name} must hold classes in [0, {num_classes})."
    checks = [
        tf.debugging.assert_non_negative(y, msg),
        tf.debugging.assert_less(y, tf.cast(num_classes, tf.int32), msg),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(y)


def check_batch(x, y, *, clip, num_classes=None, unlabeled=False):
    """`(x, y)` checked before a training step: x finite and inside `clip`
    (float inputs), sparse labels integers in `[0, num_classes)` (and -1
    for unlabeled examples when `unlabeled`). Eagerly a `ValueError` naming
    the argument; inside `tf.function` `tf.debugging` assertions that run
    before any use of x and y (so a bad batch never reaches the weights).

    Example: `x, y = check_batch(x, y, clip=(0.0, 1.0), num_classes=10)`.
    """
    if keras.tree.is_nested(x):
        return x, y  # several inputs: left to the model
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating:
        x = check_x(x, clip)
    if y is None or keras.tree.is_nested(y):
        return x, y
    y = tf.convert_to_tensor(y)
    if (y.shape.rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1) \
            or not (y.dtype.is_integer or y.dtype.is_floating):
        return x, y  # one-hot rows and other label kinds: left to the loss
    lo = -1 if unlabeled else 0
    upper = f", {num_classes})" if num_classes else ", classes)"
    rule = f"y must hold classes in [{lo}{upper}"
    hint = "" if unlabeled else (
        " (-1 marks an unlabeled example, which this defense cannot use: "
        "use VAT or DataSparsity, alone or after it, e.g. PGDTraining(...) "
        "+ VAT(...), or drop the unlabeled examples)")
    if tf.executing_eagerly():
        arr = y.numpy().reshape(-1)
        bad = arr.size and (arr.min() < lo or (
            num_classes and arr.max() >= num_classes))
        if bad or (y.dtype.is_floating and np.any(arr != np.round(arr))):
            unlabeled_given = arr.size and arr.min() == -1 and not unlabeled
            raise ValueError(
                f"{rule}{hint if unlabeled_given else ''}. Received: y with "
                f"values in [{arr.min()}, {arr.max()}]")
        return x, y
    flat = tf.reshape(y, [-1])
    checks = [tf.debugging.assert_greater_equal(
        flat, tf.cast(lo, flat.dtype), message=rule + hint + ". Received: y")]
    if num_classes:
        checks.append(tf.debugging.assert_less(
            flat, tf.cast(num_classes, flat.dtype),
            message=rule + ". Received: y"))
    with tf.control_dependencies(checks):
        return x, tf.identity(y)


# --------------------------------------------------------------------------
# The NumPy side: images, label arrays, rates, seeds (poisoning, generative)
# --------------------------------------------------------------------------


def check_images(x, name="x", *, clip=None, model=None, shape=None):
    """Returns `x` as a numeric NumPy array `(n, H, W, C)` (a view when
    possible), non-empty and finite.

    With `clip` (a pair, or `"auto"`: `(0, 255)` for integer dtypes, `(0,
    1)` for floats; `data_box`) the values must lie in that box; with
    `model` the images must fit its declared input shape; with `shape`
    each image must have that `(H, W, C)`.

    Example: `check_images(np.zeros((2, 28, 28, 1)))`.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an array of images. Received: {name}={short(x)}"
        ) from None
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.number) or (
            np.issubdtype(arr.dtype, np.complexfloating)):
        raise ValueError(
            f"{name} must be a real array of shape (n, height, width, "
            f"channels) (rank 4). Received: {name} of shape {arr.shape} and "
            f"dtype {arr.dtype}"
        )
    if len(arr) == 0:
        raise ValueError(f"{name} must not be empty. Received: {name} of "
                         f"shape {arr.shape}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{name} must hold images of shape {tuple(shape)}. Received: "
            f"{name} with shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite. Received: {name} with "
                         "NaN or infinite values")
    if clip is not None:
        check_in_box(arr, data_box(arr, clip), name)
    if model is not None:
        check_input_shape(model, arr, name)
    return arr


def check_label_array(y, n=None, num_classes=None, name="y"):
    """Sparse int64 labels (NumPy) from sparse `(n,)`/`(n, 1)` or one-hot
    `(n, k)` labels.

    Returns `(labels, num_classes, one_hot)`; `num_classes` is the argument,
    else the one-hot width, else `max(labels) + 1`.

    Example: `check_label_array([0, 2, 1])` returns `(array([0, 2, 1]), 3,
    False)`.
    """
    arr = np.asarray(y)
    one_hot = arr.ndim == 2 and arr.shape[1] > 1
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    numeric = np.issubdtype(arr.dtype, np.number) and not np.issubdtype(
        arr.dtype, np.complexfloating)
    if one_hot and numeric:
        labels = np.argmax(arr, axis=1)
        width = arr.shape[1]
    elif arr.ndim == 1 and len(arr) and numeric and np.all(
            np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
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
    num_classes = check_int("num_classes", num_classes)
    if labels.max() >= num_classes:
        raise ValueError(
            f"{name} must be < num_classes={num_classes}. Received: {name} "
            f"with label {int(labels.max())}"
        )
    return labels, num_classes, one_hot
