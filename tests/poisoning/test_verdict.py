"""The poisoning verdict: the per-class test on planted representations
(exact numbers), and `scan_training_set`'s verdict on a clean and a
poisoned small CNN."""

import keras
import numpy as np
import pytest

from keras_adv import datasets, models, poisoning
from keras_adv.poisoning import verdict
from keras_adv.poisoning.scan import PoisonScanReport


def flat_model(features=20, classes=3):
    """Penultimate representation = the flattened input; the head has
    learned `planted`'s backdoor: class 0's logit is 40 * (x[3] - 0.85),
    the others 0. Blended with another row (a clipped sum), a poison row
    (x[3] about 0.76) passes 0.85 and keeps class 0 (entropy near 0), a
    clean row (about 0.33) does not (entropy about ln 2)."""
    model = keras.Sequential([keras.Input((features, 1, 1)),
                              keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(classes, name="head")])
    kernel = np.zeros((features, classes), "float32")
    kernel[3, 0] = 40.0
    bias = np.zeros(classes, "float32")
    bias[0] = -34.0
    model.get_layer("head").set_weights([kernel, bias])
    return model


def planted(n=300, n_poison=0, classes=3, seed=0, shift=8.0):
    """Gaussian classes of `n` rows in 20 dimensions; `n_poison` more rows
    labelled 0, moved by `shift` along one direction and spread 1.5 times
    wider (rows from several source classes). Returns x in [0, 1] of shape
    (rows, 20, 1, 1), labels, poison indices."""
    rng = np.random.RandomState(seed)
    feats = rng.normal(size=(classes * n + n_poison, 20))
    y = np.concatenate([np.repeat(np.arange(classes), n),
                        np.zeros(n_poison)]).astype(int)
    poison = np.arange(classes * n, classes * n + n_poison)
    feats[poison] = feats[poison] * 1.5
    feats[poison, 3] += shift
    feats = (feats - feats.min()) / (feats.max() - feats.min())
    return feats.reshape(-1, 20, 1, 1).astype("float32"), y, poison


def test_split_1d_and_separation_by_hand():
    v = np.array([0.0, 0.2, 0.1, 5.0, 5.2])
    np.testing.assert_array_equal(verdict.split_1d(v),
                                  [False, False, False, True, True])
    z = np.array([[0.0], [2.0], [10.0], [12.0]])
    lab = np.array([False, False, True, True])
    # gap 10, within SS 4 over n - 2 = 2 -> sd sqrt(2)
    assert verdict.separation(z, lab) == pytest.approx(10 / np.sqrt(2))


def test_p_value_is_the_gumbel_tail():
    assert verdict.p_value(verdict.NULL_LOCATION) == pytest.approx(
        1 - np.exp(-1))
    assert verdict.p_value(1.0) > verdict.p_value(1.5) > verdict.p_value(2)
    # the Bonferroni level of ten classes at alpha 0.05: a ratio of 1.825
    assert verdict.p_value(1.825) == pytest.approx(0.005, abs=1e-4)


def test_gaussian_class_is_not_suspect_and_planted_cluster_is():
    rng = np.random.RandomState(0)
    ratio, p, _, _ = verdict.class_statistic(rng.normal(size=(400, 30)))
    assert 0.9 < ratio < 1.1 and p > 0.3
    x, y, poison = planted(n_poison=100)
    rows = np.flatnonzero(y == 0)
    ratio, p, mark, _ = verdict.class_statistic(x[rows].reshape(400, -1))
    assert ratio > 2 and p < 1e-4
    np.testing.assert_array_equal(rows[mark], poison)


def test_half_of_a_class_is_found_by_its_spread():
    # poison = half of class 0: size cannot tell the clusters apart
    x, y, poison = planted(n=300, n_poison=300, shift=10.0)
    rows = np.flatnonzero(y == 0)
    _, p, mark, _ = verdict.class_statistic(x[rows].reshape(600, -1))
    assert p < 1e-4
    np.testing.assert_array_equal(rows[mark], poison)


