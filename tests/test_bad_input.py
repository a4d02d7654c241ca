"""One catalogue of bad inputs across the public API.

Every case is a small function making one bad call; it must raise the
expected error at once, in one line that names the argument and the value
received (house style: "<arg> must be ... Received: <arg>=<value>"). The
tests after the catalogue check that nothing is damaged on the way: the
caller's arrays and the model's weights (the command line's output location:
tests/commands/test_evaluate.py).
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import datasets, defenses, generative, models, poisoning
from keras_adv.attacks import apgd, deepfool, fgsm, pgd, square
from keras_adv.certification import (
    SmoothedClassifier,
    certify,
    clopper_pearson_lower,
    evaluate_certified,
)
from keras_adv.evaluation import (
    empirical_robustness,
    evaluate_robustness,
    loss_sensitivity,
)
from tests.conftest import linear_model
from tests.models import serving_cases

X = np.full((4, 6), 0.5, "float32")
Y = np.array([0, 1, 2, 3])
NAN, INF = float("nan"), float("inf")


@functools.cache
def M():
    """The shared tiny model: 6 features -> 4 logits, fixed weights."""
    return linear_model(in_dim=6, classes=4)[0]


def x_with(value, shape=(4, 6)):
    """X with one entry replaced by `value` (NaN, inf, ...)."""
    x = np.full(shape, 0.5, "float32")
    x.flat[3] = value
    return x


def constant_model(x):
    """Outputs that do not depend on x: no input gradient."""
    return tf.ones((tf.shape(x)[0], 4))


def argmax_model(x):
    """Integer class scores (one-hot of the argmax): no input gradient."""
    return tf.one_hot(tf.argmax(M()(x), axis=-1), 4, dtype=tf.int32)


def fit_adversarial(x, y, defense=None):
    """One epoch of PGD adversarial training of a fresh tiny model."""
    model = models.AdversarialModel(
        linear_model(in_dim=6, classes=4)[0],
        defense=defense or defenses.PGDTraining(eps=0.1, steps=2))
    model.compile("sgd",
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, y, epochs=1, batch_size=4, verbose=0)


EMPTY = np.zeros((0, 6), "float32")
IMAGES = np.random.RandomState(0).rand(4, 28, 28, 1).astype("float32")


@functools.cache
def IMG():
    """A tiny image classifier: (28, 28, 1) -> 10 logits."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, strides=4),
        keras.layers.Flatten(), keras.layers.Dense(10)])


def ragged_stream():
    """Batches of 28x28 images, then one of 20x20."""
    def gen():
        yield np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int64")
        yield np.zeros((4, 20, 20, 1), "float32"), np.zeros(4, "int64")
    return tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((None, None, None, 1)), tf.TensorSpec((None,), tf.int64)
    )).apply(tf.data.experimental.assert_cardinality(2))


def endless_stream():
    """A generator dataset that never ends (unknown cardinality)."""
    def gen():
        while True:
            yield np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int64")
    return tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((None, 28, 28, 1)), tf.TensorSpec((None,), tf.int64)))

