"""Pieces shared by every attack: argument checks, logits, input gradients,
projections, random starts, and the cache of compiled attack loops.

Attacks are pure functions. When called eagerly they check their inputs in
NumPy (raising `ValueError` that names the argument), then run a
`tf.function` compiled once per (model, static configuration); when called
inside a `tf.function` (for example from a `train_step`) they trace inline and
the data checks become `tf.debugging` assertions.
"""

import math
import numbers
import weakref

import numpy as np
import tensorflow as tf

from keras_adv.attacks.losses import LOSSES, attack_objective

NORMS = ("linf", "l2")
_NORM_ALIASES = {"linf": "linf", "inf": "linf", "l2": "l2", 2: "l2"}
_TINY = 1e-12


# --------------------------------------------------------------------------
# Argument checks (static: Python values)
# --------------------------------------------------------------------------


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


def check_loss(loss):
    """Validates an attack loss name. Example: `check_loss("dlr")`."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}. Received: loss={loss!r}")
    return loss


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
                 upper=None):
    """Validates a finite scalar >= 0 (> 0 when `positive`, <= `upper` when
    given).

    Tensors are checked when their value is known (eagerly); symbolic tensors
    are checked by the caller's graph assertions.

    Example:

    >>> check_number("eps", 0.3)
    0.3
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required. Received: {name}=None")
    if isinstance(value, (str, bytes)) or (
        (tf.is_tensor(value) or isinstance(value, tf.Variable))
        and not (value.dtype.is_floating or value.dtype.is_integer)
    ):
        raise ValueError(f"{name} must be a number. Received: {name}={value!r}")
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
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
    return value


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


