"""One output unit is a binary classifier at every entry point.

A model with one output unit (a logit, or a sigmoid probability) is read by
`ops.to_logits` as the two logits `[0, z]`: the prediction is `z > 0`, the
attack loss is binary cross-entropy, certification counts two classes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import certification, datasets, generative, models, ops, poisoning
from keras_adv.attacks import apgd, fgsm, pgd, square
from keras_adv.defenses import PGDTraining
from keras_adv.evaluation import evaluate_robustness

DIM = 6


def binary_model(sigmoid=False, seed=0):
    """Dense(1) on 6 features with fixed weights: a logit or a sigmoid."""
    rng = np.random.RandomState(seed)
    model = keras.Sequential([
        keras.Input((DIM,)),
        keras.layers.Dense(1, activation="sigmoid" if sigmoid else None)])
    w = rng.normal(size=(DIM, 1)).astype("float32")
    model.layers[0].set_weights([w, -0.5 * w.sum(0)])  # z centred on [0, 1]^6
    return model


def data(n=64, seed=1):
    """Inputs in [0, 1] and labels that the model gets right on about 3/4."""
    x = np.random.RandomState(seed).rand(n, DIM).astype("float32")
    z = binary_model()(x).numpy()[:, 0]
    y = (z > 0).astype("int64")
    y[: n // 4] = 1 - y[: n // 4]  # a quarter wrong
    return x, y, z


def own_accuracy(z, y):
    return float(np.mean((z > 0).astype(int) == y))


def test_reader_gives_two_logits_and_undoes_the_sigmoid():
    x, _, z = data()
    logits = ops.model_logits(binary_model(), x).numpy()
    np.testing.assert_array_equal(logits[:, 0], 0.0)
    np.testing.assert_allclose(logits[:, 1], z, rtol=1e-6)
    from_sigmoid = ops.model_logits(binary_model(sigmoid=True), x).numpy()
    np.testing.assert_allclose(from_sigmoid, logits, atol=1e-5)
    probs = ops.probabilities(binary_model(sigmoid=True), x)
    np.testing.assert_allclose(probs[:, 1], 1 / (1 + np.exp(-z)), atol=1e-6)
    assert ops.num_classes(binary_model()) == 2
    # A probability array from a plain callable, declared as such.
    p = np.array([[0.25], [0.9]])
    np.testing.assert_allclose(ops.probabilities_of(p, from_logits=False),
                               [[0.75, 0.25], [0.1, 0.9]], atol=1e-6)


@pytest.mark.parametrize("sigmoid", [False, True])
def test_attacks_lower_binary_accuracy(sigmoid):
    model = binary_model(sigmoid)
    x, y, z = data()
    clean = own_accuracy(z, y)
    for attack in (pgd, apgd):
        x_adv = attack(model, x, y, eps=0.5, seed=0)
        z_adv = binary_model()(x_adv).numpy()[:, 0]
        assert own_accuracy(z_adv, y) < clean - 0.3
        assert np.abs(x_adv - x).max() <= 0.5 + 1e-6
    x_adv = fgsm(model, x, y, eps=0.5)
    assert own_accuracy(binary_model()(x_adv).numpy()[:, 0], y) < clean - 0.3
    x_adv = square(model, x, y, eps=0.5, queries=200, seed=0)
    assert own_accuracy(binary_model()(x_adv).numpy()[:, 0], y) < clean


def test_dlr_on_binary_model_is_refused_in_one_line():
    x, y, _ = data(8)
    with pytest.raises(ValueError, match="loss='dlr' needs at least 3 "
                                         "classes. Received: model with 2"):
        pgd(binary_model(), x, y, eps=0.1, loss="dlr")


@pytest.mark.parametrize("sigmoid", [False, True])
def test_evaluate_robustness_binary(sigmoid):
    x, y, z = data()
    report = evaluate_robustness(binary_model(sigmoid), x, y,
                                 eps=[0.05, 0.5], seed=0, progress=False)
    assert report.clean_accuracy == pytest.approx(own_accuracy(z, y))
    assert report.robust_accuracy_curve[1] < report.clean_accuracy - 0.3
    assert report.attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
    deepfool = report.metrics["empirical_robustness"]  # two classes
    assert deepfool["failed"] == 0 and deepfool["median"] > 0


def test_certify_binary_predicts_the_base_class():
    x, _, z = data(16)
    keep = np.abs(z) > 0.5  # away from the boundary: the smoothed class
    for sigmoid in (False, True):
        cert = certification.certify(binary_model(sigmoid), x[keep],
                                     sigma=0.05, n0=50, n=500, seed=0)
        assert cert.counts.shape == (keep.sum(), 2)
        np.testing.assert_array_equal(cert.prediction, (z[keep] > 0))
        assert np.all(cert.radius > 0)
        pred = certification.predict(binary_model(sigmoid), x[keep],
                                     sigma=0.05, n=200, seed=0)
        np.testing.assert_array_equal(pred, (z[keep] > 0))
    y = (z > 0).astype(int)
    report = certification.evaluate_certified(
        binary_model(), x, y, sigma=0.05, n0=50, n=500, seed=0)
    assert report.certified_accuracy_curve[0] > 0.5
    with pytest.raises(ValueError, match=r"y must hold classes in \[0, 2\)"):
        certification.evaluate_certified(binary_model(), x, y + 2, sigma=0.05,
                                         n=100, seed=0)


@pytest.mark.parametrize("sigmoid", [False, True])
def test_adversarial_training_binary(sigmoid):
    x, y, _ = data(128)
    y = (binary_model()(x).numpy()[:, 0] > 0).astype("float32")
    base = binary_model(sigmoid, seed=3)
    model = models.AdversarialModel(base, defense=PGDTraining(eps=0.05,
                                                              steps=2))
    model.compile(keras.optimizers.Adam(0.3),
                  keras.losses.BinaryCrossentropy(from_logits=not sigmoid),
                  metrics=[keras.metrics.BinaryAccuracy(
                      threshold=0.5 if sigmoid else 0.0)])
    logs = model.fit(x, y, epochs=10, batch_size=32, verbose=0).history
    assert np.isfinite(logs["loss"]).all()
    assert logs["loss"][-1] < logs["loss"][0]
    assert logs["binary_accuracy"][-1] > 0.8


def binary_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, strides=2),
        keras.layers.ReLU(), keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


def test_poisoning_measures_and_detectors_on_binary_model():
    rng = np.random.RandomState(0)
    x = rng.rand(40, 28, 28, 1).astype("float32")
    model = binary_cnn()
    z = model(x).numpy()[:, 0]
    y = (z > 0).astype("int64")
    assert poisoning.clean_accuracy(model, x, y) == 1.0
    assert poisoning.clean_accuracy(model, x, 1 - y) == 0.0
    flagged = poisoning.spectral_signature(model, x, y, expected_fraction=0.2)
    assert flagged.dtype == np.int64 and len(flagged) > 0
    flagged = poisoning.activation_clustering(model, x, y, n_components=2)
    assert flagged.dtype == np.int64
    with pytest.raises(ValueError, match=r"y must be < num_classes=2"):
        poisoning.clean_accuracy(model, x, y + 2)


def test_pseudo_label_and_class_coverage_binary():
    x, _, z = data()
    x_kept, labels = datasets.pseudo_label(binary_model(sigmoid=True), x)
    np.testing.assert_array_equal(labels, (z > 0).astype(int))
    assert len(x_kept) == len(x)
    cov = generative.class_coverage(binary_model(), x)
    assert cov.counts.tolist() == [int((z <= 0).sum()), int((z > 0).sum())]


def test_rank_one_and_multi_output_still_refused():
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(1),
                              keras.layers.Reshape(())])
    with pytest.raises(ValueError, match="model must return logits of shape"):
        pgd(model, data(4)[0], None, eps=0.1)
    with pytest.raises(ValueError, match="single tensor"):
        ops.to_logits([tf.zeros((1, 2)), tf.zeros((1, 2))])
