"""`AdversarialModel`: adversarial training inside `model.fit`.

Built on Keras' public override points only (`compile`, `train_step`,
`test_step`, `compute_loss`, `compute_metrics`, `metrics`, `get_config`),
as `keras.distillation.Distiller` and the Keras guide "Customizing what
happens in fit() with TensorFlow" do: the model owns its loss tracker, its
loss-term trackers and its clean and adversarial metrics, all created in
`__init__` or `compile` (outside any replica context), and computes the
compiled loss itself from the loss object given to `compile`.
"""

import dataclasses
import inspect

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _keras_compat, ops, validation
from keras_adv.attacks import inputs
from keras_adv.defenses import protocol, tensors

_ADV_PREFIX = "adv_"


class _State:
    """What the model holds that is neither a weight nor saved: the eps
    scale of the warm-up, the defense's training state, the trackers and
    metrics, the compiled loss and the robust evaluators. A plain object:
    Keras tracking, `.keras` saving and `export` do not look inside it."""

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


def _simple_arguments(cls, args, kwargs):
    """The constructor arguments passed to `cls` other than `base`, `defense`
    and `name`, if they are all simple Python values; else None."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    spec = inspect.getfullargspec(cls.__init__)
    arguments = dict(bound.arguments)
    arguments.pop(spec.args[0], None)
    if spec.varargs and arguments.pop(spec.varargs, ()):
        return None
    arguments.update(arguments.pop(spec.varkw, {}) if spec.varkw else {})
    for key in ("base", "defense", "name", "perturb", "perturb_layer"):
        arguments.pop(key, None)
    simple = (str, int, float, bool, type(None))
    try:
        values = keras.tree.flatten(arguments)
    except TypeError:
        return None
    if not all(isinstance(v, simple) for v in values):
        return None
    return arguments


# Loss names (classes and function names) whose "accuracy" is categorical
# (one-hot labels) or binary; any other loss gets the sparse one.
_CATEGORICAL = ("CategoricalCrossentropy", "categorical_crossentropy",
                "CategoricalFocalCrossentropy", "categorical_focal_crossentropy")
_BINARY = ("BinaryCrossentropy", "binary_crossentropy",
           "BinaryFocalCrossentropy", "binary_focal_crossentropy")


def _loss_kind(loss):
    """"categorical", "binary" or "sparse", from the compiled loss."""
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


def _make_metric(spec, kind, prefix=""):
    """A new metric object from a `compile(metrics=...)` entry: a Metric
    instance (copied), a name or a function. "accuracy"/"acc" and
    "crossentropy"/"ce" follow the compiled loss, as in Keras."""
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
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(
            {**metric.get_config(), "name": prefix + metric.name})
    if isinstance(metric, type):
        metric = metric()
        return type(metric).from_config(
            {**metric.get_config(), "name": prefix + metric.name})
    name = spec if isinstance(spec, str) else metric.__name__
    return keras.metrics.MeanMetricWrapper(metric, name=prefix + name)


def _metric_list(metrics, argument):
    """The entries of `compile(metrics=...)` as a list (one output)."""
    if metrics is None:
        return []
    if isinstance(metrics, (list, tuple)):
        return list(metrics)
    raise ValueError(
        f"AdversarialModel takes {argument} as a list (one output). "
        f"Received: {argument}={metrics!r}"
    )


def _per_example_loss(loss):
    """`fn(y_true, y_pred) -> per-example values` and the reduction, from
    the loss given to `compile` (a `keras.losses.Loss`, a name or a
    function)."""
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


@keras.saving.register_keras_serializable(package="keras_adv")
class AdversarialModel(_keras_compat.MultiWorkerFitFixes, keras.Model):
    """A Keras model that trains adversarially inside `fit`.

    Two forms:

    - wrapper: `AdversarialModel(base, defense=...)` around any Sequential,
      functional or subclassed `keras.Model` returning logits (softmax
      outputs are detected and their logits used by the attacks);
    - base class: subclass it, define `call`, and pass `defense=` to
      `super().__init__`.

    `train_step` (TensorFlow backend order: unpack, forward under
    `tf.GradientTape`, loss, `optimizer.apply`, metrics) first calls
    `defense.perturb` in inference mode, outside the tape, so the attack
    neither updates batch-norm statistics nor applies dropout and computes
    only input gradients; then `defense.loss` in training mode inside the
    tape: that is the default `Defense.train_step`, which a defense may
    override (FreeTraining replays each batch with the perturbation from
    the training-mode backward pass, so batch norm sees perturbed batches,
    as in the paper).

    The loss terms come from the compiled loss (`sample_weight` and
    `class_weight` apply to every term); sparse and one-hot labels, NumPy
    arrays and `tf.data` all work. `fit` logs `loss`, each loss term of the
    defense (`clean_loss`, `adv_loss`, `kl_loss`, ...), the compiled metrics
    on clean inputs (`accuracy`) and on the adversarial batch
    (`adv_accuracy`). Clean metrics come from an inference-mode forward pass
    when the defense does not compute a clean training-mode one.
    `evaluate` reports clean metrics, and adversarial ones (`adv_loss`,
    `adv_accuracy`) with `evaluate(..., adversarial=True)`.

    Semi-supervised data: a sparse label of -1 (or a one-hot row of -1)
    marks an unlabeled example. Defenses that use unlabeled data (`VAT`,
    `DataSparsity`, and combinations containing them) take the supervised
    loss over the labeled examples only (their mean, exactly) and their
    penalty over every example; metrics count labeled examples only.
    Other defenses raise an error on -1 labels. A list of defenses,
    `defense=[PGDTraining(...), VAT(...)]`, is a
    `keras_adv.defenses.Combined`.

    A defense with `warmup_epochs > 0` ramps eps linearly over that many
    epochs during `fit` (per batch, from the epoch and the batch index);
    `model.current_eps` shows the value in use.

    `model.save("m.keras")` and `keras.models.load_model("m.keras")` restore
    the class and its defense (with `safe_mode=True`, no `custom_objects`);
    `model.export(path)` writes a SavedModel of the inference function only.

    Models with several inputs (`fit(x=[image, meta], y)` or a dict x):
    the defense perturbs the inputs named by `perturb` (default: every
    floating-point input), each within its own eps-ball and the `clip` box;
    the others pass through. Several perturbed inputs need a defense with
    `several_inputs` (PGD, FGSM, Fast, TRADES, MART, VAT); FreeTraining
    and DataSparsity take one. Token models (int ids into an `Embedding`):
    `perturb_layer="embedding"` runs the defense's inner maximisation on
    that layer's output (Miyato et al. 2017, "Adversarial Training Methods
    for Semi-Supervised Text Classification"; without normalising the
    embeddings) and adds the perturbation to the layer output recomputed
    inside the training tape, so the embedding weights train on the
    adversarial loss too; the defense's `clip` is then ignored. The base
    must be Functional or Sequential for `perturb_layer`. A view
    (`perturb` or `perturb_layer` in use) does not take combined defenses
    (`Combined`, `a + b`). `evaluate(adversarial=...)` then calls the
    attack as `attack(model_of_parts, parts, y)`, where `parts` are the
    perturbed inputs (or the layer output).

    Args:
        base: the `keras.Model` to train (wrapper form), or `None` in a
            subclass that defines `call`.
        defense: a `keras_adv.defenses.Defense` configuration, or a list of
            them (a `Combined` defense).
        perturb: the inputs the defense perturbs in a model with several
            inputs: Keras input names, dict keys or positions, one or a
            list; `None` for every floating-point input.
        perturb_layer: the name of a layer of `base` whose output the
            defense perturbs (token models), or `None`.
        **kwargs: passed to `keras.Model` (`name`, ...).

    Raises:
        ValueError: `base` is not a `keras.Model`, or `defense` is not a
            `Defense`; at compile time, no loss; `perturb` and
            `perturb_layer` both given, `perturb_layer` not a layer of
            `base` (or `base` subclassed), a combined defense with either;
            at the first batch, `perturb` naming an unknown input or an
            integer one.

    Example:

    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model = keras_adv.models.AdversarialModel(
    ...     base, defense=keras_adv.defenses.PGDTraining(eps=0.1, steps=3))
    >>> model.compile(optimizer="adam", metrics=["accuracy"],
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x = np.random.rand(32, 4).astype("float32")
    >>> y = np.arange(32) % 3
    >>> logs = model.fit(x, y, epochs=1, verbose=0).history
    >>> sorted(logs)
    ['accuracy', 'adv_accuracy', 'adv_loss', 'loss']

    Subclass form:

    ```python
    class Net(keras_adv.models.AdversarialModel):
        def __init__(self, **kwargs):
            super().__init__(defense=keras_adv.defenses.TRADES(eps=0.3),
                             **kwargs)
            self.hidden = keras.layers.Dense(64, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, x, training=False):
            return self.out(self.hidden(keras.ops.reshape(x, (-1, 784))))
    ```
    """

    def __new__(cls, *args, **kwargs):
        # keras.Model.__new__ does not record constructor arguments, so a
        # subclass's default get_config would save their default values.
        # Record the simple ones passed here (the defense and base are
        # serialised by get_config itself).
        instance = super().__new__(cls, *args, **kwargs)
        instance._adv_init_config = _simple_arguments(cls, args, kwargs)
        return instance

    def __init__(self, base=None, *, defense, perturb=None,
                 perturb_layer=None, **kwargs):
        super().__init__(**kwargs)
        if base is not None and not isinstance(base, keras.Model):
            raise ValueError(
                "base must be a keras.Model (Sequential, functional or "
                f"subclassed). Received: base={base!r}"
            )
        if base is None and type(self).call is AdversarialModel.call:
            raise ValueError(
                "AdversarialModel needs a base model to wrap, or a subclass "
                "that defines call(). Received: base=None"
            )
        self.base = base
        if base is not None and base.built:
            self.built = True  # nothing to build (BackupAndRestore needs it)
        self._state = _State()
        self.defense = defense
        self._set_view(perturb, perturb_layer)

    def _set_view(self, perturb, perturb_layer):
        """Checks and stores `perturb` and `perturb_layer`."""
        if isinstance(perturb, (list, tuple)):
            perturb = list(perturb)
        if perturb is not None and perturb_layer is not None:
            raise ValueError(
                "perturb and perturb_layer cannot be combined. Received: "
                f"perturb={perturb!r} with perturb_layer={perturb_layer!r}")
        if isinstance(perturb_layer, keras.layers.Layer):
            perturb_layer = perturb_layer.name
        if perturb_layer is not None:
            inputs.split(self._viewed_model(), perturb_layer)
        self._view_spec = (perturb, perturb_layer)
        if (perturb is not None or perturb_layer is not None) and isinstance(
                self.defense, protocol.Combined):
            raise ValueError(
                "perturb and perturb_layer do not take combined defenses. "
                f"Received: defense={self.defense!r}")

    @property
    def perturb(self):
        """The inputs the defense perturbs (`None`: the floating ones)."""
        return self._view_spec[0]

    @property
    def perturb_layer(self):
        """The name of the layer whose output is perturbed, or `None`."""
        return self._view_spec[1]

    def _viewed_model(self):
        return self.base if self.base is not None else self

    def _bind(self, x):
        """The `inputs.Bound` model of the batch for the defense, or `None`
        for a plain tensor input perturbed as a whole."""
        perturb, layer = getattr(self, "_view_spec", (None, None))
        bound = inputs.bind(self._viewed_model(), x, perturb=perturb,
                            perturb_layer=layer)
        if bound is None:
            return None
        defense = self._view_defense()
        if isinstance(defense, protocol.Combined):
            raise ValueError(
                "Combined defenses do not train models with several inputs "
                f"or a perturb_layer. Received: defense={defense!r}")
        view = bound.view
        if not defense.keeps_rows:
            raise ValueError(
                f"{type(defense).__name__} stacks copies or generated points "
                "of the batch, which a model with other inputs held fixed or "
                "a perturb_layer cannot take. Received: "
                f"defense={defense!r}")
        if len(view.parts) > 1 and not defense.several_inputs:
            raise ValueError(
                f"{type(defense).__name__} perturbs one input; name it with "
                "AdversarialModel(perturb=...). Received: perturb="
                f"{perturb!r}, choosing {len(view.parts)} inputs")
        if not view.layer:
            view.parts = [validation.check_x(p, defense.clip)
                          for p in view.parts]
        return bound

    def _view_defense(self):
        """The defense used through a view: without its box for a layer
        output (which has none)."""
        defense = self.defense
        if self.perturb_layer is None or getattr(defense, "clip", None) is None:
            return defense
        if dataclasses.is_dataclass(defense) and any(
                f.name == "clip" for f in dataclasses.fields(defense)):
            return dataclasses.replace(defense, clip=None)
        return defense

    # ------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------

    @property
    def defense(self):
        """The `keras_adv.defenses.Defense` used by `train_step`."""
        return self._state.defense

    @defense.setter
    def defense(self, defense):
        if isinstance(defense, (list, tuple)):
            defense = protocol.Combined(list(defense))
        if not isinstance(defense, protocol.Defense):
            raise ValueError(
                "defense must be a keras_adv.defenses.Defense (FGSMTraining, "
                "PGDTraining, FastTraining, FreeTraining, TRADES, MART, VAT, "
                "DataSparsity, ...) or a list of them. "
                f"Received: defense={defense!r}"
            )
        state = self._state
        state.defense = defense
        names = list(dict.fromkeys(tuple(defense.loss_terms) + ("adv_loss",)))
        with self.distribute_strategy.scope():
            state.term_trackers = {n: keras.metrics.Mean(name=n)
                                   for n in names}
            state.defense_state = defense.create_state()
        self.train_function = None
        self.test_function = None
        state.robust = (None, None)

    @property
    def current_eps(self):
        """The budget `train_step` uses now (below `defense.eps` during a
        warm-up).

        Example: `model.current_eps` is 0.15 halfway through a warm-up to 0.3.
        """
        return float(self.defense.eps) * float(self._state.eps_scale.numpy())

    def set_eps_scale(self, scale):
        """Sets the warm-up factor in [0, 1] applied to `defense.eps` by
        `train_step` (`fit` does this itself when `warmup_epochs > 0`).

        Example: `model.set_eps_scale(0.5)`.
        """
        scale = validation.check_number("scale", scale, upper=1.0)
        self._state.eps_scale.assign(scale)

    def call(self, inputs, training=None):
        """Runs the wrapped model (wrapper form); subclasses override it.

        Example: `logits = model(x)`.
        """
        return self.base(inputs, training=training)

    # ------------------------------------------------------------------
    # compile / loss / metrics
    # ------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None,
                metrics=None, weighted_metrics=None, **kwargs):
        """Same arguments as `keras.Model.compile` for one output; a loss is
        required. The metrics are also computed on the adversarial batch,
        under names prefixed with `adv_`.

        The model computes the loss itself from `loss` (a `keras.losses.Loss`,
        a name or a function `fn(y_true, y_pred)` returning per-example
        values): the mean over the batch of the per-example values times
        `sample_weight` (the sum with `reduction="sum"`). "accuracy" and
        "crossentropy" follow the loss: categorical for
        `CategoricalCrossentropy`, binary for `BinaryCrossentropy`, sparse
        otherwise.

        Raises:
            ValueError: no loss, or a loss or metrics for several outputs.

        Example: `model.compile("adam", keras.losses.
        SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])`.
        """
        if loss is None:
            raise ValueError(
                "AdversarialModel needs a loss in compile(): every defense "
                "minimises it on clean and/or adversarial inputs. Received: "
                "loss=None"
            )
        loss_fn = _per_example_loss(loss)
        plain = _metric_list(metrics, "metrics")
        weighted = _metric_list(weighted_metrics, "weighted_metrics")
        super().compile(optimizer=optimizer, loss=loss,
                        loss_weights=loss_weights, metrics=metrics,
                        weighted_metrics=weighted_metrics, **kwargs)
        state = self._state
        state.loss_fn = loss_fn
        state.loss_weight = 1.0 if loss_weights is None else float(
            keras.tree.flatten(loss_weights)[0])
        kind = _loss_kind(loss)
        with self.distribute_strategy.scope():
            specs = [(m, False) for m in plain] + [(m, True) for m in weighted]
            state.clean_metrics = [(_make_metric(m, kind), w)
                                   for m, w in specs]
            state.adv_metrics = [(_make_metric(m, kind, _ADV_PREFIX), w)
                                 for m, w in specs]
            state.loss_tracker = keras.metrics.Mean(name="loss")
        state.robust = (None, None)

    def compile_from_config(self, config):
        """Compiles from `get_compile_config()` (used by `load_model`).

        Example: `model.compile_from_config(other.get_compile_config())`.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        """Loss, loss terms, clean metrics, then adversarial metrics (all
        owned by the model)."""
        state = self._state
        return ([state.loss_tracker] + list(state.term_trackers.values())
                + [m for m, _ in state.clean_metrics]
                + [m for m, _ in state.adv_metrics])

    def _task_loss(self, y, y_pred, sample_weight=None):
        """The compiled loss of `y_pred`: the mean over the batch (on each
        replica) of the per-example loss times `sample_weight`."""
        fn, reduction = self._state.loss_fn
        # As keras.losses.Loss.__call__: both in the loss dtype (float32,
        # also under mixed precision).
        y_pred = tf.cast(y_pred, tf.float32)
        y = tf.cast(y, tf.float32)
        values = tf.cast(fn(y, y_pred), tf.float32)
        if values.shape.rank == 0:
            return values * self._state.loss_weight
        if values.shape.rank > 1:
            values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
        if reduction == "sum":
            w = 1.0 if sample_weight is None else tf.cast(
                tf.reshape(sample_weight, [-1]), tf.float32)
            loss = tf.reduce_sum(values * w)
        else:
            loss = tensors.weighted_mean(values, sample_weight)
        return loss * self._state.loss_weight

    def _regularization(self):
        extra = [tf.cast(tf.reduce_sum(v), tf.float32) for v in self.losses]
        return tf.add_n(extra) if extra else tf.constant(0.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """The compiled loss of `y_pred` plus the model's regularisation
        losses (the clean loss `evaluate` reports).

        Example: `model.compute_loss(y=y, y_pred=model(x))`.
        """
        del x, training
        return self._task_loss(y, y_pred, sample_weight) + self._regularization()

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the clean metrics and returns every metric's result.

        Example: `logs = model.compute_metrics(x, y, model(x))`.
        """
        del x
        _update(self._state.clean_metrics, y, y_pred, sample_weight)
        return self.get_metrics_result()

    def _record_adversarial(self, y, y_pred_adv, sample_weight=None):
        _update(self._state.adv_metrics, y, y_pred_adv, sample_weight)

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def _num_classes(self):
        """The class count the model declares (None when unknown)."""
        model = self.base if self.base is not None else self
        return ops.declared_classes(model)

    def _minimize(self, tape, loss, sources=()):
        """Applies the weight gradient of `loss` (a per-replica mean) and
        returns the gradients with respect to `sources`."""
        weights = self.trainable_weights
        with tape:  # both scalings must be on the tape
            loss = loss / _replicas()  # gradients are summed over replicas
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)  # mixed_float16
        grads = tape.gradient(loss, list(weights) + list(sources))
        if weights:
            self.optimizer.apply(grads[: len(weights)], weights)
        return grads[len(weights):]

    def _training_step(self):
        """The `TrainingStep` handed to `defense.train_step`."""
        state = self._state
        eps = tf.cast(self.defense.eps, tf.float32) * state.eps_scale
        return protocol.TrainingStep(
            model=self, eps=eps, task_loss=self._task_loss,
            regularization=self._regularization, minimize=self._minimize,
            record_adversarial=self._record_adversarial,
            state=state.defense_state)

    def train_step(self, data):
        """One adversarial-training step: unpack and check the batch, then
        `defense.train_step` (perturb-then-loss unless the defense owns its
        step), then the metrics.

        Example: called by `fit`; `model.train_step((x, y))` also works.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "Adversarial training needs labels. Received: data without y"
            )
        x, y = validation.check_batch(
            x, y, clip=self.defense.clip, num_classes=self._num_classes(),
            unlabeled=self.defense.uses_unlabeled)
        bound = self._bind(x)
        if bound is None:
            result = self.defense.train_step(self._training_step(), x, y,
                                             sample_weight)
            return self._train_logs(x, y, sample_weight, result)
        # Several inputs or a layer output: the defense sees the perturbed
        # tensors and a model of them (the other inputs fixed).
        step = self._training_step()._replace(model=bound)
        result = self._view_defense().train_step(step, bound.parts, y,
                                                 sample_weight)
        return self._train_logs(x, y, sample_weight, result, adv_model=bound)

    def _train_logs(self, x, y, sample_weight, result, adv_model=None):
        """Updates the trackers and metrics after a step; returns the logs."""
        state = self._state
        batch = _batch_size(x)
        state.loss_tracker.update_state(result.loss, sample_weight=batch)
        for name in self.defense.loss_terms:
            state.term_trackers[name].update_state(result.terms[name],
                                                   sample_weight=batch)
        y_pred, y_adv = result.y_pred, None
        if state.clean_metrics and y_pred is None:
            y_pred = self(x, training=False)
        if state.adv_metrics and result.x_adv is not None:
            y_adv = result.y_pred_adv
            if y_adv is None:
                y_adv = (adv_model or self)(result.x_adv, training=False)
        y_m, w_m = y, sample_weight
        if self.defense.uses_unlabeled:
            # Metrics count the labeled examples only.
            y_m, y_pred, y_adv, w_m = tensors.labeled_rows(
                tensors.labeled_mask(y), y, y_pred, y_adv, sample_weight)
        if state.clean_metrics:
            self.compute_metrics(x, y_m, y_pred, w_m)
        if y_adv is not None:
            self._record_adversarial(y_m, y_adv, w_m)
        names = ("loss",) + tuple(self.defense.loss_terms)
        return self._logs(names, adversarial=bool(state.adv_metrics))

    def _logs(self, names, adversarial):
        """The results of the named trackers, the clean metrics and (when
        `adversarial`) the adversarial ones."""
        state = self._state
        trackers = {"loss": state.loss_tracker, **state.term_trackers}
        logs = {n: trackers[n].result() for n in names}
        groups = [state.clean_metrics] + ([state.adv_metrics] if adversarial
                                          else [])
        for group in groups:
            for metric, _ in group:
                result = metric.result()
                if isinstance(result, dict):
                    logs.update(result)
                else:
                    logs[metric.name] = result
        return _keras_compat.per_replica_logs(logs)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, *args, **kwargs):
        """`keras.Model.fit`, plus the eps warm-up of the defense.

        Example: `model.fit(train_ds, validation_data=val_ds, epochs=10)`.
        """
        if _is_array(x) and _is_array(y):
            # Check in-memory data once, eagerly: a clear error before any
            # step (tf.data batches are checked in the graph by train_step).
            validation.check_batch(
                x, y, clip=self.defense.clip,
                num_classes=self._num_classes(),
                unlabeled=self.defense.uses_unlabeled)
        callbacks = list(callbacks or [])
        if self.defense.warmup_epochs > 0:
            callbacks.insert(0, _EpsWarmup())
        return super().fit(x, y, batch_size, epochs, verbose, callbacks, *args,
                           **kwargs)

    # ------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------

    def evaluate(self, x=None, y=None, *args, adversarial=False, **kwargs):
        """`keras.Model.evaluate`; with `adversarial` also the loss and
        metrics on attacked inputs (`adv_loss`, `adv_accuracy`, ...).

        Args:
            x, y, *args, **kwargs: as `keras.Model.evaluate`.
            adversarial: `False` (clean only); `True` attacks with the
                defense's own `attack` (its `perturb` at the full eps; for
                single-step defenses that is FGSM, which masked models
                resist, for VAT the virtual adversarial point and for
                DataSparsity a noise point: prefer a strong attack); or a
                callable `attack(model, x, y) -> x_adv` traced inside the
                test step, for example
                `functools.partial(keras_adv.attacks.pgd, eps=0.3, steps=40)`.

        Returns:
            As `keras.Model.evaluate`.

        Raises:
            ValueError: `adversarial` is neither a bool nor a callable.

        Example: `model.evaluate(x, y, adversarial=True, return_dict=True)`.
        """
        if adversarial is not False and adversarial is not True and (
            not callable(adversarial)
        ):
            raise ValueError(
                "adversarial must be True, False or a callable attack(model, "
                f"x, y). Received: adversarial={adversarial!r}"
            )
        if adversarial is False:
            return super().evaluate(x, y, *args, **kwargs)
        # A robust evaluation runs in its own Keras model, whose test
        # function is traced once per attack and kept: repeated robust
        # evaluations do not retrace, nor do clean ones.
        attack, evaluator = self._state.robust
        if evaluator is None or attack is not adversarial:
            with self.distribute_strategy.scope():
                evaluator = _RobustEvaluation(self, adversarial)
            self._state.robust = (adversarial, evaluator)
        return evaluator.evaluate(x, y, *args, **kwargs)

    def _clean_test(self, x, y, sample_weight):
        """The clean part of a test step: its logs and the batch used."""
        if y is not None and self.defense.uses_unlabeled:
            # Semi-supervised data: evaluate the labeled examples only.
            x, y, sample_weight = tensors.labeled_rows(
                tensors.labeled_mask(y), x, y, sample_weight)
        y_pred = self(x, training=False)
        state = self._state
        if y is not None:
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred,
                                     sample_weight=sample_weight,
                                     training=False)
            state.loss_tracker.update_state(loss, sample_weight=_batch_size(x))
            self.compute_metrics(x, y, y_pred, sample_weight)
        return (x, y, sample_weight), self._logs(("loss",), adversarial=False)

    def test_step(self, data):
        """Clean loss and metrics (adversarial ones come from
        `evaluate(adversarial=...)`).

        Example: called by `evaluate`.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return self._clean_test(x, y, sample_weight)[1]

    def _robust_test_step(self, data, attack):
        """Clean and adversarial loss and metrics for one batch."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "evaluate(adversarial=...) needs labels. Received: data "
                "without y"
            )
        (x, y, sample_weight), logs = self._clean_test(x, y, sample_weight)
        model, x_in, defense = self, x, self.defense
        bound = self._bind(x)
        if bound is not None:
            model, x_in, defense = bound, bound.parts, self._view_defense()
        if attack is True:
            x_adv = defense.attack(model, x_in, y)
        else:
            x_adv = attack(model, x_in, y)
        y_adv = model(x_adv, training=False)
        tracker = self._state.term_trackers["adv_loss"]
        tracker.update_state(self._task_loss(y, y_adv, sample_weight),
                             sample_weight=_batch_size(x))
        self._record_adversarial(y, y_adv, sample_weight)
        adv = self._logs(("adv_loss",), adversarial=True)
        return {**logs, **adv}

    # ------------------------------------------------------------------
    # Saving
    # ------------------------------------------------------------------

    def get_config(self):
        """The config: Keras' (name, ...), the wrapped model and the defense.

        Subclasses with constructor arguments other than simple Python
        values (numbers, strings, ...) must extend it, as for any Keras
        model.

        Example: `keras_adv.models.AdversarialModel.from_config(
        model.get_config())`.
        """
        config = {"name": self.name, "trainable": self.trainable}
        subclass = type(self) is not AdversarialModel
        if subclass and type(self).get_config is AdversarialModel.get_config:
            recorded = getattr(self, "_adv_init_config", None)
            if recorded is None:
                raise NotImplementedError(
                    f"{type(self).__name__} was created with constructor "
                    "arguments that are not simple Python values (numbers, "
                    "strings, lists of them); implement get_config() (and "
                    "from_config() if needed) to save it."
                )
            config.update(recorded)
        config["defense"] = keras.saving.serialize_keras_object(self.defense)
        if self.perturb is not None:
            config["perturb"] = self.perturb
        if self.perturb_layer is not None:
            config["perturb_layer"] = self.perturb_layer
        if self.base is not None:
            config["base"] = keras.saving.serialize_keras_object(self.base)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the model (wrapper or subclass) and its defense.

        Example: `AdversarialModel.from_config(model.get_config())`.
        """
        config = dict(config)
        defense = keras.saving.deserialize_keras_object(
            config.pop("defense"), custom_objects=custom_objects)
        if "base" in config:
            config["base"] = keras.saving.deserialize_keras_object(
                config["base"], custom_objects=custom_objects)
        params = inspect.signature(cls.__init__).parameters
        if "defense" in params:
            return cls(defense=defense, **config)
        # A subclass that fixes its defense in __init__: build it, then put
        # the saved defense in place.
        view = (config.pop("perturb", None), config.pop("perturb_layer", None))
        model = cls(**config)
        model.defense = defense
        if view != (None, None):
            model._set_view(*view)
        return model

    def export(self, filepath, format="tf_saved_model", **kwargs):
        """`keras.Model.export` of the inference model: the wrapped model in
        the wrapper form (the same function, without the defense), the model
        itself for subclasses. Keyword arguments (`verbose`,
        `input_signature`, ...) go to Keras as given (Keras 3.4 takes none).

        Example: `model.export("serving/")`.
        """
        target = self.base if self.base is not None else super()
        return target.export(filepath, format=format, **kwargs)


def _update(metrics, y, y_pred, sample_weight):
    """Updates `(metric, weighted)` pairs (plain metrics ignore weights)."""
    for metric, weighted in metrics:
        metric.update_state(y, y_pred,
                            sample_weight=sample_weight if weighted else None)


def _batch_size(x):
    return tf.shape(keras.tree.flatten(x)[0])[0]


def _is_array(value):
    """A NumPy array or an eager tensor (not a dataset or generator)."""
    return isinstance(value, np.ndarray) or (
        tf.is_tensor(value) and hasattr(value, "numpy"))


def _replicas():
    """Replicas in sync of the current distribution strategy (1 without)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