# (id, bad call, expected error, regex that must appear in the message)
CASES = [
    # ---- wrong shapes --------------------------------------------------
    ("pgd-x-rank1", lambda: pgd(M(), X[0], eps=0.1),
     ValueError, r"x must be batched.*Received: x with shape \(6,\)"),
    ("fgsm-y-length", lambda: fgsm(M(), X, Y[:3], eps=0.1),
     ValueError, r"y must have one label per example of x \(4\)\. "
                 r"Received: y with shape \(3,\)"),
    ("apgd-y-onehot-width", lambda: apgd(M(), X, np.eye(3)[[0, 1, 2, 0]],
                                         eps=0.1),
     ValueError, r"one-hot \(batch, 4\)\. Received: y with shape \(4, 3\)"),
    ("pgd-y-rank3", lambda: pgd(M(), X, np.zeros((4, 4, 1)), eps=0.1),
     ValueError, r"y must have shape .* Received: y with shape \(4, 4, 1\)"),
    ("square-x-rank5", lambda: square(M(), X.reshape(4, 1, 1, 1, 6), Y,
                                      eps=0.1),
     ValueError, r"x must match the input shape of the model \(None, 6\)\. "
                 r"Received: x with shape \(4, 1, 1, 1, 6\)"),
    ("pgd-x-features", lambda: pgd(M(), X[:, :5], Y, eps=0.1),
     ValueError, r"x must match the input shape of the model \(None, 6\)\. "
                 r"Received: x with shape \(4, 5\)"),
    ("deepfool-x-features", lambda: deepfool(M(), X[:, :5]),
     ValueError, r"Received: x with shape \(4, 5\)"),
    ("evaluate-x-features", lambda: evaluate_robustness(
        M(), X[:, :5], Y, eps=0.1, attacks="fgsm"),
     ValueError, r"x must match the input shape .* Received: x with shape "
                 r"\(4, 5\)"),
    ("evaluate-y-length", lambda: evaluate_robustness(
        M(), X, Y[:3], eps=0.1, attacks="fgsm"),
     ValueError, r"Received: y with shape \(3,\)"),
    # ---- image models: flat data, a missing batch axis, streams ---------
    ("pgd-flat-images", lambda: pgd(IMG(), IMAGES.reshape(4, 784), eps=0.1),
     ValueError, r"x must match the input shape of the model \(None, 28, 28, "
                 r"1\)\. Received: x with shape \(4, 784\)"),
    ("certify-flat-images", lambda: certify(IMG(), IMAGES.reshape(4, 784),
                                            sigma=0.25, n=10),
     ValueError, r"Received: x with shape \(4, 784\)"),
    ("evaluate-flat-images", lambda: evaluate_robustness(
        IMG(), IMAGES.reshape(4, 784), np.zeros(4, int), eps=0.1),
     ValueError, r"Received: x with shape \(4, 784\)"),
    ("certify-no-batch-axis", lambda: certify(IMG(), IMAGES[0], sigma=0.25,
                                              n=10),
     ValueError, r"x must have a batch axis.* Received: x with shape "
                 r"\(28, 28, 1\) \(use x\[None\]"),
    ("evaluate-stream-second-batch-20x20", lambda: evaluate_robustness(
        IMG(), ragged_stream(), eps=0.1, attacks="fgsm", batch_size=2),
     ValueError, r"data must match the input shape of the model .* "
                 r"Received: data with shape \(2, 20, 20, 1\)"),
    ("evaluate-stream-joined-20x20", lambda: evaluate_robustness(
        IMG(), ragged_stream(), eps=0.1, attacks="fgsm"),
     ValueError, r"data must yield batches of one input shape\. Received"),
    ("evaluate-stream-unbatched", lambda: evaluate_robustness(
        IMG(), tf.data.Dataset.from_tensor_slices(
            (IMAGES, np.zeros(4, "int64"))), eps=0.1),
     ValueError, r"call \.batch\(n\).* Received: data with elements of "
                 r"shape \(28, 28, 1\)"),
    ("evaluate-stream-endless", lambda: evaluate_robustness(
        IMG(), endless_stream(), eps=0.1),
     ValueError, r"num_examples must cap .* Received: data with unknown "
                 r"cardinality and num_examples=None"),
    ("evaluate-stream-infinite", lambda: evaluate_robustness(
        IMG(), tf.data.Dataset.from_tensors(
            (IMAGES, np.zeros(4, "int64"))).repeat(), eps=0.1),
     ValueError, r"Received: data with infinite cardinality"),
    ("spectral-wrong-image-shape", lambda: poisoning.spectral_signature(
        IMG(), np.zeros((4, 20, 20, 1), "float32"), np.zeros(4, int),
        expected_fraction=0.1),
     ValueError, r"x must match the input shape of the model .* Received: "
                 r"x with shape \(4, 20, 20, 1\)"),
    ("class_coverage-wrong-image-shape", lambda: generative.class_coverage(
        IMG(), np.zeros((4, 20, 20, 1), "float32")),
     ValueError, r"fake must match the input shape .* Received: fake with "
                 r"shape \(4, 20, 20, 1\)"),
    ("pseudo_label-wrong-image-shape", lambda: datasets.pseudo_label(
        IMG(), np.zeros((4, 20, 20, 1), "float32")),
     ValueError, r"x must match the input shape .* Received: x with shape "
                 r"\(4, 20, 20, 1\)"),
    ("frechet-wrong-image-shape", lambda: generative.frechet_distance(
        models.feature_model(IMG()),
        np.zeros((4, 20, 20, 1), "float32"), np.zeros((4, 20, 20, 1),
                                                      "float32")),
     ValueError, r"real must match the input shape .* Received: real with "
                 r"shape \(4, 20, 20, 1\)"),
    ("clean_label-flat-images", lambda: poisoning.clean_label_backdoor(
        IMG(), IMAGES.reshape(4, 28, 28), np.arange(4), target=0, rate=0.25,
        eps=0.1),
     ValueError, r"x must be a real array of shape \(n, height, width, "
                 r"channels\) \(rank 4\)\. Received: x of shape \(4, 28, 28\)"),
    # ---- the data box --------------------------------------------------
    ("backdoor-float-0-255", lambda: poisoning.backdoor(
        IMAGES * 255, np.arange(4) % 2, target=0, rate=0.5, seed=0),
     ValueError, r"x must lie in the data box \[0, 1\]\. Received: x with "
                 r"values in \[.*, 25\d(\.\d+)?\]"),
    ("spectral-float-0-255", lambda: poisoning.spectral_signature(
        IMG(), IMAGES * 255, np.zeros(4, int), expected_fraction=0.1),
     ValueError, r"x must lie in the data box \[0, 1\]"),
    ("clustering-float-0-255", lambda: poisoning.activation_clustering(
        IMG(), IMAGES * 255, np.zeros(4, int)),
     ValueError, r"x must lie in the data box \[0, 1\]"),
    ("certify-outside-clip", lambda: certify(IMG(), IMAGES * 255, sigma=0.25,
                                             n=10, clip=(0, 1)),
     ValueError, r"x must lie inside clip=\(0\.0, 1\.0\)"),
    # ---- labels and counts out of range ----------------------------------
    ("evaluate_certified-y-plus-10", lambda: evaluate_certified(
        IMG(), IMAGES, np.arange(4) + 10, sigma=0.25, n=10),
     ValueError, r"y must hold classes in \[0, 10\)\. Received: y with "
                 r"values in \[10, 13\]"),
    ("clopper_pearson-k-above-n", lambda: clopper_pearson_lower(
        [11], 10, alpha=0.001),
     ValueError, r"k must hold integer counts in \[0, n=10\]\. Received: "
                 r"k=\[11\]"),
    ("clopper_pearson-k-negative",
     lambda: clopper_pearson_lower(-1, 10, alpha=0.01),
     ValueError, r"Received: k=-1"),
    ("clopper_pearson-n-zero",
     lambda: clopper_pearson_lower(0, 0, alpha=0.01),
     ValueError, r"n must be >= 1\. Received: n=0"),
    ("clean_accuracy-y-out-of-range", lambda: poisoning.clean_accuracy(
        IMG(), IMAGES, np.arange(4) + 8),
     ValueError, r"y must be < num_classes=10\. Received: y with label 11"),
    # ---- wrong dtypes and kinds ----------------------------------------
    ("pgd-x-string", lambda: pgd(M(), np.full((4, 6), "a"), eps=0.1),
     ValueError, r"x must have a floating dtype\. Received: x with dtype "
                 r"string"),
    ("fgsm-x-complex", lambda: fgsm(M(), X.astype(np.complex64), eps=0.1),
     ValueError, r"Received: x with dtype complex64"),
    ("apgd-x-int", lambda: apgd(M(), np.ones((4, 6), "int32"), eps=0.1),
     ValueError, r"Received: x with dtype int32"),
    ("pgd-x-none", lambda: pgd(M(), None, eps=0.1),
     ValueError, r"x must be an array or tensor of numbers.* "
                 r"Received: x=None"),
    ("fgsm-x-ragged", lambda: fgsm(M(), [[0.5] * 6, [0.5] * 5], eps=0.1),
     ValueError, r"x must be an array .* Received: x=\[\[0\.5"),
    ("pgd-y-bool", lambda: pgd(M(), X, Y % 2 == 0, eps=0.1),
     ValueError, r"y must hold integer class indices or one-hot rows\. "
                 r"Received: y with dtype bool"),
    ("square-y-string", lambda: square(M(), X, np.array(list("abcd")),
                                       eps=0.1),
     ValueError, r"Received: y with dtype string"),
    ("fgsm-y-dict", lambda: fgsm(M(), X, {"y": Y}, eps=0.1),
     ValueError, r"y must be an array or tensor of class indices\. "
                 r"Received: y=\{'y': "),
    ("evaluate-y-string", lambda: evaluate_robustness(
        M(), X, np.array(list("abcd")), eps=0.1, attacks="fgsm"),
     ValueError, r"Received: y with dtype string"),
    # ---- NaN and inf in x ----------------------------------------------
    ("fgsm-x-nan", lambda: fgsm(M(), x_with(NAN), eps=0.1),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "
                 r"non-finite"),
    ("pgd-x-inf", lambda: pgd(M(), x_with(INF), Y, eps=0.1, clip=None),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "),
    ("apgd-x-neg-inf", lambda: apgd(M(), x_with(-INF), eps=0.1),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "),
    ("square-x-nan", lambda: square(M(), x_with(NAN), eps=0.1),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "),
    ("deepfool-x-inf", lambda: deepfool(M(), x_with(INF)),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "),
    ("evaluate-x-nan", lambda: evaluate_robustness(
        M(), x_with(NAN), Y, eps=0.1, attacks="fgsm"),
     ValueError, r"x must not contain NaN or inf\. Received: x with 1 "),
    # ---- eps out of range ----------------------------------------------
    ("fgsm-eps-negative", lambda: fgsm(M(), X, eps=-0.1),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
    ("pgd-eps-nan", lambda: pgd(M(), X, eps=NAN),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=nan"),
    ("apgd-eps-inf", lambda: apgd(M(), X, eps=INF),
     ValueError, r"Received: eps=inf"),
    ("square-eps-negative", lambda: square(M(), X, eps=-1),
     ValueError, r"Received: eps=-1"),
    ("deepfool-eps-nan", lambda: deepfool(M(), X, eps=NAN),
     ValueError, r"Received: eps=nan"),
    ("pgd-eps-string", lambda: pgd(M(), X, eps="0.1"),
     ValueError, r"eps must be a number\. Received: eps='0\.1'"),
    ("pgd-eps-tensor-nan", lambda: pgd(M(), X, eps=tf.constant(NAN)),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=.*nan"),
    ("evaluate-eps-negative", lambda: evaluate_robustness(
        M(), X, Y, eps=[0.1, -0.1]),
     ValueError, r"eps must be a finite number >= 0 or a list of them\. "
                 r"Received: eps=\[0\.1, -0\.1\]"),
    ("evaluate-eps-inf", lambda: evaluate_robustness(M(), X, Y, eps=INF),
     ValueError, r"Received: eps=inf"),
    ("PGDTraining-eps-negative", lambda: defenses.PGDTraining(eps=-0.1),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=-0\.1"),
    ("TRADES-eps-nan", lambda: defenses.TRADES(eps=NAN),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=nan"),
    ("MART-eps-inf", lambda: defenses.MART(eps=INF),
     ValueError, r"eps must be a finite number >= 0\. Received: eps=inf"),
    ("FGSMTraining-eps-negative", lambda: defenses.FGSMTraining(eps=-1.0),
     ValueError, r"Received: eps=-1\.0"),
    ("FastTraining-eps-nan", lambda: defenses.FastTraining(eps=NAN),
     ValueError, r"Received: eps=nan"),
    ("FreeTraining-eps-inf", lambda: defenses.FreeTraining(eps=INF),
     ValueError, r"Received: eps=inf"),
    ("PGDTraining-eps-string", lambda: defenses.PGDTraining(eps="0.3"),
     ValueError, r"eps must be a number\. Received: eps='0\.3'"),
    # ---- labels out of range or of the wrong kind ----------------------
    ("pgd-y-too-large", lambda: pgd(M(), X, [0, 1, 2, 4], eps=0.1),
     ValueError, r"y must hold classes in \[0, 4\)\. Received: y with "
                 r"values in \[0, 4\]"),
    ("fgsm-y-negative", lambda: fgsm(M(), X, [0, -1, 2, 3], eps=0.1),
     ValueError, r"Received: y with values in \[-1, 3\]"),
    ("apgd-y-half", lambda: apgd(M(), X, [0.5, 1, 2, 3], eps=0.1),
     ValueError, r"y must hold integer class indices\. Received: y with "
                 r"values such as \[0\.5"),
    ("deepfool-y-too-large", lambda: deepfool(M(), X, [7, 1, 2, 3]),
     ValueError, r"Received: y with values in \[1, 7\]"),
    ("square-y-nan", lambda: square(M(), X, [NAN, 1, 2, 3], eps=0.1),
     ValueError, r"y must hold integer class indices\. Received: y with "
                 r"values such as \[nan"),
    ("evaluate-y-too-large", lambda: evaluate_robustness(
        M(), X, [0, 1, 2, 9], eps=0.1, attacks="fgsm"),
     ValueError, r"Received: y with values in \[0, 9\]"),
    pytest.param(
        "adversarial_loss-y-too-large", lambda: defenses.adversarial_loss(
            M(), X, np.array([0, 1, 2, 9]),
            defenses.PGDTraining(eps=0.1, steps=2)),
        ValueError, r"y must hold classes in \[0, 4\)\. Received: y"),
    pytest.param(
        "fit-y-too-large", lambda: fit_adversarial(X, np.array([0, 1, 2, 9])),
        ValueError, r"y must hold classes in \[0, 4\)\. Received: y"),
    # ---- empty batches -------------------------------------------------
    ("fgsm-x-empty", lambda: fgsm(M(), EMPTY, eps=0.1),
     ValueError, r"x must contain at least one example\. Received: x with "
                 r"shape \(0, 6\)"),
    ("apgd-x-empty", lambda: apgd(M(), EMPTY, np.zeros(0, int), eps=0.1),
     ValueError, r"Received: x with shape \(0, 6\)"),
    ("square-x-empty", lambda: square(M(), EMPTY, eps=0.1),
     ValueError, r"Received: x with shape \(0, 6\)"),
    ("deepfool-x-empty", lambda: deepfool(M(), EMPTY),
     ValueError, r"Received: x with shape \(0, 6\)"),
    ("evaluate-x-empty", lambda: evaluate_robustness(
        M(), EMPTY, np.zeros(0, int), eps=0.1, attacks="fgsm"),
     ValueError, r"x must contain at least one example\. Received: x with "
                 r"shape \(0, 6\)"),
    ("loss_sensitivity-x-empty", lambda: loss_sensitivity(
        M(), EMPTY, np.zeros(0, int)),
     ValueError, r"Received: x with shape \(0, 6\)"),
    # ---- models without gradients, or not models -----------------------
    ("pgd-argmax-model", lambda: pgd(argmax_model, X, Y, eps=0.1),
     ValueError, r"model gives no gradient with respect to its input.*"
                 r"Received: a model whose output does not depend"),
    ("apgd-constant-model", lambda: apgd(constant_model, X, Y, eps=0.1),
     ValueError, r"model gives no gradient .* Received: a model"),
    ("deepfool-constant-model", lambda: deepfool(constant_model, X, Y),
     ValueError, r"model gives no gradient .*DeepFool.* Received: a model"),
    ("loss_sensitivity-constant-model", lambda: loss_sensitivity(
        constant_model, X, Y),
     ValueError, r"model gives no gradient .* Received: a model"),
    ("fgsm-rank1-output", lambda: fgsm(lambda x: tf.reduce_sum(x, -1), X,
                                       eps=0.1),
     ValueError, r"model must return logits of shape \(batch, classes\)\. "
                 r"Received: model output with shape \(4,\)"),
    ("pgd-model-path", lambda: pgd("model.keras", X, eps=0.1),
     ValueError, r"model must be callable\. Received: model='model\.keras'"),
    ("square-model-none", lambda: square(None, X, eps=0.1),
     ValueError, r"model must be callable\. Received: model=None"),
    ("evaluate-model-path", lambda: evaluate_robustness(
        "model.keras", X, Y, eps=0.1),
     ValueError, r"model must be callable\. Received: model='model\.keras'"),
    ("empirical_robustness-model-none", lambda: empirical_robustness(
        None, X, Y),
     ValueError, r"model must be callable\. Received: model=None"),
    ("AdversarialModel-defense-string", lambda: models.AdversarialModel(
        M(), defense="pgd"),
     ValueError, r"defense must be a keras_adv\.defenses\.Defense .*"
                 r"Received: defense='pgd'"),
    ("adversarial_loss-defense-string", lambda: defenses.adversarial_loss(
        M(), X, Y, "pgd"),
     ValueError, r"defense must be .* Received: defense='pgd'"),
    # ---- unknown names -------------------------------------------------
    ("pgd-norm-l3", lambda: pgd(M(), X, eps=0.1, norm="l3"),
     ValueError, r"norm must be one of \('linf', 'l2'\)\. "
                 r"Received: norm='l3'"),
    ("deepfool-norm-l1", lambda: deepfool(M(), X, norm="l1"),
     ValueError, r"Received: norm='l1'"),
    ("apgd-loss-foo", lambda: apgd(M(), X, eps=0.1, loss="foo"),
     ValueError, r"loss must be one of .* Received: loss='foo'"),
    ("square-loss-foo", lambda: square(M(), X, eps=0.1, loss="foo"),
     ValueError, r"Received: loss='foo'"),
    ("evaluate-attack-unknown", lambda: evaluate_robustness(
        M(), X, Y, eps=0.1, attacks="pgd,cw"),
     ValueError, r"attacks must name attacks from .* "
                 r"Received: attacks='pgd,cw' \(unknown: 'cw'\)"),
    ("evaluate-attack-list-unknown", lambda: evaluate_robustness(
        M(), X, Y, eps=0.1, attacks=["apgd-ce", "cw"]),
     ValueError, r"Received: attacks=\['apgd-ce', 'cw'\] \(unknown: "
                 r"'cw'\)"),
    ("evaluate-attack-option-unknown", lambda: evaluate_robustness(
        M(), X, Y, eps=0.1, attacks=[("pgd", {"stepz": 3})]),
     ValueError, r"attacks options for 'pgd' must be among .* "
                 r"Received: attacks=.*unknown options: \['stepz'\]"),
    ("evaluate-attack-option-fixed", lambda: evaluate_robustness(
        M(), X, Y, eps=0.1, attacks=[("square", {"eps": 0.5})]),
     ValueError, r"Received: attacks=.*unknown options: \['eps'\]"),
    ("evaluate-norm-l3", lambda: evaluate_robustness(
        M(), X, Y, eps=0.1, norm="l3"),
     ValueError, r"Received: norm='l3'"),
    ("PGDTraining-norm-l3", lambda: defenses.PGDTraining(eps=0.1, norm="l3"),
     ValueError, r"norm must be one of .* Received: norm='l3'"),
    ("datasets-load-unknown", lambda: datasets.load("imagenet"),
     ValueError, r"name must be one of .* Received: name='imagenet'"),
    ("datasets-load_tf-unknown", lambda: datasets.load_tf("mnist4k"),
     ValueError, r"Received: name='mnist4k'"),
    # ---- serving --------------------------------------------------------
    ("SmoothedClassifier-sigma-0", lambda: SmoothedClassifier(M(), sigma=0),
     ValueError, r"sigma must be .* Received: sigma=0"),
    ("SmoothedClassifier-n-0", lambda: SmoothedClassifier(M(), sigma=0.25, n=0),
     ValueError, r"n must be .* Received: n=0"),
    ("SmoothedClassifier-alpha-1", lambda: SmoothedClassifier(
        M(), sigma=0.25, alpha=1.0), ValueError, r"Received: alpha=1\.0"),
    ("SmoothedClassifier-base-function", lambda: SmoothedClassifier(
        linear_model, sigma=0.25), ValueError, r"base must be a Keras model"),
    ("export_model-format", lambda: models.export_model(
        M(), "/tmp/m", format="pt"), ValueError, r"Received: format='pt'"),
    ("load_served-path", lambda: models.load_served("/tmp/model.bin"),
     ValueError, r"Received: path='/tmp/model\.bin'"),
    # ---- training inputs the attacks would refuse ----------------------
    pytest.param(
        "adversarial_loss-x-nan", lambda: defenses.adversarial_loss(
            M(), x_with(NAN), Y, defenses.PGDTraining(eps=0.1, steps=2)),
        ValueError, r"x must not contain NaN or inf\. Received: x"),
    pytest.param(
        "fit-x-nan", lambda: fit_adversarial(x_with(NAN), Y),
        ValueError, r"x must not contain NaN or inf\. Received: x"),
    pytest.param(
        "fit-x-outside-clip", lambda: fit_adversarial(X * 255, Y),
        ValueError, r"x must lie inside clip=\(0\.0, 1\.0\)\. Received: x"),
    # ---- certification: non-finite outputs, SmoothedClassifier [certification] ----
    # Base models whose scores are NaN, +inf or -inf (a constant bias): no
    # non-finite score votes, so every certification function refuses them.
    ("certify-model-nan", lambda: certify(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(
            4, bias_initializer=keras.initializers.Constant(NAN))]),
        X, sigma=0.25, n0=100, n=100, seed=0), ValueError,
     r"^model output must be finite .* Received: a model output that is "
     r"not finite on 100 of 100 noisy copies of example 0 \(and 3 more"),
    ("certify-model-inf", lambda: certify(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(
            4, bias_initializer=keras.initializers.Constant(INF))]),
        X, sigma=0.25, n0=100, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("predict-model-nan", lambda: __import__("keras_adv").certification
     .predict(keras.Sequential([keras.Input((6,)), keras.layers.Dense(
         4, bias_initializer=keras.initializers.Constant(NAN))]),
        X, sigma=0.25, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("predict-model-inf", lambda: __import__("keras_adv").certification
     .predict(keras.Sequential([keras.Input((6,)), keras.layers.Dense(
         4, bias_initializer=keras.initializers.Constant(INF))]),
        X, sigma=0.25, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("sample_counts-model-nan", lambda: __import__("keras_adv").certification
     .sample_counts(keras.Sequential([keras.Input((6,)), keras.layers.Dense(
         4, bias_initializer=keras.initializers.Constant(NAN))]),
        X, sigma=0.25, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("sample_counts-model-neg-inf", lambda: __import__("keras_adv")
     .certification.sample_counts(keras.Sequential([
         keras.Input((6,)), keras.layers.Dense(
             4, bias_initializer=keras.initializers.Constant(-INF))]),
        X, sigma=0.25, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("evaluate_certified-model-nan", lambda: evaluate_certified(
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(
            4, bias_initializer=keras.initializers.Constant(NAN))]),
        X, Y, sigma=0.25, n0=100, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    ("evaluate_certified-model-inf", lambda: evaluate_certified(
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(
            4, bias_initializer=keras.initializers.Constant(INF))]),
        X, Y, sigma=0.25, n0=100, n=100, seed=0), ValueError,
     r"Received: a model output that is not finite on 100 of 100 noisy "
     r"copies of example 0"),
    # NaN only where x[:, 0] > 0.9: example 2 alone is named.
    ("certify-model-nan-on-one-input", lambda: certify(keras.Model(
        i := keras.Input((6,)), keras.ops.where(i[:, :1] > 0.9, NAN, M()(i))),
        np.where(np.arange(6) == 0, [[0.0], [0.0], [2.0], [0.0]], 0.5).astype(
            "float32"), sigma=0.1, n0=100, n=100, seed=0), ValueError,
     r"not finite on 100 of 100 noisy copies of example 2$"),
    ("SmoothedClassifier-inputs-shape", lambda: SmoothedClassifier(
        M(), sigma=0.25, n=10)(np.zeros((4, 5), "float32")), ValueError,
     r"inputs must match the input shape of the model \(None, 6\)\. "
     r"Received: inputs with shape \(4, 5\)$"),
    ("SmoothedClassifier-inputs-no-batch-axis", lambda: SmoothedClassifier(
        M(), sigma=0.25, n=10)(np.zeros(6, "float32")), ValueError,
     r"inputs must have a batch axis: .* Received: inputs with shape \(6,\)"),
    ("certify-progress-text", lambda: certify(
        M(), X, sigma=0.25, n0=10, n=10, progress="yes"), TypeError,
     r"^progress must be True, False or None\. Received: progress='yes'$"),
    # (end of [certification])
    # ---- serving and export edges [serving] ----
    ("export_model-format-contradicts-tflite", lambda: models.export_model(
        M(), serving_cases.tmp("m.tflite"), format="onnx"),
     ValueError, r"format must agree with path.*Received: format='onnx', "
                 r"path='.*m\.tflite'"),
    ("export_model-saved_model-onnx-path", lambda: models.export_model(
        M(), serving_cases.tmp("x.onnx"), format="saved_model"),
     ValueError, r"Received: format='saved_model', path='.*x\.onnx'"),
    ("export_model-keras-path", lambda: models.export_model(
        M(), serving_cases.tmp("m.keras")),
     ValueError, r"model\.save writes \.keras files.*Received: path="),
    ("export_model-multi-input", lambda: models.export_model(
        serving_cases.two_inputs(), serving_cases.tmp("m.onnx")),
     ValueError, r"model must have one input.*Received: model 'two_inputs' "
                 r"with 2 inputs"),
    ("export_model-signature-shape", lambda: models.export_model(
        M(), serving_cases.tmp("m"),
        input_signature=tf.TensorSpec((None, 5), tf.float32)),
     ValueError, r"input_signature must have the shape of the model's input "
                 r"\(None, 6\)\. Received: input_signature with shape"),
    ("export_model-signature-not-spec", lambda: models.export_model(
        M(), serving_cases.tmp("m.tflite"), input_signature=[(None, 6)]),
     ValueError, r"input_signature must be a tf\.TensorSpec.*Received: "
                 r"input_signature="),
    ("export_model-opset-string", lambda: models.export_model(
        M(), serving_cases.tmp("m.onnx"), opset="17"),
     ValueError, r"opset must be an integer.*Received: opset='17'"),
    ("export_model-python-lambda", lambda: models.export_model(
        serving_cases.numpy_lambda(), serving_cases.tmp("m")),
     ValueError, r"Lambda layers \['numpy_twice'\] run Python code.*"
                 r"Received: model 'numpy_lambda'"),
    ("export_model-loaded-saved-model", lambda: models.export_model(
        models.load_model(serving_cases.plain_saved()),
        serving_cases.tmp("m.onnx")),
     ValueError, r"a loaded SavedModel is already exported.*Received: "
                 r"model=SavedModelFunction"),
    ("load_served-no-signature", lambda: models.load_served(
        serving_cases.saved_module(["none"])),
     ValueError, r"must have a serving signature.*Received: .* with "
                 r"signatures \[\]"),
    ("load_served-two-signatures", lambda: models.load_served(
        serving_cases.saved_module(["first", "second"])),
     ValueError, r"Received: .* with signatures \['first', 'second'\]"),
    ("load_served-keras-file", lambda: models.load_served(
        serving_cases.tmp("m.keras")),
     ValueError, r"load it with keras_adv\.models\.load_model.*Received: "
                 r"path='.*m\.keras'"),
    ("load_served-uint8-images", lambda: serving_cases.served()(
        np.full((2, 6), 200, "uint8")),
     ValueError, r"x must hold floating-point values.*/ 255.*Received: x "
                 r"with dtype uint8"),
    ("load_served-tflite-shape", lambda: serving_cases.served(".tflite")(
        np.zeros((2, 5))),
     ValueError, r"x must have the served input's shape \(None, 6\).*"
                 r"Received: x with shape \(2, 5\)"),
    ("load_served-onnx-strings", lambda: serving_cases.served(".onnx")(
        np.array([["a"] * 6])),
     ValueError, r"Received: x with dtype str"),
    ("AdversarialModel-perturb-and-perturb_layer", lambda: (
        models.AdversarialModel(M(), defense=defenses.PGDTraining(eps=0.1),
                                perturb=[0], perturb_layer="dense")),
     ValueError, r"perturb and perturb_layer cannot be combined\. "
                 r"Received: perturb=\[0\] with perturb_layer='dense'$"),
    ("AdversarialModel-compile-metrics-string", lambda: (
        models.AdversarialModel(M(), defense=defenses.PGDTraining(eps=0.1))
        .compile("sgd", "sparse_categorical_crossentropy",
                 metrics="accuracy")),
     ValueError, r"takes metrics as a list .*Received: metrics='accuracy'$"),
    ("AdversarialModel-evaluate-adversarial-string", lambda: (
        models.AdversarialModel(M(), defense=defenses.PGDTraining(eps=0.1))
        .evaluate(X, Y, adversarial="pgd")),
     ValueError, r"adversarial must be True, False or a callable .*"
                 r"Received: adversarial='pgd'$"),
    ("AdversarialModel-set_eps_scale-above-one", lambda: (
        models.AdversarialModel(M(), defense=defenses.PGDTraining(eps=0.1))
        .set_eps_scale(1.5)),
     ValueError, r"Received: scale=1\.5$"),
    ("AdversarialModel-fit-without-labels", lambda: fit_adversarial(X, None),
     ValueError, r"Adversarial training needs labels\. Received: data "
                 r"without y$"),
    # (end of [serving])
    # ---- reports read back [reports] ----
    ("RobustnessReport-from_json-empty-object", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back("robustness", "{}"),
     ValueError, r"RobustnessReport JSON must have the field 'eps' \(a list "
     r"of numbers\)\. Received: an empty object"),
    ("CertificationReport-from_json-list", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back(
            "certification", "[]"),
     ValueError, r"CertificationReport JSON must be an object .* "
     r"Received: \[\]"),
    ("PoisoningReport-from_json-number-as-string", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back(
            "poisoning", clean_accuracy="high"),
     ValueError, r"'clean_accuracy' as a number or null for NaN\. "
     r"Received: clean_accuracy='high'"),
    ("RobustnessReport-from_json-number-as-list", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back(
            "robustness", robust_accuracy=0.5),
     ValueError, r"'robust_accuracy' as a list of numbers\. "
     r"Received: robust_accuracy=0\.5"),
    ("PoisonScanReport-from_json-missing-field", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back(
            "poison_scan", '{"num_examples": 6}'),
     ValueError, r"PoisonScanReport JSON must have the field "
     r"'expected_fraction' .* Received: fields \['num_examples'\]"),
    ("AuditReport-from_json-nested-evasion", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_back(
            "audit", evasion={"eps": [0.1]}),
     ValueError, r"AuditReport JSON field 'evasion': RobustnessReport JSON "
     r"must have the field 'norm'"),
    ("AuditReport-from_json-empty-file", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_file("audit", ""),
     ValueError, r"Received: the file '.*report\.json', empty"),
    ("CertificationReport-from_json-not-json-file", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_file(
            "certification", "<html></html>"),
     ValueError, r"must hold JSON\. Received: the file .* does not parse"),
    ("RobustnessReport-from_json-binary-file", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).read_file(
            "robustness", b"\x89PNG\r\n\x1a\n\xff\xfe"),
     ValueError, r"readable JSON file\. Received: text_or_path="),
    # (end of [reports])
    # ---- audit arguments [audit] ----
    ("audit-num_examples-negative", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            num_examples=-1),
     ValueError, r"num_examples must be >= 1\. "
     r"Received: num_examples=-1"),
    ("audit-num_examples-float", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            num_examples=2.5),
     ValueError, r"Received: num_examples=2\.5"),
    ("audit-y-None", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(y=None),
     ValueError, r"y must be the labels of x.* Received: y=None"),
    ("audit-y-wrong-length", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            y=np.arange(3)),
     ValueError, r"Received: y of length 3"),
    ("audit-jinja2-missing", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            hide="jinja2"),
     ModuleNotFoundError, r"pip install 'keras_adv\[audit\]'\. "
     r"Received: jinja2 not installed"),
    ("audit-matplotlib-missing", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            hide="matplotlib"),
     ModuleNotFoundError, r"pip install 'keras_adv\[audit\]'\. "
     r"Received: matplotlib not installed"),
    ("audit-poison_alpha-one", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            poison_alpha=1.0),
     ValueError, r"poison_alpha must be a number in \(0, 1\)\. "
     r"Received: poison_alpha=1\.0"),
    ("audit-expected_fraction-above-one", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            expected_fraction=1.5),
     ValueError, r"expected_fraction must be a number in \[0, 1\]\. "
     r"Received: expected_fraction=1\.5"),
    ("audit-describe-unknown-key", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).refused_audit(
            describe={"dataset": "x"}),
     ValueError, r"describe must be a dict with keys among .* Received: "
     r"describe=\{'dataset': 'x'\} \(unknown: \['dataset'\]\)"),
    # (end of [audit])
    # ---- attacks: flags, gradients, dtypes [attacks] ----
    *[(f"{name}-targeted-string", call, TypeError,
       r"targeted must be a bool\. Received: targeted='False'")
      for name, call in [
          ("fgsm", lambda: fgsm(M(), X, Y, eps=0.1, targeted="False")),
          ("pgd", lambda: pgd(M(), X, Y, eps=0.1, targeted="False")),
          ("apgd", lambda: apgd(M(), X, Y, eps=0.1, targeted="False")),
          ("square", lambda: square(M(), X, Y, eps=0.1, targeted="False")),
          ("fab", lambda: __import__("keras_adv.attacks").attacks.fab(
              M(), X, Y, targeted="False"))]],
    ("fab-targeted-int", lambda: __import__("keras_adv.attacks").attacks.fab(
        M(), X, targeted=1), TypeError,
     r"targeted must be a bool\. Received: targeted=1"),
    ("fab-argmax-model", lambda: __import__("keras_adv.attacks").attacks.fab(
        argmax_model, X, steps=2), ValueError,
     r"model gives no gradient with respect to its input; FAB cannot run "
     r"on it\. Received: a model whose output does not depend"),
    ("fab-integer-cast-model",
     lambda: __import__("keras_adv.attacks").attacks.fab(
         lambda x: M()(tf.cast(tf.cast(x * 10, tf.int32), tf.float32)), X,
         steps=2, targeted=True), ValueError,
     r"model gives no gradient .*FAB.* Received: a model"),
    ("fab-locally-constant-model",
     lambda: __import__("keras_adv.attacks").attacks.fab(
         lambda x: M()(x * 0.0), X, steps=2), ValueError,
     r"FAB needs the model's logits to change with x: their input gradient "
     r"is zero for every example of the batch\. Received: a model locally "
     r"constant in x"),
    ("deepfool-locally-constant-model", lambda: deepfool(
        lambda x: M()(x * 0.0), X), ValueError,
     r"DeepFool needs the model's logits to change with x.* Received: a "
     r"model locally constant in x"),
    # The flag is checked before APGD-T reads it ("False" is truthy).
    ("apgd-t-targeted-string", lambda: apgd(
        M(), X, Y, eps=0.1, target_classes=2, targeted="False"), TypeError,
     r"targeted must be a bool\. Received: targeted='False'"),
    ("apgd-t-targeted-true", lambda: apgd(
        M(), X, Y, eps=0.1, target_classes=2, targeted=True), ValueError,
     r"target_classes picks the targets itself and needs targeted=False\. "
     r"Received: target_classes=2 with targeted=True"),
    # (end of [attacks])
    # ---- poisoning verdict [poisoning] ----
    ("scan-alpha-zero", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), alpha=0),
     ValueError, r"alpha must be a number in \(0, 1\)\. Received: alpha=0"),
    ("scan-alpha-one", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), alpha=1.0),
     ValueError, r"alpha must be a number in \(0, 1\)\. Received: "
                 r"alpha=1\.0"),
    ("scan-alpha-text", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), alpha="0.05"),
     ValueError, r"alpha must be a number in \(0, 1\)\. Received: alpha="),
    ("scan-method-unknown", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), method="spectre"),
     ValueError, r"method must be one of .*verdict\. Received: "
                 r"method='spectre'"),
    ("scan-one-hot-of-other-width", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.eye(5)[np.arange(4)]),
     ValueError, r"y must be one-hot over the model's 10 classes\. "
                 r"Received: y of width 5"),
    ("scan-labels-beyond-the-model", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4) + 8),
     ValueError, r"y must be < num_classes=10\. Received: y with label 11"),
    ("scan-expected-fraction-above-one", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), expected_fraction=1.5),
     ValueError, r"expected_fraction must be a number in \[0, 1\]\. "
                 r"Received: expected_fraction=1\.5"),
    ("scan-representation-nan", lambda: poisoning.scan_training_set(
        keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(4, bias_initializer=keras
                                             .initializers.Constant(NAN)),
                          keras.layers.Dense(10)]),
        IMAGES, np.arange(4)),
     ValueError, r"the model's representations of x must be finite\. "
                 r"Received: 4 rows with NaN or inf"),
    ("scan-progress-number", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), progress=1), TypeError,
     r"^progress must be True, False or None\. Received: progress=1$"),
    # (end of [poisoning])
    # ---- commands (check step, no TensorFlow) [commands] ----
    ("cmd-json-onto-model", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "evaluate", "{m}", "--eps", "0.1", "--json", "{m}"), ValueError,
     r"--json must not be a file the command reads .* Received: --json "),
    ("cmd-sigma-inf", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "certify", "{m}", "--sigma", "inf"), ValueError,
     r"--sigma must be a finite number\. Received: --sigma inf"),
    ("cmd-remove-factor-inf", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "poison-scan", "{m}", "--data", "{d}", "--expected-fraction", "0.1",
        "--remove-factor", "inf"), ValueError,
     r"--remove-factor must be a finite number\. Received: "),
    ("cmd-seed-negative", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "evaluate", "{m}", "--eps", "0.1", "--seed", "-1"), ValueError,
     r"--seed must be an integer in \[0, 4294967295\]\. Received: --seed -1"),
    ("cmd-seed-huge", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--seed",
        "99999999999999999999"), ValueError,
     r"Received: --seed 99999999999999999999"),
    ("cmd-standard-and-its-stage", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "evaluate", "{m}", "--eps", "0.1", "--attacks", "standard,apgd-ce"),
     ValueError, r"Received: --attacks standard,apgd-ce \(apgd-ce is in "),
    ("cmd-not-a-keras-archive", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "evaluate", "{r}/empty.keras", "--eps", "0.1"), ValueError,
     r"Received: .*empty\.keras \(not a \.keras archive: not a zip file\)"),
    ("cmd-npz-without-x-y", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "certify", "{m}", "--sigma", "0.25", "--data", "{r}/nokeys.npz"),
     ValueError, r"must be an \.npz file with arrays x and y\. Received: "),
    ("cmd-compare-not-a-report", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--compare",
        "{r}/other.json"), ValueError,
     r"--compare must be an earlier audit's report\.json\. Received: "),
    ("cmd-train-data-test-split", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--train-data",
        "mnist5k"), ValueError, r"Received: --train-data mnist5k \(the test "),
    ("cmd-out-holds-an-input", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}", "--overwrite"),
     ValueError, r"--out must not hold a file the command reads\. Received: "),
    ("cmd-audit-sigma-zero", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--sigma", "0"),
     ValueError, r"^--sigma must be a finite number > 0\. Received: --sigma "
                 r"0\.0$"),
    ("cmd-size-threshold-one", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "poison-scan", "{m}", "--data", "{d}", "--size-threshold", "1"),
     ValueError, r"^--size-threshold must be in \(0, 1\)\. Received: "
                 r"--size-threshold 1\.0$"),
    # (end of [commands])
]


