"""What `AdversarialModel.compile` resolves, and the state it fills: the
per-example loss, the clean and `adv_` metrics, the trackers, the loss of a
batch and the logs of a step.

As `keras.distillation.Distiller` does, the model owns its loss and metric
objects and computes the compiled loss itself; this module holds that
resolution so that `models/adversarial.py` holds only the override points.
"""

import keras
import tensorflow as tf

from keras_adv import _keras_compat
from keras_adv.defenses import tensors

ADV_PREFIX = "adv_"

# Loss names (classes and function names) whose "accuracy" is categorical
# (one-hot labels) or binary; any other loss gets the sparse one.
_CATEGORICAL = ("CategoricalCrossentropy", "categorical_crossentropy",
                "CategoricalFocalCrossentropy", "categorical_focal_crossentropy")
_BINARY = ("BinaryCrossentropy", "binary_crossentropy",
           "BinaryFocalCrossentropy", "binary_focal_crossentropy")


class State:
    """What the model holds that is neither a weight nor saved: the eps
    scale of the warm-up, the defense's training state, the trackers and
    metrics, the compiled loss and the robust evaluators. A plain object:
    Keras tracking, `.keras` saving and `export` do not look inside it.

    Example: `state = State()` (in `AdversarialModel.__init__`).
    """

    def __init__(self):
        self.eps_scale = tf.Variable(1.0, trainable=False, dtype=tf.float32,
                                     name="eps_scale")
        self.defense = None
        self.defense_state = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {}
        self.loss_fn = None  # (per-example function, reduction)
        self.loss_weight = 1.0
        self.clean_metrics = []  # (metric, weighted) pairs
        self.adv_metrics = []
        self.robust = (None, None)  # (attack, evaluator)

    def set_defense(self, defense):
        """Holds `defense` with its loss-term trackers and training state
        (call inside the distribution strategy's scope).

        Example: `state.set_defense(PGDTraining(eps=0.3))`.
        """
        self.defense = defense
        names = list(dict.fromkeys(tuple(defense.loss_terms) + ("adv_loss",)))
        self.term_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.defense_state = defense.create_state()
        self.robust = (None, None)

    def resolve(self, loss, loss_weights, metrics, weighted_metrics):
        """Fills the loss and the metrics from `compile`'s arguments (call
        inside the distribution strategy's scope).

        Raises:
            ValueError: a loss or metrics for several outputs.

        Example: `state.resolve("sparse_categorical_crossentropy", None,
        ["accuracy"], None)`.
        """
        loss_fn = per_example_loss(loss)
        specs = ([(m, False) for m in metric_list(metrics, "metrics")]
                 + [(m, True) for m in metric_list(weighted_metrics,
                                                    "weighted_metrics")])
        self.loss_fn = loss_fn
        self.loss_weight = 1.0 if loss_weights is None else float(
            keras.tree.flatten(loss_weights)[0])
        kind = loss_kind(loss)
        self.clean_metrics = [(make_metric(m, kind), w) for m, w in specs]
        self.adv_metrics = [(make_metric(m, kind, ADV_PREFIX), w)
                            for m, w in specs]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.robust = (None, None)

    @property
    def metrics(self):
        """Loss, loss terms, clean metrics, then adversarial metrics.

        Example: `AdversarialModel.metrics` returns `state.metrics`.
        """
        return ([self.loss_tracker] + list(self.term_trackers.values())
                + [m for m, _ in self.clean_metrics]
                + [m for m, _ in self.adv_metrics])

    def eps(self):
        """The budget in use now: `defense.eps` times the warm-up scale (a
        float32 scalar tensor).

        Example: `state.eps()` is 0.15 halfway through a warm-up to 0.3.
        """
        return tf.cast(self.defense.eps, tf.float32) * self.eps_scale

    def record_clean(self, y, y_pred, sample_weight=None):
        """Updates the clean metrics (`accuracy`, ...).

        Example: `state.record_clean(y, model(x))`.
        """
        update_metrics(self.clean_metrics, y, y_pred, sample_weight)

    def record_adversarial(self, y, y_pred_adv, sample_weight=None):
        """Updates the adversarial metrics (`adv_accuracy`, ...).

        Example: `state.record_adversarial(y, model(x_adv))`.
        """
        update_metrics(self.adv_metrics, y, y_pred_adv, sample_weight)

    def record_losses(self, values, batch):
        """Updates the loss tracker (`"loss"`) and the loss-term trackers
        named in `values` with the means of a batch of `batch` examples.

        Example: `state.record_losses({"loss": total}, batch=64)`.
        """
        trackers = self._trackers()
        for name, value in values.items():
            trackers[name].update_state(value, sample_weight=batch)

    def _trackers(self):
        return {"loss": self.loss_tracker, **self.term_trackers}

    def unmeasured(self):
        """The names of the `adv_` metrics and loss terms that no batch has
        updated since their last reset (a Keras mean with a count of 0
        would report 0.0), so that the logs can leave them out.

        Example: `state.unmeasured()` is `[]` after an adversarial step.
        """
        terms = [m for name, m in self.term_trackers.items()
                 if name.startswith(ADV_PREFIX)]
        return [m.name for m in terms + [m for m, _ in self.adv_metrics]
                if getattr(m, "count", None) is not None
                and float(keras.ops.convert_to_numpy(m.count)) == 0]

    def task_loss(self, y, y_pred, sample_weight=None):
        """The compiled loss of `y_pred`: the mean over the batch (on each
        replica) of the per-example loss times `sample_weight` (the sum
        with `reduction="sum"`), times the loss weight.

        Example: `loss = state.task_loss(y, model(x))`.
        """
        fn, reduction = self.loss_fn
        # As keras.losses.Loss.__call__: both in the loss dtype (float32,
        # also under mixed precision).
        y_pred = tf.cast(y_pred, tf.float32)
        y = tf.cast(y, tf.float32)
        values = tf.cast(fn(y, y_pred), tf.float32)
        if values.shape.rank == 0:
            return values * self.loss_weight
        if values.shape.rank > 1:
            values = tf.reduce_mean(values,
                                    axis=list(range(1, values.shape.rank)))
        if reduction == "sum":
            w = 1.0 if sample_weight is None else tf.cast(
                tf.reshape(sample_weight, [-1]), tf.float32)
            loss = tf.reduce_sum(values * w)
        else:
            loss = tensors.weighted_mean(values, sample_weight)
        return loss * self.loss_weight

    def logs(self, names, adversarial):
        """The results of the named trackers, the clean metrics and (when
        `adversarial`) the adversarial ones.

        Example: `state.logs(("loss",), adversarial=False)`.
        """
        trackers = self._trackers()
        logs = {n: trackers[n].result() for n in names}
        groups = [self.clean_metrics] + ([self.adv_metrics] if adversarial
                                         else [])
        for group in groups:
            for metric, _ in group:
                result = metric.result()
                if isinstance(result, dict):
                    logs.update(result)
                else:
                    logs[metric.name] = result
        return _keras_compat.per_replica_logs(logs)


