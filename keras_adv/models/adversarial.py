"""`AdversarialModel`: adversarial training inside `model.fit`."""

import inspect

import keras
import numpy as np
import tensorflow as tf
from keras.src import backend as keras_backend
from keras.src.trainers.compile_utils import CompileMetrics

from keras_adv import ops, validation
from keras_adv.defenses import base as defense_base

_ADV_PREFIX = "adv_"


class _State:
    """Training state that is neither a weight nor saved: the current eps
    scale of the warm-up and Free-AT's carried perturbation. A plain object,
    so Keras and `tf.Module` tracking (saving, export) never see it."""

    def __init__(self):
        self.eps_scale = tf.Variable(1.0, trainable=False, dtype=tf.float32,
                                     name="eps_scale")
        self.free_delta = tf.Variable(
            tf.zeros([0], tf.float32), trainable=False,
            shape=tf.TensorShape([None]), name="free_delta")


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
    for key in ("base", "defense", "name"):
        arguments.pop(key, None)
    simple = (str, int, float, bool, type(None))
    try:
        values = keras.tree.flatten(arguments)
    except TypeError:
        return None
    if not all(isinstance(v, simple) for v in values):
        return None
    return arguments


class _AdvCompileMetrics(CompileMetrics):
    """The compiled metrics, computed on the adversarial batch and named with
    the prefix `adv_` (`adv_accuracy`, ...)."""

    def build(self, y_true, y_pred):
        super().build(y_true, y_pred)
        for m in self.metrics:
            if not m.name.startswith(_ADV_PREFIX):
                m.name = _ADV_PREFIX + m.name


def _fresh_metrics(metrics):
    """A copy of a `compile(metrics=...)` structure in which every Metric
    instance is a new, unshared object (strings and functions are kept)."""
    if metrics is None:
        return None

    def copy(m):
        if isinstance(m, keras.metrics.Metric):
            return type(m).from_config(m.get_config())
        return m

    return keras.tree.map_structure(copy, metrics)