def _param(case):
    """A catalogue entry as a pytest param named by its id."""
    marks = getattr(case, "marks", ())  # a pytest.param carries its marks
    name, *rest = getattr(case, "values", case)
    return pytest.param(*rest, id=name, marks=marks)


@pytest.mark.parametrize("call,error,match", [_param(c) for c in CASES])
def test_bad_input_gives_a_clear_error(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    message = str(info.value)
    # One line, in the house style: it names what it received.
    assert "Received" in message
    assert "\n" not in message and "\x1b" not in message


# Calls that are unusual but legal: each must give the stated result (an
# answer that is right, an abstention that says so, or a warning), never a
# plausible-looking wrong number. (id, call, check): check(result) asserts.
RESULTS = [
    # ---- certification ----
    # NaN where x[:, 0] > 0.9 (example 0): SmoothedClassifier, a served
    # model, abstains there and counts the 50 non-finite draws; the other
    # examples vote as usual.
    ("SmoothedClassifier-nan-on-one-input-abstains", lambda: SmoothedClassifier(
        keras.Model(i := keras.Input((6,)),
                    keras.ops.where(i[:, :1] > 0.9, NAN, M()(i))),
        sigma=0.1, n=50, seed=0)(np.where(
            np.arange(6) == 0, [[2.0], [0.0], [0.0], [0.0]], 0.5).astype(
                "float32")),
     lambda out: np.testing.assert_array_equal(np.concatenate([
         out["prediction"].numpy()[:1], out["nonfinite"].numpy(),
         out["counts"].numpy().sum(axis=1)]), [-1, 50, 0, 0, 0, 0, 50, 50, 50])),
    # float64 inputs are cast: the same draws and counts as float32.
    ("SmoothedClassifier-float64-inputs", lambda: SmoothedClassifier(
        M(), sigma=0.25, n=50, seed=0)(X.astype("float64")),
     lambda out: np.testing.assert_array_equal(
         out["counts"].numpy(), SmoothedClassifier(
             M(), sigma=0.25, n=50, seed=0)(X)["counts"].numpy())),
    # (end of [certification] results)
    # ---- serving ----
    ("load_served-float64-saved-model", lambda: serving_cases.served()(
        X.astype("float64")),
     lambda out: np.testing.assert_allclose(out, M()(X), atol=1e-5)),
    ("load_served-float64-tflite", lambda: serving_cases.served(".tflite")(
        X.astype("float64")),
     lambda out: np.testing.assert_allclose(out, M()(X), atol=1e-5)),
    ("load_served-float64-onnx", lambda: serving_cases.served(".onnx")(
        X.astype("float64")),
     lambda out: np.testing.assert_allclose(out, M()(X), atol=1e-5)),
    ("load_served-plain-tf-saved-model", lambda: models.load_served(
        serving_cases.plain_saved(M()))(X),
     lambda out: np.testing.assert_allclose(out, M()(X), atol=1e-5)),
    ("export_model-format-from-extension", lambda: models.export_model(
        M(), serving_cases.tmp("m.tflite")),
     serving_cases.assert_tflite_file),
    ("export_model-loaded-adversarial-tflite", lambda: models.load_served(
        models.export_model(serving_cases.loaded_adversarial(),
                            serving_cases.tmp("adv.tflite")))(X),
     lambda out: np.testing.assert_array_equal(out.shape, (4, 4))),
    # An eps scale of 0 (the start of a warm-up): the budget in use is 0.
    ("AdversarialModel-eps-scale-zero", lambda: (
        lambda m: (m.set_eps_scale(0.0), m.current_eps)[1])(
            models.AdversarialModel(
                M(), defense=defenses.PGDTraining(eps=0.3))),
     lambda eps: np.testing.assert_equal(eps, 0.0)),
    # (end of [serving] results)
    # ---- reports ----
    *[(f"{name}-nan-round-trip", lambda name=name: __import__(
        "tests.test_reporting", fromlist=["_"]).read_nan(name),
       lambda report, name=name: __import__(
           "tests.test_reporting", fromlist=["_"]).nan_check(name)(report))
      for name in ("audit", "certification", "poison_scan", "poisoning",
                   "robustness")],
    # (end of [reports] results)
    # ---- audit ----
    ("audit-clean-verdict-shows-no-rows", lambda: __import__(
        "tests.auditing.test_core", fromlist=["_"]).core._suspicious(
            __import__("tests.auditing.test_report", fromlist=["_"])
            .scan_report(False)),
     lambda rows: __import__("tests.auditing.test_core", fromlist=["_"])
     .assert_no_rows(rows)),
    ("audit-report-without-verdict-says-so", lambda: __import__(
        "tests.test_reporting", fromlist=["_"]).REPORTS["audit"]().to_html(),
     lambda page: __import__("tests.auditing.test_report", fromlist=["_"])
     .assert_says_no_verdict(page)),
    # (end of [audit] results)
    # ---- attacks ----
    ("fab-float16-unchanged-or-adversarial",
     lambda: __import__("tests.attacks.test_fab", fromlist=["_"])
     .float16_fab(),
     lambda r: __import__("tests.attacks.test_fab", fromlist=["_"])
     .unchanged_or_misclassified(r)),
    ("fab-minimal-misclassified-unchanged",
     lambda: __import__("tests.attacks.test_fab", fromlist=["_"])
     .misclassified_first("fab"),
     lambda r: __import__("tests.attacks.test_fab", fromlist=["_"])
     .misclassified_kept(r)),
    ("deepfool-minimal-misclassified-unchanged",
     lambda: __import__("tests.attacks.test_fab", fromlist=["_"])
     .misclassified_first("deepfool"),
     lambda r: __import__("tests.attacks.test_fab", fromlist=["_"])
     .misclassified_kept(r)),
    ("fab-targeted-numpy-bool", lambda: __import__(
        "keras_adv.attacks").attacks.fab(
            M(), X, targeted=np.bool_(True), steps=5, seed=0),
     lambda adv: np.testing.assert_array_equal(
         np.argmax(M()(adv), 1) != np.argmax(M()(X), 1),
         np.any(adv.numpy() != X, axis=1))),
    # (end of [attacks] results)
    # ---- poisoning ----
    # Classes with fewer rows than the test needs abstain, class by class,
    # and the verdict rests on the classes tested (here none): not poisoned.
    ("scan-small-classes-abstain", lambda: poisoning.scan_training_set(
        IMG(), IMAGES, np.arange(4), method="verdict"),
     lambda r: __import__("tests.poisoning.test_verdict",
                          fromlist=["_"]).assert_all_abstain(r, 10)),
    # (end of [poisoning] results)
    # ---- commands ----
    ("cmd-standard-plus-an-outside-attack", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "evaluate", "{m}", "--eps", "0.1", "--attacks", "standard,pgd"),
     lambda args: __import__("tests.commands.test_checks", fromlist=["_"])
     .assert_equal((args.attacks, args.seed), ("standard,pgd", 0))),
    ("cmd-data-name-says-the-split", lambda: __import__(
        "keras_adv.commands.common", fromlist=["_"]).data_name("mnist5k"),
     lambda name: __import__("tests.commands.test_checks", fromlist=["_"])
     .assert_equal(name, "mnist5k:test")),
    # An optional flag left out (audit without --sigma) passes its check.
    ("cmd-audit-without-sigma", lambda: __import__(
        "tests.commands.test_checks", fromlist=["_"]).check_argv(
        "audit", "{m}", "--eps", "0.1", "--out", "{r}/out"),
     lambda args: __import__("tests.commands.test_checks", fromlist=["_"])
     .assert_equal((args.sigma, args.n), (None, 1000))),
    # (end of [commands] results)
]