def update_metrics(metrics, y, y_pred, sample_weight):
    """Updates `(metric, weighted)` pairs (plain metrics ignore weights).

    Example: `update_metrics(state.clean_metrics, y, y_pred, None)`.
    """
    for metric, weighted in metrics:
        metric.update_state(y, y_pred,
                            sample_weight=sample_weight if weighted else None)


def loss_kind(loss):
    """`"categorical"`, `"binary"` or `"sparse"`, from the compiled loss.

    Example: `loss_kind("binary_crossentropy")` is `"binary"`.
    """
    name = loss if isinstance(loss, str) else getattr(
        loss, "__name__", type(loss).__name__)
    if isinstance(loss, keras.losses.Loss):
        name = type(loss).__name__
        fn = getattr(loss, "fn", None)  # a LossFunctionWrapper
        if name == "LossFunctionWrapper" and fn is not None:
            name = getattr(fn, "__name__", name)
    if name in _CATEGORICAL:
        return "categorical"
    if name in _BINARY:
        return "binary"
    return "sparse"


def make_metric(spec, kind, prefix=""):
    """A new metric object from a `compile(metrics=...)` entry: a Metric
    instance (copied), a name or a function. "accuracy"/"acc" and
    "crossentropy"/"ce" follow the compiled loss, as in Keras.

    Example: `make_metric("accuracy", "sparse", "adv_").name` is
    `"adv_accuracy"`.
    """
    if isinstance(spec, keras.metrics.Metric):
        config = dict(spec.get_config())
        config["name"] = prefix + spec.name
        return type(spec).from_config(config)
    if spec in ("accuracy", "acc"):
        cls = {"categorical": keras.metrics.CategoricalAccuracy,
               "binary": keras.metrics.BinaryAccuracy,
               "sparse": keras.metrics.SparseCategoricalAccuracy}[kind]
        return cls(name=prefix + spec)
    if spec in ("crossentropy", "ce"):
        cls = {"categorical": keras.metrics.CategoricalCrossentropy,
               "binary": keras.metrics.BinaryCrossentropy,
               "sparse": keras.metrics.SparseCategoricalCrossentropy}[kind]
        return cls(name=prefix + spec)
    metric = keras.metrics.get(spec)
    if isinstance(metric, type):
        metric = metric()
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(
            {**metric.get_config(), "name": prefix + metric.name})
    name = spec if isinstance(spec, str) else metric.__name__
    return keras.metrics.MeanMetricWrapper(metric, name=prefix + name)


def metric_list(metrics, argument):
    """The entries of `compile(metrics=...)` as a list (one output).

    Example: `metric_list(["accuracy"], "metrics")`.
    """
    if metrics is None:
        return []
    if isinstance(metrics, (list, tuple)):
        return list(metrics)
    raise ValueError(
        f"AdversarialModel takes {argument} as a list (one output). "
        f"Received: {argument}={metrics!r}"
    )


def per_example_loss(loss):
    """`fn(y_true, y_pred) -> per-example values` and the reduction, from
    the loss given to `compile` (a `keras.losses.Loss`, a name or a
    function).

    Example: `fn, reduction = per_example_loss("mse")`.
    """
    if loss is None:
        raise ValueError(
            "AdversarialModel needs a loss in compile(): every defense "
            "minimises it on clean and/or adversarial inputs. Received: "
            "loss=None")
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        return loss.call, reduction
    if callable(loss):
        return loss, "sum_over_batch_size"
    raise ValueError(
        "loss must be a keras.losses.Loss, a loss name or a function "
        f"(one output). Received: loss={loss!r}"
    )
