"""Clean-label backdoor on the session's trained CNN: labels unchanged, the
perturbation inside eps outside the trigger, the surrogate fooled."""

import numpy as np
import pytest

from keras_adv.poisoning import clean_label_backdoor
from tests.conftest import one_line_each_way


def test_clean_label_rows(mnist5k, trained_cnn):
    (x, y), _ = mnist5k
    x, y = x[:300], y[:300]
    x0, y0 = x.copy(), y.copy()
    p = clean_label_backdoor(trained_cnn, x, y, target=3, rate=0.5, eps=0.3,
                             steps=10, seed=0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p.y, y0)
    n_target = int(np.sum(y == 3))
    assert len(p.index) == round(0.5 * n_target)
    assert np.all(y[p.index] == 3)
    rest = np.setdiff1d(np.arange(len(x)), p.index)
    np.testing.assert_array_equal(p.x[rest], x0[rest])
    rows = p.x[p.index]
    assert np.all(rows[:, 23:27, 23:27, :] == 1.0)
    outside = np.ones((28, 28, 1), bool)
    outside[23:27, 23:27] = False
    diff = np.abs(rows - x0[p.index])[:, outside]
    assert diff.max() <= 0.3 + 1e-6 and diff.max() > 0.2
    # the surrogate no longer explains most perturbed rows by their label
    pred = np.argmax(trained_cnn.predict(rows, verbose=0), axis=1)
    assert np.mean(pred == 3) < 0.5


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=1.1), "Received: rate=1.1"),
    (dict(eps=0.0), "Received: eps=0.0"),
    (dict(target=10), "Received: target=10"),
    (dict(steps=0), "Received: steps=0"),
    (dict(trigger="x"), "Received: trigger='x'"),
])
def test_clean_label_bad_inputs(mnist5k, trained_cnn, kwargs, match):
    (x, y), _ = mnist5k
    args = dict(target=0, rate=0.1, eps=0.3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        clean_label_backdoor(trained_cnn, x[:50], y[:50], **args)
    with pytest.raises(ValueError, match="target=5 .no rows"):
        clean_label_backdoor(trained_cnn, x[:50], np.where(y[:50] == 5, 0,
                             y[:50]), target=5, rate=0.1, eps=0.3,)


def test_progress_counts_the_rows_on_stderr(capsys):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    x = np.random.RandomState(0).rand(20, 8, 8, 1).astype("float32")
    y = np.arange(20) % 2
    kwargs = dict(target=1, rate=0.5, eps=0.1, steps=2, batch_size=3, seed=0)
    quiet, shown = one_line_each_way(
        lambda progress: clean_label_backdoor(model, x, y, progress=progress,
                                              **kwargs),
        capsys, "clean_label_backdoor: perturbed 5/5 rows (")  # the end's line
    np.testing.assert_array_equal(quiet.x, shown.x)
