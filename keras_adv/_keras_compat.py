"""The one home of every access to a private Keras or TensorFlow name.

Public Keras has no route for what each function here does. Each names the
private attribute it reads and the versions it was checked on; a Keras
release that changes one breaks only this module (and
`tests/test_keras_compat.py`). Nothing else in keras_adv touches Keras'
private modules or a private Keras attribute (docs/architecture.md).
"""


def softmax_logits(y_pred):
    """The pre-softmax logits Keras attaches to the output of every softmax
    it computes (`keras.activations.softmax`, `Softmax`, `Dense(...,
    activation="softmax")`), or `y_pred` itself when it carries none.

    Private attribute: `tensor._keras_logits`, checked on Keras 3.4.1, 3.8.0
    and 3.15.1 (TensorFlow backend).

    Example: `logits = softmax_logits(model(x))`.
    """
    return getattr(y_pred, "_keras_logits", y_pred)


def flatten_layers(model):
    """Every layer of `model`, nested ones included (layers inside layers
    and inside sub-models), `model` first; an empty list for an object that
    is not a Keras layer.

    Private method: `Layer._flatten_layers(include_self=True,
    recursive=True)`, the walk Keras uses for its own weight tracking;
    public Keras lists only a model's top-level `layers`. Checked on Keras
    3.4.1, 3.8.0 and 3.15.1.

    Example: `[l for l in flatten_layers(model) if isinstance(l,
    keras.layers.BatchNormalization)]`.
    """
    walk = getattr(model, "_flatten_layers", None)
    return list(walk(include_self=True, recursive=True)) if walk else []


def multi_worker(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` spanning two or
    more workers (where Keras' `fit` takes the code paths that
    `MultiWorkerFitFixes` and `per_replica_logs` work around).

    Private attribute: `strategy.extended._in_multi_worker_mode()`, the test
    Keras itself makes (`keras/src/backend/tensorflow/trainer.py`), checked
    on Keras 3.15.1 with TensorFlow 2.21.

    Example: `multi_worker(tf.distribute.get_strategy())` is False.
    """
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode())


def per_replica_logs(logs):
    """`logs` with every scalar reshaped to `[1]` under a multi-worker
    strategy (unchanged otherwise).

    Keras 3 (checked on 3.15.1) reduces the logs of a multi-worker step with
    `strategy.reduce("MEAN", value, axis=0)`, which fails for the scalar logs
    that every `train_step` returns ("Invalid reduction dimension 0 for
    input with 0 dimensions", keras-team/keras#20585). A `[1]` value
    reduces to the scalar mean over the replicas.

    Example: `return per_replica_logs({"loss": loss})` in a `train_step`.
    """
    import tensorflow as tf

    if not multi_worker(tf.distribute.get_strategy()):
        return logs
    return {k: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0
            else v for k, v in logs.items()}


class MultiWorkerFitFixes:
    """Mixin for a `keras.Model` that makes `fit`/`evaluate` start under a
    multi-worker `MultiWorkerMirroredStrategy`.

    Keras 3 (checked on 3.15.1) builds a model created in a strategy scope
    from the first batch after `strategy.reduce("MEAN", batch)`, which fails
    for the `(x, y)` structure of per-replica values when there are two or
    more workers ("Attempt to convert a value (PerReplica...)",
    keras-team/keras#20585, tensorflow/tensorflow#72388). Only the shapes
    matter for that build, so this builds from this worker's first replica
    slice instead. Private names: the method overridden,
    `Model._maybe_symbolic_build(iterator, data_batch)`, and the strategy
    the model was created under, `Model._distribute_strategy` (checked on
    Keras 3.15.1; a Keras without that method never calls the override).

    Example: `class Net(MultiWorkerFitFixes, keras.Model): ...`.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        import tensorflow as tf

        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and multi_worker(strategy):
            for _, _, it in iterator:
                batch = next(it)
                break
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v,
                batch)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator,
                                             data_batch=data_batch)
