"""Pieces shared by the gradient attacks: `prepare` (checks and labels),
the input gradient with EOT, and the cache of compiled attack loops.

Attacks are pure functions. When called eagerly they check their inputs in
NumPy (raising `ValueError` that names the argument), then run a
`tf.function` compiled once per (model, static configuration); when called
inside a `tf.function` (for example from a `train_step`) they trace inline and
the data checks become `tf.debugging` assertions. Argument checks live in
`keras_adv.validation`, tensor helpers in `keras_adv.ops`.
"""

import weakref

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks import ascent
from keras_adv.attacks.losses import attack_objective
from keras_adv.validation import (
    check_bool,
    check_input_shape,
    check_labels,
    check_x,
)


def prepare(model, x, y, *, clip, targeted, from_logits, loss, parts=False,
            true_labels=False):
    """Checks `targeted`, `x` and `y` and returns `(x, labels, source)`.

    The one home of the checks every attack starts with: `targeted` must be
    a bool (`"False"` is truthy: `TypeError` naming the value), a targeted
    attack needs `y`, `x` must lie in `clip` and fit the model, and the
    labels must match the batch and the model's classes.

    `labels` are the classes the attack works with (true classes, the
    model's own predictions when `y=None`, or the targets); `source` is the
    model's clean prediction, used as the true class by targeted DLR.
    With `true_labels=True`, `y` holds the true classes whatever
    `targeted` says (the attack picks its targets itself: APGD-T, FAB-T).
    With `parts=True`, `x` is the list of perturbed inputs of a view
    (`keras_adv.attacks.inputs`), each checked, and `model` takes the list.

    Example: `x, labels, source = prepare(model, x, None, clip=(0, 1),
    targeted=False, from_logits=None, loss="ce")`.
    """
    targeted = check_bool("targeted", targeted) and not true_labels
    if targeted and y is None:
        raise ValueError(
            "A targeted attack needs target labels. Received: y=None with "
            "targeted=True"
        )
    if parts:
        x = [check_x(part, clip) for part in x]
        first = x[0]
    else:
        x = first = check_x(x, clip)
        check_input_shape(model, x)
    known = ops.num_classes(model)
    if known is not None and y is not None and not (targeted and loss == "dlr"):
        # The labels and the class count are known: skip the forward pass.
        batch = first.shape[0] if tf.executing_eagerly() else None
        labels = check_labels(y, batch, known)
        _check_dlr_classes(loss, targeted, known)
        return x, labels, labels
    logits = ops.model_logits(model, x, from_logits)
    num_classes = ops.logits_width(logits)
    _check_dlr_classes(loss, targeted, num_classes)
    source = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if y is None:
        return x, source, source
    batch = first.shape[0] if tf.executing_eagerly() else None
    return x, check_labels(y, batch, num_classes), source


def _check_dlr_classes(loss, targeted, num_classes):
    need = 4 if targeted else 3
    if loss == "dlr" and num_classes is not None and num_classes < need:
        raise ValueError(
            f"loss='dlr' needs at least {need} classes. Received: model "
            f"with {num_classes} classes"
        )


# --------------------------------------------------------------------------
# Gradients and geometry
# --------------------------------------------------------------------------


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
    fn = objective_fn(model, labels, loss=loss, targeted=targeted,
                      source=source, from_logits=from_logits,
                      in_dtype=in_dtype, eot_samples=eot_samples)
    (obj, logits), grad = ascent.gradient(fn, x_adv)
    return obj, logits, grad


def objective_fn(model, labels, *, loss, targeted, source, from_logits,
                 in_dtype, eot_samples=1, assemble=None):
    """The attack objective as a function of the float32 input:
    `z -> (objective, logits)`, averaged over `eot_samples` passes (see
    `objective_and_gradient`), with the logits checked finite. Serves
    `ascent.ascend` and `ascent.gradient`.

    `z` may be a list of tensors (the perturbed inputs of a view, with
    `in_dtype` a list); `assemble(parts, n)` then builds the model input
    from the parts cast to their dtypes, the other inputs tiled `n` times
    (see `keras_adv.attacks.inputs`).

    Example: `fn = objective_fn(model, y, loss="ce", targeted=False,
    source=y, from_logits=None, in_dtype=tf.float32)`.
    """
    n = eot_samples
    if n > 1:
        labels = tf.tile(labels, [n])
        source = None if source is None else tf.tile(source, [n])

    def objective(z):
        batch_in = z if n == 1 else tf.nest.map_structure(
            lambda t: tf.tile(t, [n] + [1] * (t.shape.rank - 1)), z)
        model_in = ascent.cast_to(batch_in, in_dtype)
        if assemble is not None:
            model_in = assemble(model_in, n)
        logits = ops.model_logits(model, model_in, from_logits)
        logits = ascent.check_finite(logits, "outputs")
        obj = attack_objective(logits, labels, loss=loss, targeted=targeted,
                               source=source)
        if n == 1:
            return obj, logits
        batch = tf.shape(tf.nest.flatten(z)[0])[0]
        return (tf.reduce_mean(tf.reshape(obj, [n, batch]), axis=0),
                tf.reduce_mean(tf.reshape(logits, [n, batch, -1]), axis=0))

    return objective


