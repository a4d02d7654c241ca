"""A randomised mixture of models played as a zero-sum game (multi-SAP).

The defender holds k networks (for instance SAP networks, each trained with
adversarial training) and answers every query with one of them, drawn from a
mixed strategy q. The strategy solves the zero-sum game whose payoff A[i, j]
is the accuracy of defender network i on adversarial examples crafted on
network j: q maximises min_j sum_i q_i A[i, j].

That game assumes an attacker who crafts on one member. An adaptive attacker
attacks the randomised mixture itself with EOT (`keras_adv.attacks.pgd(
mixture, ..., eot_samples=n)`); report that number as the mixture's
robustness.
"""

import keras
import numpy as np
import tensorflow as tf


def solve_zero_sum(payoff):
    """The defender's optimal mixed strategy for a zero-sum payoff matrix.

    Solves max_q min_j sum_i q_i A[i, j] subject to q >= 0, sum q = 1 with a
    linear program (scipy's HiGHS): variables (q, v), maximise v subject to
    A^T q >= v.

    Args:
        payoff: array `(k, m)`; A[i, j] is the defender's payoff (accuracy)
            when the defender plays row i and the attacker column j.

    Returns:
        `(q, value)`: the strategy, an array of shape `(k,)` summing to 1,
        and the game value, the guaranteed payoff.

    Raises:
        ValueError: payoff not a finite 2-D array.

    Example:

    >>> q, v = solve_zero_sum([[1.0, 0.0], [0.0, 1.0]])  # matching pennies
    >>> np.round(q, 3).tolist(), round(v, 3)
    ([0.5, 0.5], 0.5)
    """
    from scipy.optimize import linprog

    a = np.asarray(payoff, dtype=np.float64)
    if a.ndim != 2 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(
            "payoff must be a finite 2-D array (defender rows, attacker "
            f"columns). Received: payoff with shape {a.shape}"
        )
    k, m = a.shape
    cost = np.zeros(k + 1)
    cost[-1] = -1.0  # maximise v
    a_ub = np.hstack([-a.T, np.ones((m, 1))])  # v - sum_i q_i A[i, j] <= 0
    a_eq = np.hstack([np.ones((1, k)), np.zeros((1, 1))])
    bounds = [(0, None)] * k + [(None, None)]
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(m), A_eq=a_eq, b_eq=[1.0],
                  bounds=bounds, method="highs")
    if not res.success:  # pragma: no cover - a bounded feasible LP
        raise RuntimeError(f"The game's linear program failed: {res.message}")
    q = np.clip(res.x[:k], 0.0, None)
    return q / q.sum(), float(res.x[-1])


def payoff_matrix(members, x, y, attack):
    """Accuracy of each member on examples crafted against each member.

    Args:
        members: list of k models returning logits.
        x: inputs; y: integer labels.
        attack: callable `attack(model, x, y) -> x_adv` (use EOT for
            randomised members, e.g. `functools.partial(pgd, eps=0.3,
            eot_samples=10)`).

    Returns:
        Array `(k, k)`: A[i, j] = accuracy of member i on attack(member j).

    Example:

    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> x = np.random.rand(4, 2).astype("float32")
    >>> payoff_matrix([m], x, np.zeros(4, "int64"), lambda f, a, b: a).shape
    (1, 1)
    """
    y = np.asarray(y)
    out = np.zeros((len(members), len(members)))
    for j, source in enumerate(members):
        x_adv = attack(source, x, y)
        for i, target in enumerate(members):
            pred = np.argmax(target.predict(x_adv, verbose=0), axis=-1)
            out[i, j] = float(np.mean(pred == y))
    return out


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