@pytest.mark.parametrize("call,check", [_param(c) for c in RESULTS])
def test_unusual_input_gives_the_stated_result(call, check):
    check(call())


def test_catalogue_is_large_and_ids_are_unique():
    ids = [_param(c).id for c in CASES + RESULTS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


# --------------------------------------------------------------------------
# Nothing is damaged: the caller's x, the model's weights
# --------------------------------------------------------------------------

ATTACKS = {
    "fgsm": lambda m, x, y: fgsm(m, x, y, eps=0.1),
    "pgd": lambda m, x, y: pgd(m, x, y, eps=0.1, steps=3, seed=0),
    "apgd": lambda m, x, y: apgd(m, x, y, eps=0.1, steps=3, seed=0),
    "square": lambda m, x, y: square(m, x, y, eps=0.1, queries=20, seed=0),
    "deepfool": lambda m, x, y: deepfool(m, x, y, steps=3),
}


def _stateful_model():
    """Batch norm (moving statistics) and dropout: calling it in training
    mode, as an attack must not, changes its weights."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(8),
        keras.layers.BatchNormalization(), keras.layers.Dropout(0.5),
        keras.layers.Dense(4)])


def _assert_same_weights(before, model):
    after = model.get_weights()
    assert len(before) == len(after)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_changes_neither_x_nor_weights(attack):
    model = _stateful_model()
    rng = np.random.RandomState(0)
    x = rng.uniform(0.2, 0.8, (4, 6)).astype("float32")
    x.flags.writeable = False  # an in-place write would raise
    x_before, weights = x.copy(), model.get_weights()
    adv = np.asarray(ATTACKS[attack](model, x, Y))
    assert adv.shape == x.shape and not np.array_equal(adv, x)
    np.testing.assert_array_equal(x, x_before)
    _assert_same_weights(weights, model)
    with pytest.raises(ValueError, match=r"Received: y with values in"):
        ATTACKS[attack](model, x, np.array([0, 1, 2, 9]))
    np.testing.assert_array_equal(x, x_before)
    _assert_same_weights(weights, model)


def test_evaluate_robustness_changes_neither_x_nor_weights():
    model = _stateful_model()
    x = np.random.RandomState(1).uniform(0.2, 0.8, (8, 6)).astype("float32")
    x_before, weights = x.copy(), model.get_weights()
    evaluate_robustness(model, x, np.arange(8) % 4, eps=0.1,
                        attacks=["fgsm"], checks=False, metrics=False)
    with pytest.raises(ValueError, match=r"unknown: 'cw'"):
        evaluate_robustness(model, x, np.arange(8) % 4, eps=0.1,
                            attacks=["fgsm", "cw"])
    np.testing.assert_array_equal(x, x_before)
    _assert_same_weights(weights, model)


def test_attack_after_input_of_another_rank():
    # Keras accepts (batch, 6, 1) for a (6,)-input model; the compiled attack
    # must not then be retraced with an input of unknown rank (it once was,
    # and the next (batch, 6) call failed inside Keras).
    model = linear_model(in_dim=6, classes=4)[0]
    for x in (X[:, :, None], X, X[:, :, None]):
        for attack in ("pgd", "apgd", "deepfool"):
            assert ATTACKS[attack](model, x, Y).shape == x.shape


@pytest.mark.parametrize(
    "x,y",
    [
        pytest.param(X, np.array([0, 1, 2, 9]), id="labels-out-of-range"),
        pytest.param(X[:, :5], Y, id="x-wrong-shape"),
        pytest.param(x_with(NAN), Y, id="x-nan"),
    ],
)
def test_failed_fit_leaves_weights_unchanged(x, y):
    base = linear_model(in_dim=6, classes=4)[0]
    model = models.AdversarialModel(
        base, defense=defenses.PGDTraining(eps=0.1, steps=2))
    model.compile("sgd",
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    weights = base.get_weights()
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as one
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    _assert_same_weights(weights, base)