class _Target:
    """The model a `_RobustEvaluation` evaluates and its attack, held out of
    Keras tracking (the evaluator must not own, save or export the model)."""

    def __init__(self, model, attack):
        self.model = model
        self.attack = attack


class _RobustEvaluation(_keras_compat.MultiWorkerFitFixes, keras.Model):
    """Runs `AdversarialModel.evaluate(adversarial=attack)`: a Keras model
    whose test step is the adversarial model's robust one and whose metrics
    are the adversarial model's, so that Keras keeps one traced test
    function per attack beside the model's clean one."""

    def __init__(self, model, attack):
        super().__init__()
        self._target = _Target(model, attack)
        self.built = True
        self.compile(optimizer="sgd")

    def call(self, inputs, training=None):
        return self._target.model(inputs, training=training)

    def test_step(self, data):
        target = self._target
        return target.model._robust_test_step(data, target.attack)

    @property
    def metrics(self):
        return self._target.model.metrics


class _EpsWarmup(keras.callbacks.Callback):
    """Sets the eps scale of an `AdversarialModel` before every batch from
    `defense.eps_at(epoch + batch / steps)` (per epoch when the number of
    steps is unknown)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._set(epoch + (0.0 if self._steps() else 1.0))

    def on_train_batch_begin(self, batch, logs=None):
        steps = self._steps()
        if steps:
            self._set(self._epoch + (batch + 1) / steps)

    def _steps(self):
        return (self.params or {}).get("steps")

    def _set(self, progress):
        d = self.model.defense
        scale = d.eps_at(progress) / d.eps if d.eps > 0 else 1.0
        self.model.set_eps_scale(min(1.0, max(0.0, scale)))
