"""`RandomizedMixture`: a model answering each example with one member drawn
from a mixed strategy (multi-SAP). The game that chooses the strategy,
`payoff_matrix` and `solve_zero_sum`, lives in `keras_adv.defenses.mixture`.
"""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_adv")
class RandomizedMixture(keras.Model):
    """Answers each example with one member drawn from a mixed strategy.

    For every example in a batch, member i is drawn with probability
    `probabilities[i]` and its output is returned; the draw lives in the
    graph (a `keras.random.SeedGenerator`), so a saved `.keras` model and a
    SavedModel from `export` stay randomised when served. The gradient flows
    through the drawn member; attack the mixture with EOT.

    Args:
        members: list of Keras models with equal input and output shapes.
        probabilities: mixed strategy, non-negative, summing to 1 (`None`:
            uniform). `solve_zero_sum` computes the game-optimal one.
        seed: seed of the draw (`None`: random).
        **kwargs: base `keras.Model` arguments.

    Example:

    >>> a = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> b = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> mix = RandomizedMixture([a, b], [0.25, 0.75], seed=0)
    >>> mix(np.zeros((5, 2), "float32")).shape
    TensorShape([5, 3])
    """

    def __init__(self, members, probabilities=None, seed=None, **kwargs):
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
        logp = tf.math.log(tf.constant(self.probabilities, tf.float32))
        logits = tf.tile(logp[None, :], [batch, 1])
        choice = keras.random.categorical(logits, 1, seed=self.seed_generator)
        return tf.gather(outputs, choice[:, 0], axis=1, batch_dims=1)

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