def check_input_gradient(model, x, in_dtype, from_logits, attack):
    """Raises `ValueError` unless the model's logits change with `x`.

    For the minimal-perturbation attacks (`fab`, `deepfool`), which divide
    by the gradient's norm: a model with no input gradient (`tape.gradient`
    gives None: integer casts, rounding, argmax outputs, stop_gradient) or
    with a zero one for every example of the batch (a locally constant
    model: every ReLU dead, inputs clipped away) would leave
    every example where it is and call it robust. One gradient of a fixed
    random combination of the logits, zero for an example only where its
    whole Jacobian is (almost surely). Loss-based attacks do not call it:
    a saturated loss (defensive distillation) has a zero gradient and is
    a legitimate model to evaluate.

    `attack` names the attack in the message (`"FAB"`, `"DeepFool"`).

    Example: `check_input_gradient(model, x, "float32", None, "FAB")`.
    """
    z = tf.cast(x, tf.float32)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(z)
        logits = ops.model_logits(model, tf.cast(z, in_dtype), from_logits)
        logits = ascent.check_finite(logits, "outputs")
        r = tf.random.stateless_normal(tf.shape(logits), [0, 0])
        total = tf.reduce_sum(tf.cast(logits, tf.float32) * r)
    grad = tape.gradient(total, z)
    if grad is None:
        raise ValueError(
            f"model gives no gradient with respect to its input; {attack} "
            "cannot run on it. Received: a model whose output does not "
            "depend differentiably on x")
    grad = ascent.check_finite(grad, "input gradients")  # eager only
    if not bool(tf.reduce_any(tf.not_equal(grad, 0.0))):
        raise ValueError(
            f"{attack} needs the model's logits to change with x: their "
            "input gradient is zero for every example of the batch. "
            "Received: a model locally constant in x (every ReLU dead, "
            "inputs clipped away, a zero scale)")


# --------------------------------------------------------------------------
# Compiled-loop cache
# --------------------------------------------------------------------------

_CACHE = weakref.WeakKeyDictionary()


def compiled(model, impl, *, input_rank=None, **static):
    """Runs `impl(model, *args, **static)` through a cached `tf.function`.

    One function is built per (`model`, `impl`, `input_rank`, static
    configuration) and wrapped with `tf.function(reduce_retracing=True,
    autograph=False)` (the loops are explicit `tf.while_loop`s): plain
    graph mode, since on CPU XLA was measured several times slower. The
    function holds the model weakly, so caching never keeps a model alive.
    A non-finite model output or input gradient met inside it is raised as
    `ValueError` (see `ascent.check_finite`).
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
        return _Guarded(tf.function(
            lambda *args: impl(model, *args, **static), reduce_retracing=True,
            autograph=False,
        ))
    fn = per_model.get(key)
    if fn is None:
        fn = per_model[key] = _Guarded(tf.function(
            lambda *args: impl(ref(), *args, **static), reduce_retracing=True,
            autograph=False,
        ))
    return fn


class _Guarded:
    """A compiled attack loop whose non-finite-model assertion (see
    `ascent.check_finite`) reaches eager callers as `ValueError`."""

    def __init__(self, fn):
        self._fn = fn

    def __getattr__(self, name):
        # Everything else (get_concrete_function, tracing counts, ...) is the
        # tf.function's.
        return getattr(self._fn, name)

    def __call__(self, *args):
        try:
            return self._fn(*args)
        except tf.errors.InvalidArgumentError as e:
            if ascent.NON_FINITE not in e.message:
                raise
            text = e.message[e.message.index(ascent.NON_FINITE):]
            raise ValueError(text.split(" : Tensor had")[0]) from None


def run_relaxed(fn, *args):
    """Calls a compiled attack loop, tracing it once for any batch size.

    The first call traces `fn` with the batch (leading) dimension of every
    tensor argument left unknown, so that later calls on smaller batches
    (for example only the examples that an attack has not broken yet) reuse
    that graph instead of tracing again.

    Example: `run_relaxed(compiled(model, apgd_loop, **static), x, y, ...)`.
    """
    if not getattr(fn, "_keras_adv_relaxed", False):
        def spec(a):
            if a.shape.rank:
                return tf.TensorSpec([None] + a.shape[1:].as_list(), a.dtype)
            return tf.TensorSpec(a.shape, a.dtype)

        fn.get_concrete_function(*tf.nest.map_structure(spec, list(args)))
        try:
            fn._keras_adv_relaxed = True
        except AttributeError:  # pragma: no cover - tf.function allows it
            pass
    return fn(*args)
