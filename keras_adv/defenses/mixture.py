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

import numpy as np

from keras_adv import ops
from keras_adv.progress import Progress

LONG_CRAFTED = 2000  # members x examples attacked in a long run (progress=None)


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


def payoff_matrix(members, x, y, *, attack, progress=None):
    """Accuracy of each member on examples crafted against each member.

    Args:
        members: list of k models returning logits.
        x: inputs; y: integer labels.
        attack: callable `attack(model, x, y) -> x_adv` (use EOT for
            randomised members, e.g. `functools.partial(pgd, eps=0.3,
            eot_samples=10)`).
        progress: count the members attacked on stderr (`payoff_matrix:
            attacked 3/3 members`); `None`: on a terminal from
            `LONG_CRAFTED` members x examples.

    Returns:
        Array `(k, k)`: A[i, j] = accuracy of member i on attack(member j).

    Example:

    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> x = np.random.rand(4, 2).astype("float32")
    >>> payoff_matrix([m], x, np.zeros(4, "int64"), attack=lambda f, a, b: a).shape
    (1, 1)
    """
    y = np.asarray(y)
    k = len(members)
    out = np.zeros((k, k))
    with Progress.resolve(progress, k * len(y), long=LONG_CRAFTED, total=k,
                          counts=True, prefix="payoff_matrix",
                          label="attacked {} members") as counter:
        for j, source in enumerate(members):
            counter.doing(f"the attack on member {j + 1} of {k}")
            x_adv = attack(source, x, y)
            for i, target in enumerate(members):
                pred = ops.batched_logits(target,
                                          np.asarray(x_adv)).argmax(-1)
                out[i, j] = float(np.mean(pred == y))
            counter.step(1)
    return out