def test_scan_verdict_on_planted_representations():
    model = flat_model()
    x, y, poison = planted(n_poison=60)
    r = poisoning.scan_training_set(model, x, y)
    assert r.poisoned and r.suspect_classes == [0]
    assert r.flagged() == poison.tolist()
    c0 = r.classes["0"]
    assert c0["estimated_fraction"] == pytest.approx(60 / 360)
    assert c0["separated"] and c0["entropy_ratio"] < 0.05
    assert not r.classes["1"]["suspect"] and r.classes["1"]["p_value"] > 0.01
    # the spectral signature takes the estimated share of suspect classes
    assert len(r.flagged("spectral_signature")) == int(1.5 * 60)
    assert PoisonScanReport.from_json(r.to_json()) == r
    assert "POISONED: classes 0" in r.table()
    x, y, _ = planted(n_poison=0)
    r = poisoning.scan_training_set(model, x, y, method="verdict")
    assert not r.poisoned and r.suspect_classes == [] and r.flagged() == []
    assert r.methods == {} and "no poisoning found" in r.table()


def test_trigger_test_by_hand():
    poison = np.arange(100) < 20
    entropy = np.where(poison, 0.05, 1.0)
    ratio, p, confirmed = verdict.trigger_test(entropy, poison, 0.01)
    assert ratio == pytest.approx(0.05) and p < 1e-10 and confirmed
    # the cluster keeps 0.9 of the rest's entropy: a natural sub-population
    ratio, p, confirmed = verdict.trigger_test(
        np.where(poison, 0.9, 1.0), poison, 0.01)
    assert ratio == pytest.approx(0.9) and not confirmed
    # a model that keeps every blend's class (all entropies 0) tells nothing
    assert verdict.trigger_test(np.zeros(100), poison, 0.01)[:1] == (1.0,)
    assert not verdict.trigger_test(np.zeros(100), poison, 0.01)[2]


def test_a_separated_cluster_without_a_trigger_is_not_suspect():
    # the same planted cluster, but the head ignores its feature: blended,
    # its rows lose their class like the rest (a natural sub-population)
    model = flat_model()
    model.get_layer("head").set_weights([np.zeros((20, 3), "float32"),
                                         np.zeros(3, "float32")])
    x, y, _ = planted(n_poison=60)
    r = poisoning.scan_training_set(model, x, y, method="verdict", seed=0)
    c0 = r.classes["0"]
    assert c0["separated"] and not c0["suspect"]
    assert c0["entropy_ratio"] == pytest.approx(1.0)
    assert not r.poisoned and r.flagged() == []
    assert "a natural sub-population" in r.table()
    assert PoisonScanReport.from_json(r.to_json()) == r


def test_expected_fraction_flags_that_share_nearest_the_poison():
    x, y, poison = planted(n_poison=60)
    r = poisoning.scan_training_set(flat_model(), x, y, method="verdict",
                                    expected_fraction=0.1)
    flagged = r.flagged()
    assert len(flagged) == 36 and set(flagged) <= set(poison)
    assert r.classes["0"]["estimated_fraction"] == pytest.approx(60 / 360)


def test_small_class_abstains():
    x, y, _ = planted(n=300, n_poison=60)
    keep = np.concatenate([np.flatnonzero(y != 2),
                           np.flatnonzero(y == 2)[:20]])
    r = poisoning.scan_training_set(flat_model(), x[keep], y[keep],
                                    method="verdict")
    assert r.classes["2"]["abstained"] == (
        "20 rows, fewer than the 50 the test needs")
    assert r.classes["2"]["p_value"] is None and r.suspect_classes == [0]
    assert "class 2: abstained" in r.table()


def assert_all_abstain(report, classes):
    """Every class abstained, so the verdict is "not poisoned", no rows."""
    assert sorted(report.classes, key=int) == [str(c) for c in
                                               range(classes)]
    for entry in report.classes.values():
        assert entry["abstained"] and entry["p_value"] is None
    assert not report.poisoned and report.flagged() == []


def trained(poison_rate, seed=0, rows=2000):
    (x, y), _ = datasets.load("mnist5k")
    x, y = x[:rows], y[:rows]
    p = poisoning.backdoor(x, y, target=0, rate=poison_rate, seed=seed)
    keras.utils.set_random_seed(seed)
    model = models.small_cnn(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    model.fit(p.x, p.y, epochs=3, batch_size=64, verbose=0)
    return model, p


def test_verdict_on_clean_and_poisoned_small_cnn():
    model, p = trained(0.0)
    r = poisoning.scan_training_set(model, p.x, p.y, method="verdict")
    assert not r.poisoned and r.flagged() == []
    model, p = trained(0.05)
    r = poisoning.scan_training_set(model, p.x, p.y, method="verdict")
    assert r.poisoned and r.suspect_classes == [0]
    found = np.isin(p.index, r.flagged())
    assert found.mean() >= 0.9
    assert np.isin(r.flagged(), p.index).mean() >= 0.9
