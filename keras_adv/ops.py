"""Tensor helpers shared by attacks, defenses and evaluation, without
argument checks (see `keras_adv.validation` for those).

One home each: `sparse_labels` (the label converter), `to_logits` (the
reader of model outputs: softmax and sigmoid marks, probabilities, one-unit
binary heads; `model_logits`, `probabilities` and
`probabilities_of` call it), `batched_logits` (batched prediction),
`probabilities` (batched class probabilities), `num_classes` (the class
count), `robust_hits` (the rule for a robust example), norms, projections
and random starts. This module imports only `keras_adv._keras_compat`.
"""

import contextlib
import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _keras_compat

_TINY = 1e-12


def call_model(model, x, training=False):
    """Calls a Keras model (in inference mode by default) or a plain callable.

    Example: `call_model(model, x)`.
    """
    if getattr(model, "accepts_training", False) or (
            hasattr(model, "built") and hasattr(model, "get_config")):
        return model(x, training=training)
    return model(x)


def model_logits(model, x, from_logits=None):
    """Float32 logits `(batch, classes)` of `model` at `x` (inference mode).

    The outputs are read by `to_logits`: a Keras softmax or sigmoid is
    undone exactly, a one-unit output is a binary classifier (two logits
    `[0, z]`), and `from_logits=False` declares probabilities.

    Example:

    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2,
    ...     activation="softmax")])
    >>> model_logits(m, tf.ones((1, 3))).shape
    TensorShape([1, 2])
    """
    return to_logits(call_model(model, x), from_logits)


def to_logits(outputs, from_logits=None):
    """The one reader of model outputs: float32 logits `(batch, classes)`.

    - `from_logits=None` (the default) detects a softmax or sigmoid output:
      Keras attaches the pre-activation tensor to every softmax and sigmoid
      it computes, and those exact logits are used (no `log` of saturated
      probabilities). Outputs without that mark are taken as logits.
    - `from_logits=False` declares that the outputs are probabilities; their
      logarithm is used as logits, exact up to a per-example constant
      (irrelevant to CE, margin and DLR); one probability p becomes the
      logit `log(p) - log(1 - p)`.
    - **One output unit is a binary classifier**: its value z (a logit, or
      the logit of a sigmoid probability) becomes the two logits `[0, z]`.
      Then the predicted class is `z > 0`, softmax cross-entropy is binary
      cross-entropy, and every two-class computation of keras_adv (attacks,
      evaluation, certification, detectors) applies unchanged.

    Raises `ValueError` for a list or tuple of outputs (several heads).

    Example:

    >>> to_logits(tf.constant([[2.0], [-1.0]])).numpy().tolist()
    [[0.0, 2.0], [0.0, -1.0]]
    """
    if isinstance(outputs, (list, tuple, dict)):
        raise ValueError(
            "model must return a single tensor of shape (batch, classes). "
            f"Received: a model returning a {type(outputs).__name__} of "
            f"{len(outputs)} outputs"
        )
    outputs = tf.convert_to_tensor(outputs) if not tf.is_tensor(outputs) \
        else outputs
    binary = outputs.shape.rank == 2 and outputs.shape[-1] == 1
    if from_logits is False:
        p = tf.cast(outputs, tf.float32)
        if binary:
            p = tf.clip_by_value(p, 1e-30, 1.0 - 1e-7)
            z = tf.math.log(p) - tf.math.log1p(-p)
        else:
            z = tf.math.log(tf.maximum(p, 1e-30))
    else:
        z = tf.cast(_keras_compat.softmax_logits(outputs), tf.float32)
    if binary:
        z = tf.concat([tf.zeros_like(z), z], axis=-1)
    return z


