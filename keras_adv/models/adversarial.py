"""`AdversarialModel`: adversarial training inside `model.fit`.

Built on Keras' public override points only (`compile`, `train_step`,
`test_step`, `compute_loss`, `compute_metrics`, `metrics`, `get_config`),
as `keras.distillation.Distiller` and the Keras guide "Customizing what
happens in fit() with TensorFlow" do: the model owns its loss tracker, its
loss-term trackers and its clean and adversarial metrics, all created in
`__init__` or `compile` (outside any replica context), and computes the
compiled loss itself from the loss object given to `compile`. Its state is
held in two plain objects with public methods, handed to the helper modules
(which read no private attribute of the model): what compile resolves and
the state it fills (`compiled.State`), and the view of several inputs or a
layer (`views.View`). The training step's pieces are in `training.py`, the
clean and robust evaluation in `robust.py`, the config in `saving.py`.
"""


import keras

from keras_adv import _keras_compat, validation
from keras_adv.defenses import combined, protocol
from keras_adv.models import compiled, robust, saving, views
from keras_adv.models import training as training_lib


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
    `adv_accuracy`, and `robust_accuracy`: right both clean and attacked)
    with `evaluate(..., adversarial=True)`.

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

    Models with several inputs (`fit(x=[image, meta], y)` or a dict x)
    and token models (`perturb_layer="embedding"`, Miyato et al. 2017):
    see `perturb` and `perturb_layer` below and the README section "Models
    with several inputs and token models".

    Args:
        base: the `keras.Model` to train (wrapper form), or `None` in a
            subclass that defines `call`.
        defense: a `keras_adv.defenses.Defense` configuration, or a list of
            them (a `Combined` defense).
        perturb: the inputs the defense perturbs in a model with several
            inputs: Keras input names, dict keys or positions, one or a
            list; `None` for every floating-point input. Each has its own
            eps-ball and the `clip` box; the others pass through. Several
            need a defense with `several_inputs` (PGD, FGSM, Fast, TRADES,
            MART, VAT).
        perturb_layer: the name of a layer of a Functional or Sequential
            `base` whose output the defense perturbs (token models), or
            `None`. The perturbation is added to the layer output
            recomputed inside the training tape, so the embedding weights
            train on the adversarial loss too; `clip` is ignored. A view
            (`perturb` or `perturb_layer`) takes no combined defense, and
            `evaluate(adversarial=...)` calls `attack(model_of_parts,
            parts, y)`.
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
        instance._adv_init_config = saving.simple_arguments(cls, args, kwargs)
        return instance

    def __init__(self, base=None, *, defense, perturb=None,
                 perturb_layer=None, **kwargs):
        super().__init__(**kwargs)
        if base is not None and not isinstance(base, keras.Model):
            raise ValueError(
                "base must be a keras.Model (Sequential, functional or "
                f"subclassed). Received: base={base!r}"
            )
        wrapper = type(self).call is AdversarialModel.call
        if base is None and wrapper:
            raise ValueError(
                "AdversarialModel needs a base model to wrap, or a subclass "
                "that defines call(). Received: base=None"
            )
        self.base = base
        if base is not None and base.built:
            # Built at once (BackupAndRestore needs it), with base's input
            # shape as Keras' build config (one symbolic call of base), so
            # that a model loaded back, never called, has its input spec.
            shape = validation.declared_input_shape(base)
            if shape is not None and wrapper:
                self.build_from_config({"input_shape": shape})
            self.built = True
        self._state = compiled.State()
        self.defense = defense
        self._view = views.View(self, self.defense, perturb, perturb_layer)

    def build_from_config(self, config):
        """Keras' build from the saved input shape (`get_build_config`), the
        shape read back as a tuple: JSON gives a list, which TensorFlow's
        converters would take for a list of several inputs.

        Example: `model.build_from_config({"input_shape": (None, 784)})`.
        """
        super().build_from_config(saving.shape_config(config))

    @property
    def perturb(self):
        """The inputs the defense perturbs (`None`: the floating ones)."""
        return self._view.perturb

    @property
    def perturb_layer(self):
        """The name of the layer whose output is perturbed, or `None`."""
        return self._view.perturb_layer

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
            defense = combined.Combined(list(defense))
        protocol.check_defense(defense)
        with self.distribute_strategy.scope():
            self._state.set_defense(defense)
        self.train_function = None
        self.test_function = None

    @property
    def current_eps(self):
        """The budget `train_step` uses now (below `defense.eps` during a
        warm-up).

        Example: `model.current_eps` is 0.15 halfway through a warm-up to 0.3.
        """
        return float(self._state.eps())

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
        with self.distribute_strategy.scope():
            self._state.resolve(loss, loss_weights, metrics, weighted_metrics)
        super().compile(optimizer=optimizer, loss=loss,
                        loss_weights=loss_weights, metrics=metrics,
                        weighted_metrics=weighted_metrics, **kwargs)

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
        return self._state.metrics

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        """The compiled loss of `y_pred` plus the model's regularisation
        losses (the clean loss `evaluate` reports).

        Example: `model.compute_loss(y=y, y_pred=model(x))`.
        """
        del x, training
        return (self._state.task_loss(y, y_pred, sample_weight)
                + training_lib.regularization(self))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the clean metrics and returns every metric's result.

        Example: `logs = model.compute_metrics(x, y, model(x))`.
        """
        del x
        self._state.record_clean(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def train_step(self, data):
        """One adversarial-training step: unpack and check the batch, then
        `defense.train_step` (perturb-then-loss unless the defense owns its
        step) on the model, or, with several inputs or a layer output, on a
        model of the perturbed tensors (the other inputs fixed); then the
        metrics.

        Example: called by `fit`; `model.train_step((x, y))` also works.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = training_lib.check_batch(self, x, y)
        target, x_in, defense = self._view.target(self, x, self.defense)
        step = training_lib.training_step(self, self._state, target)
        result = defense.train_step(step, x_in, y, sample_weight)
        return training_lib.step_logs(self, self._state,
                                      (x, y, sample_weight), result, target)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, *args, **kwargs):
        """`keras.Model.fit`, plus the eps warm-up of the defense.

        Example: `model.fit(train_ds, validation_data=val_ds, epochs=10)`.
        """
        if training_lib.is_array(x) and training_lib.is_array(y):
            # Check in-memory data once, eagerly: a clear error before any
            # step (tf.data batches are checked in the graph by train_step).
            training_lib.check_batch(self, x, y)
        callbacks = list(callbacks or [])
        if self.defense.warmup_epochs > 0:
            callbacks.insert(0, training_lib.EpsWarmup(self._state))
        return super().fit(x, y, batch_size, epochs, verbose, callbacks, *args,
                           **kwargs)

    # ------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------

    def evaluate(self, x=None, y=None, *args, adversarial=False, **kwargs):
        """`keras.Model.evaluate`; with `adversarial` also the loss and
        metrics on attacked inputs (`adv_loss`, `adv_accuracy`, ...) and
        `robust_accuracy` (right both clean and attacked, `ops.robust_hits`).

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
        robust.check_attack(adversarial)
        if adversarial is False:
            return super().evaluate(x, y, *args, **kwargs)
        return robust.evaluator(self, self._state, self._view,
                                adversarial).evaluate(x, y, *args, **kwargs)

    def test_step(self, data):
        """Clean loss and metrics (adversarial ones come from
        `evaluate(adversarial=...)`).

        Example: called by `evaluate`.
        """
        data = keras.utils.unpack_x_y_sample_weight(data)
        return robust.clean_test(self, self._state, data)[1]

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
        return saving.config_of(self, AdversarialModel)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the model (wrapper or subclass) and its defense.

        Example: `AdversarialModel.from_config(model.get_config())`.
        """
        model, view = saving.rebuild(cls, config, custom_objects)
        if view is not None:  # a subclass that fixes its defense
            model._view = views.View(model, model.defense, *view)
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
