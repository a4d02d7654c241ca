"""Activation clustering (`poisoning/clustering.py`) on planted
representations."""

import numpy as np
import pytest

from keras_adv.poisoning import activation_clustering
from keras_adv.poisoning.clustering import cluster_class
from tests.poisoning.planted import flat_model, planted


def test_activation_clustering_flags_planted_cluster_only():
    x, y, poison = planted(shift=10.0)
    for reduce in ("ica", "pca"):
        flagged = activation_clustering(flat_model(), x, y, reduce=reduce,
                                        n_components=5, seed=0)
        assert flagged.dtype == np.int64
        np.testing.assert_array_equal(flagged, poison)


def test_activation_clustering_threshold_controls_flagging():
    x, y, _ = planted(shift=10.0)
    # 15 of 115 rows = 0.13: kept below a 0.1 threshold
    flagged = activation_clustering(flat_model(), x, y, size_threshold=0.1,
                                    n_components=5)
    assert len(flagged) == 0


def test_cluster_class_two_blobs():
    rng = np.random.RandomState(1)
    f = np.concatenate([rng.normal(size=(40, 6)), rng.normal(size=(10, 6)) + 8])
    ids = cluster_class(f, n_components=3, reduce="pca")
    assert len(set(ids[:40])) == 1 and len(set(ids[40:])) == 1
    assert ids[0] != ids[-1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(reduce="tsne"), "Received: reduce='tsne'"),
    (dict(size_threshold=0.6), "Received: size_threshold=0.6"),
    (dict(n_components=0), "Received: n_components=0"),
])
def test_clustering_bad_arguments(kwargs, match):
    x, y, _ = planted()
    with pytest.raises(ValueError, match=match):
        activation_clustering(flat_model(), x, y, **kwargs)


def test_clustering_progress_names_each_stage_on_stderr(capsys):
    x, y, _ = planted(n_clean=20, n_poison=5, shift=10.0)
    kwargs = dict(reduce="pca", n_components=3, seed=0)
    quiet = activation_clustering(flat_model(), x, y, progress=False,
                                  **kwargs)
    assert capsys.readouterr().err == ""
    shown = activation_clustering(flat_model(), x, y, progress=True,
                                  **kwargs)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "activation_clustering: representations of 65 rows",
        "activation_clustering: pca and 2-means of 3 classes"]
    np.testing.assert_array_equal(quiet, shown)