def _short(value, limit=60):
    """`repr(value)`, cut to `limit` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------
# Model outputs
# --------------------------------------------------------------------------


def call_model(model, x, training=False):
    """Calls a Keras model (in inference mode by default) or a plain callable.

    Example: `call_model(model, x)`.
    """
    if hasattr(model, "built") and hasattr(model, "get_config"):
        return model(x, training=training)
    return model(x)


def model_logits(model, x, from_logits=None):
    """Float32 logits of `model` at `x`.

    `from_logits=None` (the default) detects a softmax output: Keras attaches
    the pre-softmax tensor to every softmax it computes, and those exact logits
    are used (no `log` of saturated probabilities). Outputs without that mark
    are taken as logits. `from_logits=False` declares that the outputs are
    probabilities; their logarithm is then used as logits, which is exact up
    to a per-example constant (irrelevant to CE, margin and DLR).

    Example:

    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2,
    ...     activation="softmax")])
    >>> model_logits(m, tf.ones((1, 3))).shape
    TensorShape([1, 2])
    """
    out = call_model(model, x)
    if isinstance(out, (list, tuple)):
        raise ValueError(
            "model must return a single tensor of shape (batch, classes). "
            f"Received: model returning a {type(out).__name__} of "
            f"{len(out)} outputs"
        )
    if from_logits is not False and hasattr(out, "_keras_logits"):
        out = out._keras_logits
    elif from_logits is False:
        out = tf.math.log(tf.maximum(tf.cast(out, tf.float32), 1e-30))
    return tf.cast(out, tf.float32)


# --------------------------------------------------------------------------
# Data checks
# --------------------------------------------------------------------------


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
                f"...). Received: x={_short(x)}"
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


def check_input_shape(model, x):
    """Raises `ValueError` when `x` does not fit the input shape a Keras
    model declares (same rank, a known size that differs).

    Inputs of another rank are left to the model (Keras adds or drops a
    trailing axis of size 1 itself), as are models without a single
    declared input.

    Example: `check_input_shape(model, x)`.
    """
    if not hasattr(model, "get_config"):
        return  # not a Keras model: no declared input shape
    try:
        expected = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return
    if not isinstance(expected, tuple) or any(
        not (e is None or isinstance(e, int)) for e in expected
    ):
        return
    got = tuple(x.shape)
    if len(expected) != len(got):
        return
    if any(e is not None and g is not None and e != g
           for e, g in zip(expected[1:], got[1:])):
        raise ValueError(
            f"x must match the input shape of the model {expected}. "
            f"Received: x with shape {got}"
        )


def sparse_labels(y, batch, num_classes, name="y"):
    """Converts sparse or one-hot labels to an int32 vector and checks them.

    Accepts shapes `(batch,)`, `(batch, 1)` and one-hot `(batch, classes)`.
    Raises `ValueError` for a non-numeric dtype (strings, booleans); eagerly
    also for a wrong length or shape, non-integer values, or classes outside
    `[0, num_classes)`; in a graph the range check is a `tf.debugging`
    assertion.

    Example:

    >>> sparse_labels(np.eye(3)[[2, 0]], 2, 3).numpy().tolist()
    [2, 0]
    """
    try:
        y = tf.convert_to_tensor(y)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an array or tensor of class indices. Received: "
            f"{name}={_short(y)}"
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


def prepare(model, x, y, *, clip, targeted, from_logits, loss):
    """Checks `x` and `y` and returns `(x, labels, source)`.

    `labels` are the classes the attack works with (true classes, the
    model's own predictions when `y=None`, or the targets); `source` is the
    model's clean prediction, used as the true class by targeted DLR.

    Example: `x, labels, source = prepare(model, x, None, clip=(0, 1),
    targeted=False, from_logits=None, loss="ce")`.
    """
    if targeted and y is None:
        raise ValueError(
            "A targeted attack needs target labels. Received: y=None with "
            "targeted=True"
        )
    x = check_x(x, clip)
    check_input_shape(model, x)
    known = _declared_classes(model)
    if known is not None and y is not None and not (targeted and loss == "dlr"):
        # The labels and the class count are known: skip the forward pass.
        batch = x.shape[0] if tf.executing_eagerly() else None
        labels = sparse_labels(y, batch, known)
        _check_dlr_classes(loss, targeted, known)
        return x, labels, labels
    logits = model_logits(model, x, from_logits)
    if logits.shape.rank != 2:
        raise ValueError(
            "model must return logits of shape (batch, classes). Received: "
            f"model output with shape {tuple(logits.shape)}"
        )
    num_classes = logits.shape[-1]
    _check_dlr_classes(loss, targeted, num_classes)
    source = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if y is None:
        return x, source, source
    batch = x.shape[0] if tf.executing_eagerly() else None
    return x, sparse_labels(y, batch, num_classes), source


def _declared_classes(model):
    """The class count a Keras model declares, or None."""
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, tuple) and len(shape) == 2 and shape[-1]:
        return int(shape[-1])
    return None


def _check_dlr_classes(loss, targeted, num_classes):
    need = 4 if targeted else 3
    if loss == "dlr" and num_classes is not None and num_classes < need:
        raise ValueError(
            f"loss='dlr' needs at least {need} classes. Received: model "
            f"with {num_classes} classes"
        )


def seed_tensor(seed):
    """A stateless-RNG seed of shape (2,): fixed for an int, drawn from the
    global generator for None (so `keras.utils.set_random_seed` governs it).

    Example: `seed_tensor(0)`.
    """
    if seed is None:
        return tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        if tf.is_tensor(seed):
            return tf.cast(tf.reshape(seed, [-1])[:2], tf.int64)
        raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
    return tf.constant([int(seed), 0], dtype=tf.int64)


# --------------------------------------------------------------------------
# Gradients and geometry
# --------------------------------------------------------------------------


def _batch_sum(t, keepdims=True):
    axes = list(range(1, t.shape.rank))
    return tf.reduce_sum(t, axis=axes, keepdims=keepdims)


def l2_norm(t, keepdims=True):
    """Per-example L2 norm over all non-batch axes. Example: `l2_norm(d)`."""
    return tf.sqrt(_batch_sum(tf.square(t), keepdims))


def l1_norm(t, keepdims=True):
    """Per-example L1 norm over all non-batch axes. Example: `l1_norm(g)`."""
    return _batch_sum(tf.abs(t), keepdims)


def objective_and_gradient(
    model, x_adv, labels, *, loss, targeted, source, from_logits, in_dtype,
    eot_samples=1,
):
    """Per-example objective, logits and its input gradient at `x_adv`.

    `x_adv` is float32; the model sees it cast to `in_dtype` (the caller's
    input dtype), and the gradient comes back in float32. Only the input is
    watched: no weight gradients are computed.

    With `eot_samples = n > 1` (expectation over transformation, Athalye et
    al. 2018) the gradient, objective and logits are averaged over n
    stochastic forward passes. The n passes run as one batch of n copies of
    `x_adv` (one forward/backward, no graph growth, both cores busy; measured
    about 2x faster than a `tf.while_loop` over passes). Each copy therefore
    needs its own random draw: true of layers that draw per example (SAP,
    `RandomizedMixture`, Dropout, GaussianNoise, Keras random augmentation
    layers); a model drawing one random choice per call sees one sample per
    step.

    Example: `obj, logits, grad = objective_and_gradient(model, x, y,
    loss="ce", targeted=False, source=y, from_logits=None,
    in_dtype=tf.float32)`.
    """
    n = eot_samples
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x_adv)
        if n == 1:
            batch_in, batch_labels, batch_source = x_adv, labels, source
        else:
            reps = [n] + [1] * (x_adv.shape.rank - 1)
            batch_in = tf.tile(x_adv, reps)
            batch_labels = tf.tile(labels, [n])
            batch_source = None if source is None else tf.tile(source, [n])
        logits = model_logits(model, tf.cast(batch_in, in_dtype), from_logits)
        obj = attack_objective(logits, batch_labels, loss, targeted, batch_source)
        total = tf.reduce_sum(obj)
    grad = tape.gradient(total, x_adv)
    if grad is None:
        raise ValueError(
            "model gives no gradient with respect to its input; gradient "
            "attacks cannot run on it. Received: a model whose output does "
            "not depend differentiably on x (use a score-based attack)"
        )
    if n == 1:
        return obj, logits, grad
    batch = tf.shape(x_adv)[0]
    obj = tf.reduce_mean(tf.reshape(obj, [n, batch]), axis=0)
    logits = tf.reduce_mean(tf.reshape(logits, [n, batch, -1]), axis=0)
    return obj, logits, grad / float(n)


def steepest_step(grad, norm):
    """The unit-norm steepest-ascent direction: sign(g) for L-inf, g/||g||2
    for L2. Example: `steepest_step(g, "linf")`."""
    if norm == "linf":
        return tf.sign(grad)
    return grad / (l2_norm(grad) + _TINY)


def project(delta, eps, norm):
    """Projects perturbations onto the eps-ball of `norm`.

    Example: `project(tf.ones((1, 4)), 0.5, "l2")` has L2 norm 0.5.
    """
    if norm == "linf":
        return tf.clip_by_value(delta, -eps, eps)
    n = l2_norm(delta)
    return delta * tf.minimum(1.0, eps / (n + _TINY))


def clip_box(x_adv, clip):
    """Clips to the valid input box (no-op for `clip=None`)."""
    if clip is None:
        return x_adv
    return tf.clip_by_value(x_adv, clip[0], clip[1])


def random_start(shape, eps, norm, seed):
    """A uniform random point in the eps-ball (stateless, from `seed`).

    Example: `random_start((2, 4), 0.3, "linf", tf.constant([0, 0]))`.
    """
    if norm == "linf":
        return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * eps
    direction = tf.random.stateless_normal(shape, seed)
    direction = direction / (l2_norm(direction) + _TINY)
    dim = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
    u = tf.random.stateless_uniform(
        tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), seed + 1
    )
    return direction * eps * tf.pow(u, 1.0 / dim)


# --------------------------------------------------------------------------
# Compiled-loop cache
# --------------------------------------------------------------------------

_CACHE = weakref.WeakKeyDictionary()


def compiled(model, impl, *, input_rank=None, **static):
    """Runs `impl(model, *args, **static)` through a cached `tf.function`.

    One function is built per (`model`, `impl`, `input_rank`, static
    configuration) and wrapped with `tf.function(reduce_retracing=True,
    autograph=False)` (the loops are Python loops over static counts): plain
    graph mode, since on CPU XLA was measured several times slower. The
    function holds the model weakly, so caching never keeps a model alive.
    Models that cannot be weakly referenced get a fresh function per call.
    `input_rank` (the rank of `x`) only keys the cache: one function serving
    inputs of two ranks would be retraced with an input of unknown rank,
    which Keras models reject.

    Example: `fn = compiled(model, pgd_loop, input_rank=2, steps=10, ...);
    fn(x, y, ...)`.
    """
    key = (impl, input_rank, tuple(sorted(static.items())))
    try:
        per_model = _CACHE.setdefault(model, {})
        ref = weakref.ref(model)
    except TypeError:
        return tf.function(
            lambda *args: impl(model, *args, **static), reduce_retracing=True,
            autograph=False,
        )
    fn = per_model.get(key)
    if fn is None:
        fn = per_model[key] = tf.function(
            lambda *args: impl(ref(), *args, **static), reduce_retracing=True,
            autograph=False,
        )
    return fn


def run_relaxed(fn, *args):
    """Calls a compiled attack loop, tracing it once for any batch size.

    The first call traces `fn` with the batch (leading) dimension of every
    tensor argument left unknown, so that later calls on smaller batches
    (for example only the examples that an attack has not broken yet) reuse
    that graph instead of tracing again.

    Example: `run_relaxed(compiled(model, apgd_loop, **static), x, y, ...)`.
    """
    if not getattr(fn, "_keras_adv_relaxed", False):
        specs = []
        for a in args:
            if a.shape.rank:
                specs.append(tf.TensorSpec([None] + a.shape[1:].as_list(), a.dtype))
            else:
                specs.append(tf.TensorSpec(a.shape, a.dtype))
        fn.get_concrete_function(*specs)
        try:
            fn._keras_adv_relaxed = True
        except AttributeError:  # pragma: no cover - tf.function allows it
            pass
    return fn(*args)
