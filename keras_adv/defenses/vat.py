"""Virtual adversarial training (Miyato et al. 2018)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors
from keras_adv.defenses.protocol import config_number, set_field

_map = tf.nest.map_structure


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class VAT(protocol.Regularizer):
    """Virtual adversarial training: a label-free smoothness penalty.

    Miyato, Maeda, Koyama and Ishii, "Virtual Adversarial Training: a
    Regularization Method for Supervised and Semi-Supervised Learning",
    TPAMI 2018. The virtual adversarial direction is found by power
    iteration on the Hessian of `KL(p(x) || p(x + r))` at r = 0: draw
    d ~ N(0, I), then `power_iterations` times set d to `xi * d / |d|` and
    d to the gradient of `KL(p(x) || p(x + d))` with respect to d. The
    perturbation is `r_adv = eps * d / |d|` (L2). The loss is

        L(x_labeled, y) + weight * KL(p(x) || p(x + r_adv))
                        + entropy_weight * H(p(x))

    where L is the compiled loss over the labeled examples of the batch
    (sparse label -1 marks an unlabeled example; see below), p(x) is held
    fixed in the KL (stop-gradient, as in the authors' code), and both
    penalties average over every example, labeled or not. `entropy_weight
    > 0` adds entropy minimisation (the "VAT + EntMin" variant).

    Choices, as in the authors' TensorFlow code (takerum/vat_tf): the power
    iteration and the perturbed forward pass in the loss call the model in
    training mode (BatchNormalization normalises with batch statistics) but
    do not update BatchNormalization moving statistics (they are saved and
    restored). Dropout is then active in the power iteration too, which adds
    noise to the direction; `batch_statistics=False` runs the power
    iteration in inference mode instead (the `Defense.perturb` protocol of
    the other defenses).
    The finite difference uses `xi = 1e-3`, not the paper's 1e-6: in
    float32, inputs near 1 are spaced 6e-8 apart, so `x + 1e-6 * d` (d of
    unit L2 norm, entries about 1e-6 / sqrt(dim)) loses most of d, and the
    direction then depends on the CPU's kernels (cosine 0.79 to the exact
    dominant eigenvector on one x86-64 CPU, 0.995 on another). With 1e-3
    the direction agrees with it to cosine > 0.9999 on every input of the
    test. Vectors are normalised per example after scaling by their largest
    entry, so that small gradients stay representable in float32.
    `x + r_adv` is not clipped to the input box unless `clip` is given.
    With several perturbed inputs (`AdversarialModel(perturb=...)`) each
    input gets its own unit
    direction and its own L2 budget eps; with `perturb_layer` the direction
    lives in the layer's output (word embeddings, as in Miyato et al. 2017,
    "Adversarial Training Methods for Semi-Supervised Text
    Classification"; the embeddings are not normalised here).

    Semi-supervised training: give `AdversarialModel.fit` labels with -1 for
    the unlabeled examples (`keras_adv.datasets.semi_supervised_dataset`
    mixes a labeled and an unlabeled set in each batch). Metrics (accuracy)
    count the labeled examples only.

    eps is an L2 budget and depends on the input scale and the network:
    for MNIST in [0, 1], 5.0 suited `small_cnn`, while an MLP collapsed with
    VAT alone at 2.0 and needed 0.5, or entropy minimisation
    (`docs/benchmarks.md`).

    Args:
        eps: L2 norm of the virtual adversarial perturbation (>= 0).
        xi: finite-difference scale of the power iteration (> 0).
        power_iterations: power-iteration steps (>= 1; the paper uses 1).
        weight: weight of the KL term (alpha in the paper, >= 0).
        entropy_weight: weight of the entropy term (>= 0; 0 disables it).
        clip: `(min, max)` box for `x + r_adv`, or `None` (default: no
            clipping, as in the paper).
        warmup_epochs: linear eps warm-up over this many epochs (0: none).
        batch_statistics: run the power iteration in training mode (True,
            as the authors) or in inference mode (False).

    Loss terms logged by `fit`: `clean_loss` (labeled examples), `vat_loss`
    (the KL) and `entropy_loss`.

    Raises:
        ValueError: eps negative or NaN, xi <= 0, power_iterations < 1,
            a negative weight, a bad clip box, or a batch_statistics that
            is not a bool.

    Example:

    >>> defense = keras_adv.defenses.VAT(eps=2.0)
    >>> base_model = keras.Sequential([keras.Input((4,)),
    ...                                keras.layers.Dense(3)])
    >>> model = keras_adv.models.AdversarialModel(base_model, defense=defense)
    >>> model.compile("adam", metrics=["accuracy"],
    ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x = np.random.rand(32, 4).astype("float32")
    >>> y = np.where(np.arange(32) < 8, np.arange(32) % 3, -1)  # 8 labels
    >>> logs = model.fit(x, y, epochs=1, verbose=0).history
    >>> sorted(logs)
    ['accuracy', 'adv_accuracy', 'clean_loss', 'entropy_loss', 'loss', 'vat_loss']
    """

    eps: float
    xi: float = 1e-3
    power_iterations: int = 1
    weight: float = 1.0
    entropy_weight: float = 0.0
    clip: tuple = None
    warmup_epochs: float = 0.0
    batch_statistics: bool = True

    norm = "l2"
    loss_terms = ("clean_loss", "vat_loss", "entropy_loss")
    several_inputs = True
    penalty_terms = ("vat_loss", "entropy_loss")

    def __post_init__(self):
        set_field(self, "eps", config_number("eps", self.eps))
        set_field(self, "xi", config_number("xi", self.xi, positive=True))
        set_field(self, "power_iterations", validation.check_int(
            "power_iterations", self.power_iterations))
        set_field(self, "weight", config_number("weight", self.weight))
        set_field(self, "entropy_weight", config_number(
            "entropy_weight", self.entropy_weight))
        set_field(self, "clip", validation.check_clip(self.clip))
        set_field(self, "warmup_epochs", config_number(
            "warmup_epochs", self.warmup_epochs))
        if not isinstance(self.batch_statistics, bool):
            raise ValueError(
                "batch_statistics must be True or False. Received: "
                f"batch_statistics={self.batch_statistics!r}")

    def direction(self, model, x, *, clean_logits=None):
        """The unit virtual adversarial direction at `x` (per example, L2),
        by `power_iterations` steps of power iteration (in training mode
        without updating batch statistics, or in inference mode; see
        `batch_statistics`).

        Args:
            model: the Keras model (logits or softmax outputs).
            x: the input batch.
            clean_logits: the logits of p(x) to hold fixed; `None` computes
                them in inference mode.

        Returns:
            A float32 tensor shaped like `x` with unit L2 norm per example.

        Example: `d = keras_adv.defenses.VAT(eps=2.0).direction(model, x)`.
        """
        x0, in_dtype = ascent.as_float(x)

        def logits(inputs):
            inputs = ascent.cast_to(inputs, in_dtype)
            if not self.batch_statistics:
                return ops.model_logits(model, inputs)
            with tensors.frozen_batch_statistics(model):
                return ops.to_logits(
                    ops.call_model(model, inputs, training=True))

        if clean_logits is None:
            clean_logits = logits(x0)
        clean_logits = tf.stop_gradient(tf.cast(clean_logits, tf.float32))
        d = _map(lambda t: tf.random.normal(tf.shape(t)), x0)
        for _ in range(self.power_iterations):
            d = _map(lambda t: self.xi * ops.l2_normalize(t), d)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(d)
                kl = tf.reduce_sum(ops.kl_divergence(
                    clean_logits, logits(_map(tf.add, x0, d))))
            d = _map(tf.stop_gradient, tape.gradient(kl, d))
        return _map(ops.l2_normalize, d)

    def perturb(self, model, x, y, *, eps=None):
        """`x + eps * direction` (see `Defense.perturb`; `y` is not used, so
        unlabeled examples are perturbed too).

        Example: `x_adv = keras_adv.defenses.VAT(eps=2.0).perturb(model, x,
        None)`.
        """
        del y
        eps = tensors.resolve_eps(self, eps)
        x0, in_dtype = ascent.as_float(x)
        x_adv = _map(lambda a, d: ops.clip_box(a + eps * d, self.clip), x0,
                     self.direction(model, x))
        return _map(tf.stop_gradient, ascent.cast_to(x_adv, in_dtype))

    def penalty(self, model, x, y, x_adv, *, sample_weight=None,
                training=True, y_pred=None):
        """`weight * KL(p(x) || p(x_adv)) + entropy_weight * H(p(x))` over
        every example (see `Defense.penalty`). `y_pred` reuses a
        training-mode output on `x` when the caller has one.

        Example: `defense.penalty(model, x, y, x_adv).terms["vat_loss"]`.
        """
        del y
        if y_pred is None:
            y_pred = model(x, training=training)
        with tensors.frozen_batch_statistics(model):
            y_adv = model(x_adv, training=training)
        logits = ops.to_logits(y_pred)
        kl = tensors.weighted_mean(
            ops.kl_divergence(tf.stop_gradient(logits),
                               ops.to_logits(y_adv)), sample_weight)
        log_p = tf.nn.log_softmax(logits)
        entropy = tensors.weighted_mean(
            -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1), sample_weight)
        total = self.weight * kl
        if self.entropy_weight:
            total = total + self.entropy_weight * entropy
        return protocol.LossResult(
            total, {"vat_loss": kl, "entropy_loss": entropy}, y_pred, y_adv)