@keras.saving.register_keras_serializable(package="keras_adv")
class AdversarialModel(keras.Model):
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
    tape. Free-AT (a defense with `replays`) has its own replay step in
    which the perturbation comes from the training-mode backward pass (so
    there batch norm sees perturbed batches, as in the paper).

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

    Args:
        base: the `keras.Model` to train (wrapper form), or `None` in a
            subclass that defines `call`.
        defense: a `keras_adv.defenses.Defense` configuration, or a list of
            them (a `Combined` defense).
        **kwargs: passed to `keras.Model` (`name`, ...).

    Raises:
        ValueError: `base` is not a `keras.Model`, or `defense` is not a
            `Defense`; at compile time, no loss.

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
        object.__setattr__(instance, "_adv_init_config",
                           _simple_arguments(cls, args, kwargs))
        return instance

    def __init__(self, base=None, *, defense, **kwargs):
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
        object.__setattr__(self, "_adv_state", _State())
        object.__setattr__(self, "_adv_metrics", None)
        object.__setattr__(self, "_term_trackers", {})
        object.__setattr__(self, "_eval_attack", None)
        object.__setattr__(self, "_robust_test", (None, None))
        self.defense = defense

    # ------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------

    @property
    def defense(self):
        """The `keras_adv.defenses.Defense` used by `train_step`."""
        return self._defense

    @defense.setter
    def defense(self, defense):
        if isinstance(defense, (list, tuple)):
            from keras_adv.defenses.combined import Combined

            defense = Combined(list(defense))
        if not isinstance(defense, defense_base.Defense):
            raise ValueError(
                "defense must be a keras_adv.defenses.Defense (FGSMTraining, "
                "PGDTraining, FastTraining, FreeTraining, TRADES, MART, VAT, "
                "DataSparsity, ...) or a list of them. "
                f"Received: defense={defense!r}"
            )
        object.__setattr__(self, "_defense", defense)
        names = list(dict.fromkeys(tuple(defense.loss_terms) + ("adv_loss",)))
        trackers = {n: keras.metrics.Mean(name=n) for n in names}
        object.__setattr__(self, "_term_trackers", trackers)
        self.train_function = None
        self.test_function = None
        object.__setattr__(self, "_robust_test", (None, None))

    @property
    def current_eps(self):
        """The budget `train_step` uses now (below `defense.eps` during a
        warm-up).

        Example: `model.current_eps` is 0.15 halfway through a warm-up to 0.3.
        """
        return float(self.defense.eps) * float(self._adv_state.eps_scale.numpy())

    def set_eps_scale(self, scale):
        """Sets the warm-up factor in [0, 1] applied to `defense.eps` by
        `train_step` (`fit` does this itself when `warmup_epochs > 0`).

        Example: `model.set_eps_scale(0.5)`.
        """
        scale = validation.check_number("scale", scale, upper=1.0)
        self._adv_state.eps_scale.assign(scale)

    def call(self, inputs, training=None):
        """Runs the wrapped model (wrapper form); subclasses override it.

        Example: `logits = model(x)`.
        """
        return self.base(inputs, training=training)

    # ------------------------------------------------------------------
    # compile / metrics
    # ------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None,
                metrics=None, weighted_metrics=None, **kwargs):
        """Same arguments as `keras.Model.compile`; a loss is required. The
        metrics are also computed on the adversarial batch, under names
        prefixed with `adv_`.

        Example: `model.compile("adam", keras.losses.
        SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])`.
        """
        if loss is None:
            raise ValueError(
                "AdversarialModel needs a loss in compile(): every defense "
                "minimises it on clean and/or adversarial inputs. Received: "
                "loss=None"
            )
        super().compile(optimizer=optimizer, loss=loss,
                        loss_weights=loss_weights, metrics=metrics,
                        weighted_metrics=weighted_metrics, **kwargs)
        adv = None
        if metrics is not None or weighted_metrics is not None:
            adv = _AdvCompileMetrics(
                _fresh_metrics(metrics), _fresh_metrics(weighted_metrics),
                output_names=getattr(self, "output_names", None),
            )
        object.__setattr__(self, "_adv_metrics", adv)
        object.__setattr__(self, "_robust_test", (None, None))

    def compile_from_config(self, config):
        """Compiles from `get_compile_config()` (used by `load_model`).

        Example: `model.compile_from_config(other.get_compile_config())`.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds the compiled metrics from symbolic tensors before the
        # (possibly distributed) train function is traced; the adversarial
        # metrics must be built there too: creating their variables inside a
        # replica context fails under a distribution strategy.
        adv = self._adv_metrics
        if adv is None or adv.built:
            return super()._symbolic_build(iterator=iterator,
                                           data_batch=data_batch)
        if data_batch is None:
            for _, _, data in iterator:  # the first batch, as Keras takes it
                data_batch = data[0] if isinstance(data, (list, tuple)) \
                    else next(data)
                break
        super()._symbolic_build(data_batch=data_batch)
        spec = keras.tree.map_structure(
            lambda v: None if v is None else keras.KerasTensor(
                v.shape, keras_backend.standardize_dtype(v.dtype)),
            data_batch)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(spec)
        if y is None:
            return None
        y_pred = keras_backend.compute_output_spec(self, x, training=False)
        keras_backend.compute_output_spec(adv.update_state, y, y_pred,
                                          sample_weight)
        return None

    @property
    def metrics(self):
        """Loss, loss terms, clean metrics, then adversarial metrics."""
        metrics = list(super().metrics)
        terms = list(self._term_trackers.values())
        loss = [m for m in metrics[:1] if m is self._loss_tracker]
        rest = metrics[len(loss):]
        # Built at the first adversarial update (not by evaluate's clean
        # pass, which would otherwise ask an unbuilt metric for its result).
        adv = self._adv_metrics
        adv = [adv] if adv is not None and adv.built else []
        return loss + terms + rest + adv

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def _task_loss(self, y, y_pred, sample_weight=None):
        # Under a distribution strategy Keras losses come divided by the
        # replica count; undo it so that every term (Keras loss, KL, margin)
        # is a per-replica mean and logs as such. `_apply` divides the total
        # once before the cross-replica gradient sum.
        return self._compile_loss(y, y_pred, sample_weight) * _replicas()

    def _num_classes(self):
        """The class count the model declares (None when unknown)."""
        model = self.base if self.base is not None else self
        return ops.declared_classes(model)

    def _regularization(self):
        extra = [tf.cast(tf.reduce_sum(v), tf.float32) for v in self.losses]
        return tf.add_n(extra) if extra else 0.0

    def _eps(self):
        return tf.cast(self.defense.eps, tf.float32) * self._adv_state.eps_scale

    def _apply(self, tape, loss, extra_sources=()):
        weights = self.trainable_weights
        with tape:  # both scalings must be on the tape
            loss = loss / _replicas()  # gradients are summed over replicas
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)  # mixed_float16
        grads = tape.gradient(loss, list(weights) + list(extra_sources))
        if weights:
            self.optimizer.apply(grads[: len(weights)], weights)
        return grads[len(weights):]

    def train_step(self, data):
        """One adversarial-training step (see the class docstring).

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
        if self.defense.replays is not None:
            return self._replay_step(x, y, sample_weight)
        x_adv = self.defense.perturb(self, x, y, eps=self._eps())
        with tf.GradientTape() as tape:
            result = self.defense.loss(
                self, x, y, x_adv, task_loss=self._task_loss,
                sample_weight=sample_weight, training=True)
            total = result.loss + self._regularization()
        self._apply(tape, total)
        return self._update_train_metrics(x, y, x_adv, sample_weight, result,
                                          total)

    def _replay_step(self, x, y, sample_weight):
        """Free-AT: `replays` optimizer steps per batch, each updating the
        carried perturbation with the same backward pass."""
        d = self.defense
        eps = self._eps()
        x0 = tf.cast(x, tf.float32)
        delta = self._read_delta(x0)
        delta = ops.clip_box(x0 + ops.project(delta, eps, d.norm), d.clip) - x0
        sums = {}
        total_sum = 0.0
        for _ in range(d.replays):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                x_adv = tf.cast(ops.clip_box(x0 + delta, d.clip), x.dtype)
                result = d.loss(self, x, y, x_adv, task_loss=self._task_loss,
                                sample_weight=sample_weight, training=True)
                total = result.loss + self._regularization()
            (g_delta,) = self._apply(tape, total, [delta])
            if self._adv_metrics is not None:
                self._adv_metrics.update_state(y, result.y_pred_adv,
                                               sample_weight)
            delta = delta + eps * ops.steepest_step(g_delta, d.norm)
            delta = ops.project(delta, eps, d.norm)
            delta = ops.clip_box(x0 + delta, d.clip) - x0
            total_sum += total
            for k, v in result.terms.items():
                sums[k] = sums.get(k, 0.0) + v
        self._write_delta(delta)
        m = float(d.replays)
        result = defense_base.LossResult(
            total_sum / m, {k: v / m for k, v in sums.items()}, None, None)
        return self._update_train_metrics(x, y, None, sample_weight, result,
                                          total_sum / m, adv_done=True)

    def _read_delta(self, x0):
        """The carried perturbation resized to this batch (zeros where the
        batch is larger than the stored one)."""
        flat = self._adv_state.free_delta.read_value()
        need = tf.size(x0)
        have = tf.size(flat)
        flat = tf.concat(
            [flat[: tf.minimum(need, have)],
             tf.zeros([tf.maximum(need - have, 0)], tf.float32)], 0)
        return tf.reshape(flat, tf.shape(x0))

    def _write_delta(self, delta):
        flat = tf.reshape(delta, [-1])
        old = self._adv_state.free_delta.read_value()
        self._adv_state.free_delta.assign(
            tf.concat([flat, old[tf.minimum(tf.size(flat), tf.size(old)):]], 0))

    def _batch_size(self, x):
        return tf.shape(keras.tree.flatten(x)[0])[0]

    def _update_train_metrics(self, x, y, x_adv, sample_weight, result, total,
                              adv_done=False):
        batch = self._batch_size(x)
        self._loss_tracker.update_state(total, sample_weight=batch)
        logs = {"loss": self._loss_tracker.result()}
        for name in self.defense.loss_terms:
            tracker = self._term_trackers[name]
            tracker.update_state(result.terms[name], sample_weight=batch)
            logs[name] = tracker.result()
        y_pred = result.y_pred
        if self._compile_metrics is not None and y_pred is None:
            y_pred = self(x, training=False)
        y_adv = None
        if self._adv_metrics is not None and not adv_done:
            y_adv = result.y_pred_adv
            if y_adv is None:
                y_adv = self(x_adv, training=False)
        y_m, w_m = y, sample_weight
        if self.defense.uses_unlabeled:
            # Metrics count the labeled examples only.
            y_m, y_pred, y_adv, w_m = defense_base.labeled_rows(
                defense_base.labeled_mask(y), y, y_pred, y_adv,
                sample_weight)
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y_m, y_pred, w_m)
            logs.update(self._compile_metrics.result())
        if self._adv_metrics is not None:
            if not adv_done:
                self._adv_metrics.update_state(y_m, y_adv, w_m)
            logs.update(self._adv_metrics.result())
        return logs

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
        # The robust test function is traced once per attack and kept, so
        # repeated robust evaluations do not retrace (nor do clean ones).
        clean_fn = self.test_function
        cached_attack, cached_fn = self._robust_test
        object.__setattr__(self, "_eval_attack", adversarial)
        self.test_function = cached_fn if cached_attack is adversarial else None
        try:
            return super().evaluate(x, y, *args, **kwargs)
        finally:
            object.__setattr__(self, "_robust_test",
                               (adversarial, self.test_function))
            object.__setattr__(self, "_eval_attack", None)
            self.test_function = clean_fn

    def test_step(self, data):
        """Clean loss and metrics; adversarial ones when requested by
        `evaluate(adversarial=...)`.

        Example: called by `evaluate`.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None and self.defense.uses_unlabeled:
            # Semi-supervised data: evaluate the labeled examples only.
            x, y, sample_weight = defense_base.labeled_rows(
                defense_base.labeled_mask(y), x, y, sample_weight)
        y_pred = self(x, training=False)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred,
                                  sample_weight=sample_weight, training=False)
        batch = self._batch_size(x)
        self._loss_tracker.update_state(loss, sample_weight=batch)
        logs = {"loss": self._loss_tracker.result()}
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
            logs.update(self._compile_metrics.result())
        attack = self._eval_attack
        if attack is None:
            return logs
        if y is None:
            raise ValueError(
                "evaluate(adversarial=...) needs labels. Received: data "
                "without y"
            )
        if attack is True:
            x_adv = self.defense.attack(self, x, y)
        else:
            x_adv = attack(self, x, y)
        y_adv = self(x_adv, training=False)
        tracker = self._term_trackers["adv_loss"]
        tracker.update_state(self._task_loss(y, y_adv, sample_weight),
                             sample_weight=batch)
        logs["adv_loss"] = tracker.result()
        if self._adv_metrics is not None:
            self._adv_metrics.update_state(y, y_adv, sample_weight)
            logs.update(self._adv_metrics.result())
        return logs

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
        model = cls(**config)
        model.defense = defense
        return model

    def export(self, filepath, format="tf_saved_model", verbose=None,
               input_signature=None, **kwargs):
        """`keras.Model.export` of the inference model: the wrapped model in
        the wrapper form (the same function, without the defense), the model
        itself for subclasses.

        Example: `model.export("serving/")`.
        """
        target = self.base if self.base is not None else super()
        return target.export(filepath, format=format, verbose=verbose,
                             input_signature=input_signature, **kwargs)


def _is_array(value):
    """A NumPy array or an eager tensor (not a dataset or generator)."""
    return isinstance(value, np.ndarray) or (
        tf.is_tensor(value) and hasattr(value, "numpy"))


def _replicas():
    """Replicas in sync of the current distribution strategy (1 without)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


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
        self.model._adv_state.eps_scale.assign(scale)
