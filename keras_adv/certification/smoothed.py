"""`SmoothedClassifier`: the randomized-smoothing classifier as a Keras model
that can be saved, exported and served (SavedModel, TFLite, ONNX)."""

import keras
import numpy as np
import tensorflow as tf
from scipy import stats

from keras_adv import ops, validation
from keras_adv.certification._certify import ABSTAIN, check_alpha


def decision_thresholds(n, alpha):
    """PREDICT's binomial test as a table: entry m (0 <= m <= n) is the
    smallest top count n_A >= m / 2 whose two-sided test of n_A successes
    in m trials at p = 1/2 has p-value <= alpha (n + 1 when none has).

    The test's p-value falls as n_A grows past m / 2, so "n_A >= table[n_A
    + n_B]" is the same decision as `certification.predict`'s
    `scipy.stats.binomtest(n_A, n_A + n_B, 0.5).pvalue <= alpha`.

    Example: `decision_thresholds(10, 0.05).tolist()[10]` is 9.
    """
    table = np.full(n + 1, n + 1, np.int32)
    for m in range(1, n + 1):
        for a in range((m + 1) // 2, m + 1):
            if stats.binomtest(a, m, 0.5).pvalue <= alpha:
                table[m] = a
                break
    return table


@keras.saving.register_keras_serializable(package="keras_adv")
class SmoothedClassifier(keras.Model):
    """The smoothed classifier g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)
    of Cohen, Rosenfeld and Kolter (2019), with PREDICT's abstention, as a
    Keras model.

    Calling it draws `n` noisy copies of each example, counts the base
    model's classes and applies PREDICT's two-sided binomial test at level
    `alpha`: the same law as `keras_adv.certification.predict` (the test is
    precomputed as a table of thresholds, `decision_thresholds`, so the
    graph needs no statistics op). It returns a dict:
    `{"prediction": int32 (batch,), -1 where it abstains, "counts": int32
    (batch, classes)}`. The noise is drawn in the graph, so the `.keras`
    file, a SavedModel from `export` and the TFLite and ONNX files of
    `keras_adv.models.export_model` all serve the smoothed classifier, not
    the base model. It is for serving; train the base model with
    `keras_adv.defenses.GaussianAugmentation` or `SmoothAdv`, certify it
    with `keras_adv.certification.certify`.

    Args:
        base: the base classifier, a Keras model returning class scores
            (logits, probabilities, or one unit for a binary head).
        sigma: noise standard deviation (> 0), as in training.
        n: noisy copies per example (>= 1).
        alpha: the test's error probability, in (0, 1).
        batch_size: noisy copies of each example per base-model pass
            (`None`: all `n` in one pass); a call on b examples runs
            ceil(n / batch_size) passes of b * batch_size inputs.
        seed: integer seed of the noise (Keras' stateless generator,
            reproducible), or `None`: TensorFlow's global generator, with the
            `RandomStandardNormal` op every runtime has.
        **kwargs: base `keras.Model` arguments.

    Example:

    >>> base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> smoothed = SmoothedClassifier(base, sigma=0.25, n=100, seed=0)
    >>> out = smoothed(np.zeros((4, 2), "float32"))
    >>> out["prediction"].shape, out["counts"].numpy().sum(axis=1).tolist()
    (TensorShape([4]), [100, 100, 100, 100])
    """

    def __init__(self, base, *, sigma, n=100, alpha=0.001, batch_size=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(base, keras.Model):
            raise ValueError(
                f"base must be a Keras model. Received: base={base!r}")
        self.base = base
        self.sigma = float(validation.check_number("sigma", sigma,
                                                   positive=True))
        self.n = validation.check_int("n", n)
        self.alpha = check_alpha(alpha)
        self.batch_size = (self.n if batch_size is None
                           else validation.check_int("batch_size", batch_size))
        self.seed = validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.thresholds = decision_thresholds(self.n, self.alpha)
        self.num_classes = ops.declared_classes(base)
        if self.num_classes is None:
            raise ValueError(
                "base must declare its classes (a static last output "
                f"dimension). Received: base output shape "
                f"{base.output_shape if hasattr(base, 'output_shape') else None}")

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        generator = None if self.seed is None else self.seed_generator
        counts = 0
        for start in range(0, self.n, self.batch_size):
            copies = min(self.batch_size, self.n - start)
            counts += self._pass(x, copies, generator)
        top = tf.math.top_k(counts, k=min(2, self.num_classes))
        first = top.values[:, 0]
        second = top.values[:, 1] if self.num_classes > 1 else 0 * first
        needed = tf.gather(tf.constant(self.thresholds), first + second)
        prediction = tf.where(first >= needed, top.indices[:, 0], ABSTAIN)
        return {"prediction": prediction, "counts": counts}

    def _pass(self, x, copies, generator):
        """Class counts `(batch, classes)` of `copies` noisy copies of each
        example."""
        shape = tf.shape(x)
        tiled = tf.repeat(x[:, None], copies, axis=1)
        flat = tf.reshape(tiled, tf.concat([[-1], shape[1:]], 0))
        noisy = flat + self.sigma * ops.normal(tf.shape(flat), generator)
        inputs = getattr(self.base, "inputs", None)
        dtype = inputs[0].dtype if inputs else tf.float32
        logits = ops.model_logits(self.base, tf.cast(noisy, dtype))
        votes = tf.one_hot(tf.argmax(logits, axis=-1, output_type=tf.int32),
                           self.num_classes, dtype=tf.int32)
        return tf.reduce_sum(
            tf.reshape(votes, [-1, copies, self.num_classes]), axis=1)

    def compute_output_shape(self, input_shape):
        return {"prediction": (input_shape[0],),
                "counts": (input_shape[0], self.num_classes)}

    def get_config(self):
        return {
            **super().get_config(),
            "base": keras.saving.serialize_keras_object(self.base),
            "sigma": self.sigma, "n": self.n, "alpha": self.alpha,
            "batch_size": self.batch_size, "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)