def batched_logits(model, x, batch_size=256, from_logits=None):
    """`model_logits` over a NumPy array in batches, as a NumPy array.

    Example: `pred = batched_logits(model, x_test).argmax(-1)`.
    """
    out = [
        model_logits(model, tf.constant(x[start:start + batch_size]),
                     from_logits).numpy()
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(out)


def num_classes(model, x=None, from_logits=None):
    """The one reader of a model's class count.

    The count the model declares (a static last output dimension; 2 for
    one output unit, a binary classifier), else, given `x`, the width of
    its logits on `x[:1]` (one forward pass, read by `to_logits`); None
    when neither tells.

    Raises `ValueError` when the forward pass gives outputs that are not
    `(batch, classes)`.

    Example:

    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> num_classes(m)
    2
    """
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        shape = None
    if isinstance(shape, tuple) and len(shape) == 2 and shape[-1]:
        return max(2, int(shape[-1]))
    if x is None:
        return None
    return logits_width(model_logits(model, x[:1], from_logits))


def logits_width(logits):
    """The number of classes of a logits tensor `(batch, classes)`; raises
    `ValueError` for any other rank.

    Example: `logits_width(tf.zeros((4, 10)))` is 10.
    """
    if logits.shape.rank != 2:
        raise ValueError(
            "model must return logits of shape (batch, classes). Received: "
            f"model output with shape {tuple(logits.shape)}")
    width = logits.shape[-1]
    return None if width is None else int(width)


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


class _RuntimeRandom:
    """Whether in-graph draws use the runtime's own generator (see
    `runtime_random`)."""

    active = 0


@contextlib.contextmanager
def runtime_random():
    """Inside this block, `uniform` and `normal` draw with TensorFlow's
    stateful `RandomUniform` / `RandomStandardNormal` ops even for a seeded
    `keras.random.SeedGenerator`.

    Those two ops are the random ops every serving runtime has (TFLite
    builtins `RANDOM_UNIFORM` / `RANDOM_STANDARD_NORMAL`, ONNX
    `RandomUniformLike` / `RandomNormalLike`); Keras' stateless ops with a
    seed variable are not. `keras_adv.models.export_model` traces models
    inside this block for TFLite and ONNX.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> spec = tf.TensorSpec((None, 2), tf.float32)
    >>> with runtime_random():
    ...     fn = tf.function(lambda x: model(x)).get_concrete_function(spec)
    >>> fn(tf.zeros((1, 2))).shape
    TensorShape([1, 2])
    """
    _RuntimeRandom.active += 1
    try:
        yield
    finally:
        _RuntimeRandom.active -= 1


def uniform(shape, seed_generator=None):
    """Float32 uniform draws in [0, 1) of `shape`, in the graph.

    With a `keras.random.SeedGenerator`, Keras' stateless generator: a
    seeded generator gives a reproducible sequence, saved with the model.
    With `None`, TensorFlow's stateful `RandomUniform` op: the global
    generator (`keras.utils.set_random_seed` governs it), and the op every
    serving runtime has (`runtime_random`).

    Example: `u = uniform(tf.shape(x), layer.seed_generator)`.
    """
    if seed_generator is None or _RuntimeRandom.active:
        return tf.random.uniform(shape, dtype=tf.float32)
    return tf.cast(keras.random.uniform(shape, seed=seed_generator), tf.float32)


def normal(shape, seed_generator=None):
    """Float32 standard normal draws of `shape`, in the graph; the generator
    as `uniform`.

    Example: `noise = sigma * normal(tf.shape(x))`.
    """
    if seed_generator is None or _RuntimeRandom.active:
        return tf.random.normal(shape, dtype=tf.float32)
    return tf.cast(keras.random.normal(shape, seed=seed_generator), tf.float32)


def log1p(x):
    """`log(1 + x)` accurate for tiny `x` (Kahan's formula), from `log`,
    `div` and `where` only (ops every serving runtime has; TFLite builtins
    and ONNX have no `Log1p`).

    Example: `log1p(tf.constant([1e-9])).numpy()` is `[1e-9]`.
    """
    u = 1.0 + x
    ratio = x / tf.where(u == 1.0, 1.0, u - 1.0)
    return tf.where(u == 1.0, x, tf.math.log(u) * ratio)


def expm1(y):
    """`exp(y) - 1` accurate for tiny `y` (Kahan's formula), from `exp`,
    `log`, `div` and `where` only (no `Expm1` in TFLite builtins or ONNX).

    Example: `expm1(tf.constant([-1e-9])).numpy()` is `[-1e-9]`.
    """
    u = tf.exp(y)
    safe = (u != 1.0) & (u != 0.0)
    ratio = y / tf.where(safe, tf.math.log(tf.where(safe, u, 2.0)), 1.0)
    return tf.where(u == 1.0, y, tf.where(u == 0.0, -1.0, (u - 1.0) * ratio))


def _batch_sum(t, keepdims=True):
    axes = list(range(1, t.shape.rank))
    return tf.reduce_sum(t, axis=axes, keepdims=keepdims)


def l2_norm(t, keepdims=True):
    """Per-example L2 norm over all non-batch axes. Example: `l2_norm(d)`."""
    return tf.sqrt(_batch_sum(tf.square(t), keepdims))


def l1_norm(t, keepdims=True):
    """Per-example L1 norm over all non-batch axes. Example: `l1_norm(g)`."""
    return _batch_sum(tf.abs(t), keepdims)


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


def sparse_labels(y):
    """Sparse int32 labels from sparse `(batch,)`, `(batch, 1)` or one-hot /
    soft `(batch, classes)` labels (graph-safe, no checks).

    Example:

    >>> sparse_labels(tf.constant([[0.0, 1.0], [1.0, 0.0]])).numpy().tolist()
    [1, 0]
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1:
        return tf.argmax(y, axis=-1, output_type=tf.int32)
    return tf.cast(tf.reshape(y, [-1]), tf.int32)


def robust_hits(labels, clean_logits, *adv_logits):
    """The one rule for a robust example: per example, whether the clean
    logits and each of `adv_logits` (the outputs at adversarial points, one
    array per attack) are finite and predict the label.

    An example misclassified on clean inputs is never robust, even where an
    attack "fixes" it; a NaN or inf output is never a right prediction. With
    no `adv_logits` this is the clean hit: correct with finite outputs.
    `evaluate_robustness`, `callbacks.robust_accuracy` and
    `AdversarialModel.evaluate(adversarial=...)` (`robust_accuracy`) count
    their robust examples with it. Graph-safe, no checks.

    Args:
        labels: sparse `(batch,)`/`(batch, 1)` or one-hot labels.
        clean_logits: logits `(batch, classes)` at the clean inputs.
        *adv_logits: logits `(batch, classes)` at adversarial points.

    Returns:
        A bool tensor `(batch,)`.

    Example:

    >>> clean = tf.constant([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    >>> adv = tf.constant([[0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    >>> robust_hits([0, 0, 0], clean, adv).numpy().tolist()
    [False, False, True]
    """
    labels = sparse_labels(labels)
    hits = tf.ones_like(labels, dtype=tf.bool)
    for logits in (clean_logits, *adv_logits):
        logits = tf.convert_to_tensor(logits)
        pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
        finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)
        hits = hits & finite & tf.equal(pred, labels)
    return hits


def probabilities(model, x, batch_size=256, from_logits=None, name="model"):
    """The one batched reader of class probabilities: `(n, classes)`
    float64 NumPy from a Keras model or a plain callable on NumPy `x`, each
    batch read by `probabilities_of` (two columns for a one-unit binary
    model). Raises `ValueError` (naming `name`) for outputs that are not
    `(batch, classes)` or `(batch, 1)`, or not finite.

    Example: `probabilities(model, x_test[:10]).sum(axis=1)` is all ones;
    `probabilities(teacher, x, name="teacher")`.
    """
    parts = []
    for start in range(0, len(x), batch_size):
        out = call_model(model, x[start:start + batch_size])
        if not tf.is_tensor(out):
            out = np.asarray(out, np.float64)
        if np.ndim(out) != 2:
            raise ValueError(
                f"{name} must output one score per class (batch, classes), "
                "or one unit for a binary classifier. Received: outputs with "
                f"shape {tuple(np.shape(out))}")
        parts.append(probabilities_of(out, from_logits))
    probs = np.concatenate(parts)
    if not np.all(np.isfinite(probs)):
        raise ValueError(f"{name} must give finite outputs. Received: "
                         "outputs with NaN or inf values")
    return probs


def probabilities_of(outputs, from_logits=None):
    """Class probabilities `(n, classes)` (float64 NumPy) from outputs a
    callable returned: a tensor is read by `to_logits` (softmax and sigmoid
    marks, one-unit binary heads); a NumPy array carries no mark, so rows
    that already are distributions (>= 0, summing to 1) are kept as they
    are, a single column is a logit (a probability with
    `from_logits=False`), and anything else is taken as logits.

    Example:

    >>> probabilities_of(np.array([[0.0]])).tolist()
    [[0.5, 0.5]]
    """
    if tf.is_tensor(outputs):
        return softmax_np(to_logits(outputs, from_logits).numpy())
    out = np.asarray(outputs, np.float64)
    if out.ndim == 2 and out.shape[1] == 1:
        return softmax_np(to_logits(out, from_logits).numpy())
    if from_logits is False or (from_logits is None and out.size and (
            out.min() >= 0 and np.allclose(out.sum(axis=-1), 1.0,
                                           atol=1e-3))):
        return out
    return softmax_np(out)


def softmax_np(logits):
    """Row softmax of a NumPy array, in float64. Example:
    `softmax_np(np.zeros((1, 2)))` is `[[0.5, 0.5]]`."""
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def kl_divergence(clean_logits, adv_logits):
    """Per-example KL(p(clean) || p(adv)) with p = softmax of the logits.

    Example:

    >>> z = tf.constant([[1.0, 2.0]])
    >>> float(kl_divergence(z, z)[0])
    0.0
    """
    log_p = tf.nn.log_softmax(clean_logits)
    log_q = tf.nn.log_softmax(adv_logits)
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def l2_normalize(d):
    """Per-example unit L2 vectors, computed stably for tiny inputs (scaled
    by the largest entry first, so 1e-30 entries give a unit vector too);
    an all-zero example stays zero.

    Example:

    >>> v = l2_normalize(tf.constant([[3e-9, 4e-9]]))
    >>> [round(float(t), 4) for t in v[0]]
    [0.6, 0.8]
    """
    d = tf.cast(d, tf.float32)
    axes = list(range(1, d.shape.rank))
    d = tf.math.divide_no_nan(d, tf.reduce_max(tf.abs(d), axis=axes,
                                               keepdims=True))
    return tf.math.divide_no_nan(d, tf.sqrt(tf.reduce_sum(
        tf.square(d), axis=axes, keepdims=True)))

