"""Spectral signatures (`poisoning/spectral.py`) on planted
representations."""

import numpy as np
import pytest

from keras_adv.poisoning import spectral_scores, spectral_signature
from tests.poisoning.planted import flat_model, planted


def test_spectral_scores_hand_computed():
    f = np.zeros((4, 2))
    f[0] = [3.0, 0.0]
    np.testing.assert_allclose(spectral_scores(f),
                               [2.25**2, 0.75**2, 0.75**2, 0.75**2])
    np.testing.assert_array_equal(spectral_scores(np.ones((3, 2))), 0.0)


def test_spectral_scores_rank_planted_rows_first():
    x, y, poison = planted()
    rows = np.flatnonzero(y == 0)
    scores = spectral_scores(x[rows].reshape(len(rows), -1))
    top = rows[np.argsort(-scores)[:len(poison)]]
    assert set(top) == set(poison)


def test_spectral_signature_flags_per_class_budget():
    x, y, poison = planted()
    x0 = x.copy()
    flagged = spectral_signature(flat_model(), x, y, expected_fraction=0.1,
                                 remove_factor=1.5)
    np.testing.assert_array_equal(x, x0)
    assert flagged.dtype == np.int64 and np.all(np.diff(flagged) > 0)
    # floor(1.5 * 0.1 * n_class) per class: 115 -> 17, 100 -> 15, 100 -> 15
    counts = np.bincount(y[flagged], minlength=3)
    np.testing.assert_array_equal(counts, [17, 15, 15])
    assert np.all(np.isin(poison, flagged))


@pytest.mark.parametrize("kwargs, match", [
    (dict(expected_fraction=1.2), "Received: expected_fraction=1.2"),
    (dict(expected_fraction=0.1, remove_factor=0), "Received: remove_factor=0"),
])
def test_spectral_bad_numbers(kwargs, match):
    x, y, _ = planted()
    with pytest.raises(ValueError, match=match):
        spectral_signature(flat_model(), x, y, **kwargs)


def test_spectral_progress_names_each_stage_on_stderr(capsys):
    x, y, _ = planted(n_clean=20, n_poison=5)
    kwargs = dict(expected_fraction=0.2)
    quiet = spectral_signature(flat_model(), x, y, progress=False, **kwargs)
    assert capsys.readouterr().err == ""
    shown = spectral_signature(flat_model(), x, y, progress=True, **kwargs)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "spectral_signature: representations of 65 rows",
        "spectral_signature: spectral scores of 3 classes"]
    np.testing.assert_array_equal(quiet, shown)
