"""`SmoothedClassifier`: the randomized-smoothing classifier as a Keras model
that can be saved, exported and served (SavedModel, TFLite, ONNX)."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.certification._certify import ABSTAIN
from keras_adv.certification.thresholds import (
    decision_thresholds,
    decode_thresholds,
    encode_thresholds,
)

_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    (batch, classes), "nonfinite": int32 (batch,)}`. A draw whose base
    scores hold a NaN or an infinity votes for no class and is counted in
    "nonfinite"; an example with any such draw gets -1 (a served model
    answers, where `predict` raises). The noise is drawn in the graph, so
    the `.keras` file, a SavedModel from `export` and the TFLite and ONNX
    files of `keras_adv.models.export_model` all serve the smoothed
    classifier, not the base model. It is for serving; train the base
    model with `keras_adv.defenses.GaussianAugmentation` or `SmoothAdv`,
    certify it with `keras_adv.certification.certify`.

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
        thresholds: the table `decision_thresholds(n, alpha=alpha)` as `get_config`
            writes it (a short string), so that loading does not rebuild
            it; `None` builds it. Like the base model's weights, it is
            trusted as the saved file is; only its shape is checked.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: a batch of the base model's input shape (checked at once
            where the shape is known; floating inputs are cast to float32).

    Raises:
        ValueError: a bad argument, or inputs of another shape than the
            base model's.

    Example:

    >>> base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> smoothed = SmoothedClassifier(base, sigma=0.25, n=100, seed=0)
    >>> out = smoothed(np.zeros((4, 2), "float32"))
    >>> out["prediction"].shape, out["counts"].numpy().sum(axis=1).tolist()
    (TensorShape([4]), [100, 100, 100, 100])
    >>> out["nonfinite"].numpy().tolist()
    [0, 0, 0, 0]
    """

    def __init__(self, base, *, sigma, n=100, alpha=0.001, batch_size=None,
                 seed=None, thresholds=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(base, keras.Model):
            raise ValueError(
                f"base must be a Keras model. Received: base={base!r}")
        self.base = base
        self.sigma = float(validation.check_number("sigma", sigma,
                                                   positive=True))
        self.n = validation.check_int("n", n)
        self.alpha = validation.check_probability("alpha", alpha)
        self.batch_size = (self.n if batch_size is None
                           else validation.check_int("batch_size", batch_size))
        self.seed = validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.num_classes = ops.num_classes(base)
        if self.num_classes is None:
            raise ValueError(
                "base must declare its classes (a static last output "
                f"dimension). Received: base output shape "
                f"{base.output_shape if hasattr(base, 'output_shape') else None}")
        self.thresholds = (decision_thresholds(self.n, alpha=self.alpha)
                           if thresholds is None
                           else decode_thresholds(thresholds, self.n))

    def __call__(self, inputs, *args, **kwargs):
        shape = tf.TensorShape(np.shape(inputs))  # a .shape where there is one
        if shape.rank is not None:
            validation.check_input_shape(self.base, shape, name="inputs")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        generator = None if self.seed is None else self.seed_generator
        counts, nonfinite = 0, 0
        for start in range(0, self.n, self.batch_size):
            copies = min(self.batch_size, self.n - start)
            votes, bad = self._pass(x, copies, generator)
            counts, nonfinite = counts + votes, nonfinite + bad
        top = tf.math.top_k(counts, k=min(2, self.num_classes))
        first = top.values[:, 0]
        second = top.values[:, 1] if self.num_classes > 1 else 0 * first
        needed = tf.gather(tf.constant(self.thresholds), first + second)
        decided = tf.logical_and(first >= needed, tf.equal(nonfinite, 0))
        prediction = tf.where(decided, top.indices[:, 0], ABSTAIN)
        return {"prediction": prediction, "counts": counts,
                "nonfinite": nonfinite}

    def _pass(self, x, copies, generator):
        """Class counts `(batch, classes)` of `copies` noisy copies of each
        example, and the count `(batch,)` of copies with non-finite scores
        (which vote for no class)."""
        shape = tf.shape(x)
        tiled = tf.repeat(x[:, None], copies, axis=1)
        flat = tf.reshape(tiled, tf.concat([[-1], shape[1:]], 0))
        noisy = flat + self.sigma * ops.normal(tf.shape(flat), generator)
        inputs = getattr(self.base, "inputs", None)
        dtype = inputs[0].dtype if inputs else tf.float32
        logits = ops.model_logits(self.base, tf.cast(noisy, dtype))
        # |s| <= max is False for NaN and +-inf; IsFinite is no TFLite builtin.
        finite = tf.cast(tf.abs(logits) <= _FLOAT32_MAX, tf.int32)
        bad = tf.minimum(tf.reduce_sum(1 - finite, axis=-1), 1)
        votes = tf.one_hot(tf.argmax(logits, axis=-1, output_type=tf.int32),
                           self.num_classes, dtype=tf.int32)
        votes = votes * (1 - bad)[:, None]
        return (tf.reduce_sum(
            tf.reshape(votes, [-1, copies, self.num_classes]), axis=1),
            tf.reduce_sum(tf.reshape(bad, [-1, copies]), axis=1))

    def compute_output_shape(self, input_shape):
        return {"prediction": (input_shape[0],),
                "counts": (input_shape[0], self.num_classes),
                "nonfinite": (input_shape[0],)}

    def save_own_variables(self, store):
        # Keras saves no SeedGenerator state: save it, so that a loaded
        # seeded classifier continues the original's sequence of draws.
        super().save_own_variables(store)
        store["seed_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        if "seed_state" in store:  # files saved before it was kept
            self.seed_generator.state.assign(store["seed_state"])

    def get_config(self):
        return {
            **super().get_config(),
            "base": keras.saving.serialize_keras_object(self.base),
            "sigma": self.sigma, "n": self.n, "alpha": self.alpha,
            "batch_size": self.batch_size, "seed": self.seed,
            "thresholds": encode_thresholds(self.thresholds),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)
