"""`RandomizedMixture`: a model answering each example with one member drawn
from a mixed strategy (multi-SAP). The game that chooses the strategy,
`payoff_matrix` and `solve_zero_sum`, lives in `keras_adv.defenses.mixture`.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import ops


@keras.saving.register_keras_serializable(package="keras_adv")
class RandomizedMixture(keras.Model):
    """Answers each example with one member drawn from a mixed strategy.

    For every example in a batch, member i is drawn with probability
    `probabilities[i]` and its output is returned; the draw lives in the
    graph, so a saved `.keras` model, a SavedModel and the TFLite and ONNX
    files of `keras_adv.models.export_model` stay randomised when served.
    A seeded mixture draws from its own `keras.random.SeedGenerator`
    (reproducible); `seed=None` draws from TensorFlow's global generator
    with the `RandomUniform` op every runtime has (`docs/serving.md`).
    The gradient flows through the drawn member; attack the mixture with
    EOT.

    Args:
        members: list of Keras models with equal input and output shapes.
        probabilities: mixed strategy, non-negative, summing to 1 (`None`:
            uniform). `solve_zero_sum` computes the game-optimal one.
        seed: seed of the draw (`None`: TensorFlow's global generator).
        **kwargs: base `keras.Model` arguments.

    Example:

    >>> a = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> b = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> mix = RandomizedMixture([a, b], probabilities=[0.25, 0.75], seed=0)
    >>> mix(np.zeros((5, 2), "float32")).shape
    TensorShape([5, 3])
    """

    def __init__(self, members, *, probabilities=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        members = list(members)
        if not members or not all(isinstance(m, keras.Model) for m in members):
            raise ValueError(
                "members must be a non-empty list of Keras models. Received: "
                f"members={members!r}"
            )
        if probabilities is None:
            probabilities = [1.0 / len(members)] * len(members)
        probs = np.asarray(probabilities, dtype=np.float64)
        if (probs.shape != (len(members),) or not np.isfinite(probs).all()
                or (probs < 0).any() or abs(probs.sum() - 1.0) > 1e-6):
            raise ValueError(
                f"probabilities must be {len(members)} non-negative numbers "
                f"summing to 1. Received: probabilities={probabilities!r}"
            )
        self.members = members
        self.probabilities = [float(p) for p in probs]
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        outputs = tf.stack([m(inputs, training=training) for m in self.members], 1)
        batch = tf.shape(outputs)[0]
        generator = None if self.seed is None else self.seed_generator
        u = ops.uniform(tf.stack([batch, 1]), generator)
        # member i is drawn when cum[i-1] <= u < cum[i] (inverse CDF)
        edges = np.cumsum(self.probabilities)[:-1].astype("float32")
        choice = tf.reduce_sum(tf.cast(u >= edges[None, :], tf.int32), axis=1)
        chosen = tf.equal(choice[:, None], tf.range(len(self.members))[None])
        chosen = tf.reshape(chosen, tf.concat(
            [tf.shape(chosen), tf.ones([outputs.shape.rank - 2], tf.int32)], 0))
        return tf.reduce_sum(
            tf.where(chosen, outputs, tf.zeros_like(outputs)), axis=1)

    def compute_output_shape(self, input_shape):
        return self.members[0].compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(m)
                        for m in self.members],
            "probabilities": self.probabilities,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m)
                             for m in config["members"]]
        return cls(**config)
