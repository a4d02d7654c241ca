"""The ascent primitive: exact steps, tracing that does not grow with steps,
and the non-finite-model guard of every attack."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import (
    apgd,
    ascend,
    ascent,
    ce_ascent,
    deepfool,
    fgsm,
    objective_ascent,
    pgd,
    project_step,
    smooth_pgd,
    square,
)


def _sum(z):
    return tf.reduce_sum(z, axis=1)


def test_ascend_linear_objective_reaches_corner():
    # Objective sum(z): the gradient is all ones, each L-inf step adds 0.2,
    # the ball stops it at 0.5.
    adv = ascend(_sum, tf.zeros((2, 3)), eps=0.5, step_size=0.2, steps=2,
                 norm="linf", clip=None)
    np.testing.assert_allclose(adv.numpy(), np.full((2, 3), 0.4), atol=1e-7)
    adv = ascend(_sum, tf.zeros((2, 3)), eps=0.5, step_size=0.2, steps=3,
                 norm="linf", clip=None)
    np.testing.assert_allclose(adv.numpy(), np.full((2, 3), 0.5), atol=1e-7)


def test_ascend_l2_step_and_projection():
    # L2: each step moves 0.3 along (1, 1)/sqrt(2); eps 0.5 caps the norm.
    adv = ascend(_sum, tf.zeros((1, 2)), eps=0.5, step_size=0.3, steps=1,
                 norm="l2", clip=None).numpy()
    np.testing.assert_allclose(adv, [[0.3 / np.sqrt(2)] * 2], rtol=1e-5)
    adv = ascend(_sum, tf.zeros((1, 2)), eps=0.5, step_size=0.3, steps=4,
                 norm="l2", clip=None).numpy()
    np.testing.assert_allclose(np.linalg.norm(adv), 0.5, rtol=1e-5)


def test_ascend_clip_box_and_start():
    start = tf.fill((1, 2), 0.9)
    adv = ascend(_sum, tf.fill((1, 2), 0.8), start=start, eps=0.5, step_size=0.2,
                 steps=1, norm="linf", clip=(0.0, 1.0)).numpy()
    np.testing.assert_allclose(adv, [[1.0, 1.0]])
    # steps=0 returns the start.
    adv = ascend(_sum, tf.zeros((1, 2)), start=start * 0.1, eps=0.5, step_size=0.2,
                 steps=0, norm="linf", clip=None).numpy()
    np.testing.assert_allclose(adv, [[0.09, 0.09]], rtol=1e-6)


def test_ascend_momentum_is_mim():
    # Gradient (1, 3): ||g||1 = 4, velocity after two steps = 0.5*g/4 + g/4.
    def obj(z):
        return z[:, 0] + 3.0 * z[:, 1]

    adv = ascend(obj, tf.zeros((1, 2)), eps=10.0, step_size=1.0, steps=2,
                 norm="l2", clip=None, momentum=0.5).numpy()
    unit = np.array([1.0, 3.0]) / np.sqrt(10.0)
    np.testing.assert_allclose(adv, [2 * unit], rtol=1e-5)


def test_project_step_is_free_at_update():
    delta = tf.constant([[0.2, -0.3]])
    grad = tf.constant([[1.0, -2.0]])
    out = project_step(delta, grad, eps=0.3, step_size=0.3, norm="linf")
    np.testing.assert_allclose(out.numpy(), [[0.3, -0.3]])


def test_tracing_does_not_grow_with_steps():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x0 = tf.random.uniform((2, 4))
    y = tf.constant([0, 1])
    sizes = []
    for steps in (2, 50):
        fn = tf.function(lambda x, s=steps: ce_ascent(
            model, x, y, eps=0.1, step_size=0.01, steps=s, norm="linf",
            clip=(0.0, 1.0), seed=0))
        graph = fn.get_concrete_function(x0).graph
        sizes.append(len(graph.as_graph_def().node))
    assert sizes[0] == sizes[1]


def test_ce_ascent_matches_pgd():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = np.random.RandomState(0).rand(6, 4).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    ours = ce_ascent(model, x, y, eps=0.1, step_size=0.02, steps=5,
                     norm="linf", clip=(0.0, 1.0), random_start=False)
    ref = pgd(model, x, y, eps=0.1, steps=5, step_size=0.02,
              random_start=False)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-6)


def test_objective_ascent_raises_objective():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = np.random.RandomState(1).rand(6, 4).astype("float32")

    def objective(logits):
        return logits[:, 0]

    adv = objective_ascent(model, x, objective, eps=0.1, step_size=0.05,
                           steps=4, norm="linf", clip=None).numpy()
    before, after = model(x)[:, 0].numpy(), model(adv)[:, 0].numpy()
    assert np.all(after > before)
    assert np.abs(adv - x).max() <= 0.1 + 1e-6


# --------------------------------------------------------------------------
# Never a silent NaN
# --------------------------------------------------------------------------


def _nan_model():
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(4)])
    kernel = np.zeros((36, 4), "float32")
    kernel[0, 0] = np.nan
    model.layers[-1].kernel.assign(kernel)
    return model


def _data():
    rng = np.random.RandomState(0)
    return rng.rand(3, 6, 6, 1).astype("float32"), np.array([0, 1, 2])


ATTACKS = {
    "pgd": lambda m, x, y: pgd(m, x, y, eps=0.1, steps=3),
    "pgd_restarts": lambda m, x, y: pgd(m, x, y, eps=0.1, steps=3,
                                        restarts=2),
    "fgsm": lambda m, x, y: fgsm(m, x, y, eps=0.1),
    "apgd": lambda m, x, y: apgd(m, x, y, eps=0.1, steps=5),
    "square": lambda m, x, y: square(m, x, y, eps=0.1, queries=10),
    "deepfool": lambda m, x, y: deepfool(m, x, y, steps=3),
    "smooth_pgd": lambda m, x, y: smooth_pgd(m, x, y, sigma=0.25, eps=0.5,
                                             steps=2, seed=0),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_non_finite_model_raises(name):
    x, y = _data()
    x_before = x.copy()
    with pytest.raises(ValueError, match="^model gave non-finite"):
        ATTACKS[name](_nan_model(), x, y)
    np.testing.assert_array_equal(x, x_before)


def test_non_finite_gradient_raises():
    # Finite outputs, NaN input gradient: sqrt at 0 has an infinite slope.
    class Sqrt(keras.layers.Layer):
        def call(self, z):
            return tf.sqrt(z)

    model = keras.Sequential([keras.Input((4,)), Sqrt(),
                              keras.layers.Dense(3)])
    x = np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match="^model gave non-finite input grad"):
        pgd(model, x, np.array([0, 1]), eps=0.1, steps=2, random_start=False)


def test_non_finite_inside_tf_function_is_an_assertion():
    model = _nan_model()
    x, y = _data()

    @tf.function
    def attack(xb):
        return pgd(model, xb, y, eps=0.1, steps=2)

    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="model gave non-finite"):
        attack(tf.constant(x))


def test_check_finite_passes_finite_values():
    t = tf.constant([1.0, 2.0])
    assert ascent.check_finite(t, "outputs") is t


@pytest.mark.parametrize("by_sum", [True, False])
@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [-np.inf],
                                 [np.inf, -np.inf]])
def test_gradient_check_in_graph_finds_one_bad_entry(bad, by_sum):
    # In a graph an input gradient is checked through its sum (by_sum=True,
    # as the attacks do) or entry by entry: either way one NaN or inf entry
    # among 1024 (or +inf and -inf together) raises.
    check = tf.function(lambda t: ascent.check_finite(t, "input gradients",
                                                      by_sum=by_sum))
    good = np.full((4, 16, 16, 1), 0.5, "float32")
    np.testing.assert_array_equal(check(tf.constant(good)), good)
    g = good.copy()
    for k, value in enumerate(bad):
        g[k, 3 + k, 5, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="model gave non-finite input gradients"):
        check(tf.constant(g))
