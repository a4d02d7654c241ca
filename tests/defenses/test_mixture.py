"""The mixture's game: solve_zero_sum on known games, payoff_matrix."""

import numpy as np
import pytest

from keras_adv.defenses.mixture import payoff_matrix, solve_zero_sum
from tests.conftest import one_line_each_way
from tests.defenses.nets import X, mlp


def test_solve_zero_sum_known_games():
    q, v = solve_zero_sum([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(q, [0.5, 0.5], atol=1e-9)
    assert v == pytest.approx(0.5)
    q, v = solve_zero_sum([[0.9, 0.8], [0.2, 0.3]])  # row 0 dominates
    np.testing.assert_allclose(q, [1.0, 0.0], atol=1e-9)
    assert v == pytest.approx(0.8)
    a = np.array([[0.2, 0.6, 0.5], [0.7, 0.1, 0.4], [0.4, 0.5, 0.3]])
    q, v = solve_zero_sum(a)
    assert (q @ a).min() == pytest.approx(v, abs=1e-9)
    for row in np.eye(3):  # no pure strategy does better than the value
        assert (row @ a).min() <= v + 1e-9
    with pytest.raises(ValueError, match="payoff"):
        solve_zero_sum([1.0, 2.0])


def test_payoff_matrix_identity_attack():
    a, b = mlp(0), mlp(1)
    y = np.argmax(a(X).numpy(), axis=1)
    pay = payoff_matrix([a, b], X, y, attack=lambda m, x, t: x)
    assert pay[0, 0] == 1.0 and pay[0, 1] == 1.0
    assert pay[1, 0] == pay[1, 1] == np.mean(np.argmax(b(X), 1) == y)


def test_payoff_matrix_progress_counts_the_members_on_stderr(capsys):
    a, b = mlp(0), mlp(1)
    y = np.argmax(a(X).numpy(), axis=1)

    def attack(m, x, t):
        return x + 0.1

    quiet, shown = one_line_each_way(
        lambda progress: payoff_matrix([a, b], X, y, attack=attack,
                                       progress=progress),
        capsys, "payoff_matrix: attacked 2/2 members (")
    np.testing.assert_array_equal(quiet, shown)
