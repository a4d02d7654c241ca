"""Attacks on models with several inputs (`perturb=`) and on token models
(`perturb_layer=`): keras_adv/attacks/inputs.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import apgd, deepfool, fgsm, inputs, pgd, square
from tests.conftest import two_input_model

RNG = np.random.default_rng(0)
X = RNG.random((8, 4)).astype("float32")
M = RNG.random((8, 2)).astype("float32")
IDS = RNG.integers(0, 20, (8, 6)).astype("int32")


def token_model(sequential=False):
    keras.utils.set_random_seed(2)
    layers = [keras.layers.Embedding(20, 4, name="embedding"),
              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)]
    if sequential:
        return keras.Sequential([keras.Input((6,), dtype="int32")] + layers)
    ids = keras.Input((6,), dtype="int32")
    h = ids
    for layer in layers:
        h = layer(h)
    return keras.Model(ids, h)


def ce(model, x, y):
    logits = model(x, training=False)
    return float(tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)))


@pytest.mark.parametrize("perturb", ["image", 0, ["image"], [0]])
def test_pgd_changes_only_the_perturbed_input(perturb):
    model = two_input_model()
    adv = pgd(model, [X, M], eps=0.1, steps=5, seed=0, perturb=perturb)
    assert isinstance(adv, list) and len(adv) == 2
    assert np.array_equal(np.asarray(adv[1]), M)  # bit-identical
    delta = np.abs(np.asarray(adv[0]) - X)
    assert delta.max() <= 0.1 + 1e-6
    assert delta.max() > 0.09  # it moved to the boundary


def test_pgd_linf_ball_per_input_and_loss_rises():
    model = two_input_model()
    y = np.argmax(model([X, M]), -1)
    adv = pgd(model, (X, M), y, eps=0.05, steps=10, seed=0)
    assert isinstance(adv, tuple)
    for got, orig in zip(adv, (X, M)):
        d = np.abs(np.asarray(got) - orig)
        assert d.max() <= 0.05 + 1e-6 and d.max() > 0.04
        assert np.asarray(got).min() >= 0.0 and np.asarray(got).max() <= 1.0
    assert ce(model, list(adv), y) > ce(model, [X, M], y)


def test_pgd_l2_ball_per_input():
    model = two_input_model()
    adv = pgd(model, [X, M], eps=0.2, steps=10, seed=0, norm="l2",
              clip=None)
    for got, orig in zip(adv, (X, M)):
        norms = np.linalg.norm(np.asarray(got) - orig, axis=1)
        # Each input has its own budget: both reach it.
        assert norms.max() <= 0.2 + 1e-5
        assert norms.min() > 0.19


def test_pgd_dict_inputs_by_key():
    model = two_input_model(dict_inputs=True)
    x = {"image": X, "meta": M}
    adv = pgd(model, x, eps=0.1, steps=3, seed=0, perturb="meta")
    assert isinstance(adv, dict) and sorted(adv) == ["image", "meta"]
    assert np.array_equal(np.asarray(adv["image"]), X)
    assert np.abs(np.asarray(adv["meta"]) - M).max() <= 0.1 + 1e-6
    # Position 1 is the second key as given ("meta").
    by_pos = pgd(model, x, eps=0.1, steps=3, seed=0, perturb=1)
    np.testing.assert_array_equal(by_pos["meta"], adv["meta"])


def test_pgd_restarts_and_eot_keep_the_structure():
    model = two_input_model()
    adv = pgd(model, [X, M], eps=0.1, steps=3, seed=0, perturb="image",
              restarts=2, eot_samples=2)
    assert np.array_equal(np.asarray(adv[1]), M)
    assert np.abs(np.asarray(adv[0]) - X).max() <= 0.1 + 1e-6


def test_pgd_inside_tf_function():
    model = two_input_model()
    fn = tf.function(lambda a, b: pgd(model, [a, b], eps=0.1, steps=3,
                                      seed=0, perturb="image"))
    adv = fn(tf.constant(X), tf.constant(M))
    eager = pgd(model, [X, M], eps=0.1, steps=3, seed=0, perturb="image")
    np.testing.assert_allclose(adv[0], eager[0], atol=1e-6)


def test_fgsm_exact_step_on_perturbed_input():
    model = two_input_model()
    x = np.full((8, 4), 0.5, "float32")
    adv = fgsm(model, [x, M], eps=0.1, perturb="image")
    np.testing.assert_allclose(np.abs(np.asarray(adv[0]) - x), 0.1, atol=1e-6)
    assert np.array_equal(np.asarray(adv[1]), M)


@pytest.mark.parametrize("attack,kwargs", [
    (apgd, dict(eps=0.1, steps=5, seed=0)),
    (square, dict(eps=0.1, queries=20, seed=0)),
    (deepfool, dict(eps=0.1, clip=None)),
])
def test_single_input_attacks(attack, kwargs):
    model = two_input_model()
    adv = attack(model, [X, M], perturb="image", **kwargs)
    assert isinstance(adv, list)
    assert np.array_equal(np.asarray(adv[1]), M)
    assert np.abs(np.asarray(adv[0]) - X).max() <= 0.1 + 1e-6


def test_square_refuses_several_inputs():
    with pytest.raises(ValueError, match=r"square perturbs one input .* "
                                         r"Received: perturb=None, choosing "
                                         r"2 inputs"):
        square(two_input_model(), [X, M], eps=0.1, queries=5)


def test_unknown_input_names_the_valid_ones():
    model = two_input_model()
    with pytest.raises(ValueError, match=r"perturb must name inputs of the "
                       r"model: one of \['image', 'meta'\] or a position in "
                       r"\[0, 1\].*Received: perturb='img'"):
        pgd(model, [X, M], eps=0.1, perturb="img")
    with pytest.raises(ValueError, match=r"Received: perturb=\[0, 2\]"):
        pgd(model, [X, M], eps=0.1, perturb=[0, 2])


def test_integer_inputs_need_perturb_layer():
    model = token_model()
    message = (r"^Integer inputs \(such as token ids\) cannot be perturbed: "
               r"pass perturb_layer= with the name of the embedding layer, "
               r"e\.g\. perturb_layer='embedding'\. Received: x with dtype "
               r"int32$")
    with pytest.raises(ValueError, match=message):
        pgd(model, IDS, eps=0.1)
    ids_in = keras.Input((6,), dtype="int32", name="ids")
    meta_in = keras.Input((2,), name="meta")
    h = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(20, 4)(ids_in))
    two = keras.Model([ids_in, meta_in],
                      keras.layers.Dense(3)(keras.layers.Concatenate()(
                          [h, meta_in])))
    with pytest.raises(ValueError, match=r"pass perturb_layer=.*Received: "
                       r"perturb='ids' choosing input 'ids' of dtype int32"):
        pgd(two, [IDS, M], eps=0.1, perturb="ids")
    # The default skips the ids and perturbs the float input.
    adv = pgd(two, [IDS, M], eps=0.1, steps=2, seed=0)
    assert np.array_equal(np.asarray(adv[0]), IDS)


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturb_layer_on_token_model(sequential, norm):
    model = token_model(sequential)
    emb = model.get_layer("embedding")
    e0 = np.asarray(emb(IDS))
    y = np.argmax(model(IDS), -1)
    adv = pgd(model, IDS, y, eps=0.3, steps=10, seed=0, norm=norm,
              perturb_layer="embedding")
    adv = np.asarray(adv)
    assert adv.shape == (8, 6, 4)  # the layer output's shape
    delta = (adv - e0).reshape(8, -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta,
                                                                      axis=1)
    assert size.max() <= 0.3 + 1e-5 and size.min() > 0.25
    # The head sees the adversarial embeddings: a higher loss than clean.
    _, head, _ = inputs.split(model, "embedding")
    assert ce(head, [adv], y) > ce(head, [e0], y) + 1e-3


def test_perturb_layer_errors():
    model = token_model()
    with pytest.raises(ValueError, match=r"perturb_layer must be the name of "
                       r"a layer of the model.*'embedding'.*Received: "
                       r"perturb_layer='emb'"):
        pgd(model, IDS, eps=0.1, perturb_layer="emb")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.emb = keras.layers.Embedding(20, 4, name="embedding")
            self.out = keras.layers.Dense(3)

        def call(self, x):
            return self.out(keras.ops.mean(self.emb(x), axis=1))

    sub = Sub()
    sub(IDS)
    with pytest.raises(ValueError, match=r"needs a Functional or Sequential "
                       r"model.*Received: model of type Sub"):
        pgd(sub, IDS, eps=0.1, perturb_layer="embedding")
    with pytest.raises(ValueError, match=r"perturb and perturb_layer cannot "
                       r"be combined"):
        pgd(model, IDS, eps=0.1, perturb=0, perturb_layer="embedding")


def test_caller_arrays_are_not_mutated():
    x, m = X.copy(), M.copy()
    pgd(two_input_model(), [x, m], eps=0.1, steps=2, seed=0)
    assert np.array_equal(x, X) and np.array_equal(m, M)


def test_single_tensor_path_unchanged():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert inputs.view(model, X) is None
    a = pgd(model, X, eps=0.1, steps=3, seed=0)
    b = pgd(model, X, eps=0.1, steps=3, seed=0, perturb=0)
    np.testing.assert_array_equal(a, b)


def test_perturb_layer_with_another_input():
    # ids -> Embedding and a float input feeding the head: the head gets the
    # adversarial embeddings and the untouched metadata.
    ids_in = keras.Input((6,), dtype="int32", name="ids")
    meta_in = keras.Input((2,), name="meta")
    h = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(20, 4, name="embedding")(ids_in))
    model = keras.Model({"ids": ids_in, "meta": meta_in}, keras.layers.Dense(
        3)(keras.layers.Concatenate()([h, meta_in])))
    y = np.argmax(model({"ids": IDS, "meta": M}), -1)
    adv = np.asarray(pgd(model, {"ids": IDS, "meta": M}, y, eps=0.2,
                         steps=5, seed=0, perturb_layer="embedding"))
    e0 = np.asarray(model.get_layer("embedding")(IDS))
    assert adv.shape == e0.shape
    assert np.abs(adv - e0).max() <= 0.2 + 1e-6
    _, head, upstream = inputs.split(model, "embedding")
    assert upstream == (0,)  # "ids" is the first key in tf.nest order
    assert ce(head, [adv, M], y) > ce(head, [e0, M], y)
