"""Stochastic Activation Pruning (Dhillon et al., ICLR 2018)."""

import math

import keras
import tensorflow as tf

from keras_adv import ops, validation


@keras.saving.register_keras_serializable(package="keras_adv")
class StochasticActivationPruning(keras.layers.Layer):
    """Stochastic Activation Pruning (SAP): prune activations at random,
    keeping large ones with high probability, and rescale the survivors.

    Dhillon et al., "Stochastic Activation Pruning for Robust Adversarial
    Defense", ICLR 2018. Per example, the activation map h is flattened and
    p_j = |h_j| / sum_k |h_k|. r = ceil(frac * n) indices are drawn *with
    replacement* from Categorical(p) (n = activations per example); activation
    j survives if drawn at least once, which happens with probability
    q_j = 1 - (1 - p_j)^r, and survivors are scaled by 1 / q_j, so the output
    is unbiased: E[output] = h. The mask is a constant in the backward pass:
    d output / d h = mask.

    SAP is a test-time defense: by default it is active at inference and the
    identity during training (`active_in_training=True` prunes in training
    too). It was broken by Athalye, Carlini & Wagner (ICML 2018) with EOT:
    evaluate it with `eot_samples` (see `keras_adv.attacks.pgd`).

    An example whose activations are all zero passes through as zeros (no
    NaN). q_j is computed as -expm1(r * log1p(-p_j)) (Kahan's accurate
    forms, `ops.expm1` and `ops.log1p`) for accuracy when p_j is tiny, in
    float32 whatever the layer's dtype policy.

    Every runtime can run it: the r draws are sorted uniforms merged with
    the CDF by `top_k` (`drawn_at_least_once`), with no `Multinomial`,
    `Bincount`, `Log1p` or `Expm1` op, so the layer converts to TFLite with
    builtin ops only and to ONNX (`keras_adv.models.export_model`,
    `docs/serving.md`).

    Args:
        frac: draws as a fraction of the activations per example (> 0);
            1.0 as in the paper.
        seed: integer seed of the layer's `keras.random.SeedGenerator`;
            seeded layers give reproducible sequences of masks (Keras'
            stateless generator). `None` (the default) draws from
            TensorFlow's global generator (`keras.utils.set_random_seed`
            governs it) with the `RandomUniform` op that TFLite and ONNX
            Runtime also have. On those runtimes every layer draws from the
            runtime's own generator, seeded or not.
        active_in_training: also prune when called with `training=True`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor of any rank >= 2 (batch first).
        training: Python bool; pruning happens when False/None, and when True
            only if `active_in_training`.

    Example:

    >>> sap = StochasticActivationPruning(frac=1.0, seed=0)
    >>> out = sap(np.array([[0.0, 1.0, 3.0]], "float32"))
    >>> out.shape
    TensorShape([1, 3])
    """

    def __init__(self, frac=1.0, *, seed=None, active_in_training=False,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (
            math.isfinite(frac) and frac > 0
        ):
            raise ValueError(
                f"frac must be a finite number > 0. Received: frac={frac!r}"
            )
        validation.check_seed(seed)
        self.frac = float(frac)
        self.seed = seed
        self.active_in_training = bool(active_in_training)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def draws(self, units):
        """Number of draws r for `units` activations per example:
        ceil(frac * units).

        Example: `StochasticActivationPruning(frac=0.5).draws(10) == 5`.
        """
        return max(1, math.ceil(self.frac * units))

    def call(self, inputs, training=None):
        if training and not self.active_in_training:
            return inputs
        shape = tf.shape(inputs)
        n = math.prod(inputs.shape[1:])
        if n is None or any(d is None for d in inputs.shape[1:]):
            raise ValueError(
                "StochasticActivationPruning needs static non-batch dimensions. "
                f"Received: inputs with shape {inputs.shape}"
            )
        h = tf.reshape(tf.cast(inputs, tf.float32), [-1, n])
        mask = tf.stop_gradient(self._mask(h, self.draws(n)))
        out = tf.reshape(h * mask, shape)
        return tf.cast(out, inputs.dtype)

    def _mask(self, h, r):
        """Per-example mask: 1/q_j for drawn activations, 0 otherwise."""
        mag = tf.abs(h)
        total = tf.reduce_sum(mag, axis=1, keepdims=True)
        p = mag / tf.where(total > 0, total, 1.0)
        generator = None if self.seed is None else self.seed_generator
        drawn = drawn_at_least_once(p, r, ops.uniform, generator)
        # q = 1 - (1 - p)^r; p <= 1 always, and p = 1 gives q = 1 exactly.
        keep_prob = -ops.expm1(r * ops.log1p(-p))
        kept = drawn & (keep_prob > 0)
        return tf.where(kept, 1.0 / tf.where(kept, keep_prob, 1.0), 0.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {
            "frac": self.frac,
            "seed": self.seed,
            "active_in_training": self.active_in_training,
        }
        return {**super().get_config(), **config}


def drawn_at_least_once(p, r, uniform, seed_generator=None):
    """Which categories `r` draws with replacement from Categorical(p) hit,
    per row of `p` `(batch, n)` (rows sum to 1, or are all zero: nothing
    is drawn). Exact law, with ops every serving runtime has.

    The r draws are inverse-CDF samples of r sorted uniforms, made from
    r + 1 exponential spacings (Renyi's representation of uniform order
    statistics: `cumsum(E)[:r] / sum(E)`), scaled to the CDF's last value.
    Category j is hit when some draw s has `C_(j-1) <= s < C_j` (C the
    CDF), that is when `N(C_j) > N(C_(j-1))` with N(c) the number of draws
    below c. N comes from merging the CDF and the draws with a sort
    (`top_k`, which puts the CDF first on ties), and ranking them with a
    second sort. No `Multinomial`, `Bincount` or scatter op, so TFLite
    builtins and ONNX hold it.

    Example:

    >>> p = tf.constant([[0.0, 0.5, 0.5]])
    >>> drawn_at_least_once(p, 4, ops.uniform).numpy()[0, 0]
    False
    """
    n = p.shape[1]
    batch = tf.shape(p)[0]
    cdf = tf.math.cumsum(p, axis=1)
    spacings = -tf.math.log(1.0 - uniform(tf.stack([batch, r + 1]),
                                          seed_generator))
    run = tf.math.cumsum(spacings, axis=1)
    draws = run[:, :r] / tf.maximum(run[:, r:], 1e-30) * cdf[:, n - 1:]
    # The last category takes every draw up to the CDF's end (rounding).
    bounds = tf.concat([cdf[:, :n - 1], tf.ones_like(cdf[:, :1]) * 2.0], 1)
    merged = tf.concat([bounds, draws], axis=1)
    order = tf.math.top_k(-merged, k=n + r).indices
    position = tf.math.top_k(-order, k=n + r).indices[:, :n]
    below = position - tf.range(n)[None, :]
    before = tf.concat([tf.zeros_like(below[:, :1]), below[:, :n - 1]], 1)
    return below > before
