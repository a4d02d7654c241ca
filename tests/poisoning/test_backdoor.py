"""BadNets backdoor and label flipping: exact counts, indices, labels, inputs
left unchanged, and every bad input."""

import numpy as np
import pytest

from keras_adv.poisoning import Trigger, apply_trigger, backdoor, label_flip


def data(n=200, k=10, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(size=(n, 8, 8, 1)).astype("float32")
    y = np.arange(n) % k
    return x, y.astype("int64")


@pytest.mark.parametrize("rate, count", [(0.0, 0), (0.05, 10), (0.1, 20),
                                         (0.0125, 2), (0.5, 100)])
def test_rate_gives_exact_count(rate, count):
    x, y = data()
    p = backdoor(x, y, target=0, rate=rate, seed=0)
    assert len(p.index) == count == round(rate * len(x))
    assert p.index.dtype == np.int64
    assert np.all(np.diff(p.index) > 0)


def test_poisoned_rows_and_only_them():
    x, y = data()
    x0, y0 = x.copy(), y.copy()
    p = backdoor(x, y, target=3, rate=0.1, seed=1)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert np.all(y0[p.index] != 3)
    assert np.all(p.y[p.index] == 3)
    np.testing.assert_array_equal(p.x[p.index], apply_trigger(x0[p.index]))
    rest = np.setdiff1d(np.arange(len(x)), p.index)
    np.testing.assert_array_equal(p.x[rest], x0[rest])
    np.testing.assert_array_equal(p.y[rest], y0[rest])


def test_seed_reproducible_and_global_generator():
    x, y = data()
    a = backdoor(x, y, target=0, rate=0.1, seed=5)
    b = backdoor(x, y, target=0, rate=0.1, seed=5)
    np.testing.assert_array_equal(a.index, b.index)
    np.random.seed(3)
    c = backdoor(x, y, target=0, rate=0.1)
    np.random.seed(3)
    d = backdoor(x, y, target=0, rate=0.1)
    np.testing.assert_array_equal(c.index, d.index)


def test_source_class_and_one_hot_labels():
    x, y = data()
    onehot = np.eye(10, dtype="float32")[y]
    p = backdoor(x, onehot, target=1, rate=0.05, source=7, seed=0,
                 trigger="blend")
    assert np.all(y[p.index] == 7) and len(p.index) == 10
    assert p.y.shape == onehot.shape and p.y.dtype == np.float32
    np.testing.assert_array_equal(np.argmax(p.y[p.index], axis=1), 1)
    assert np.all(p.y.sum(axis=1) == 1)


def test_column_labels_keep_shape():
    x, y = data()
    p = backdoor(x, y[:, None], target=2, rate=0.05, seed=0)
    assert p.y.shape == (200, 1) and np.all(p.y[p.index, 0] == 2)


def test_user_trigger():
    x, y = data()
    t = Trigger(np.zeros((2, 2)), np.ones((2, 2)), offset=(0, 0))
    p = backdoor(x, y, target=0, rate=0.05, seed=0, trigger=t)
    assert np.all(p.x[p.index, :2, :2] == 0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=1.5), r"rate must be a number in \[0, 1\]. Received: rate=1.5"),
    (dict(rate=-0.1), "Received: rate=-0.1"),
    (dict(rate=0.95), "only 180 rows can be poisoned. Received: rate=0.95"),
    (dict(target=10), r"target must be a class in \[0, 10\). Received: "
     "target=10"),
    (dict(target=-1), "Received: target=-1"),
    (dict(source=12), "Received: source=12"),
    (dict(source=0), "source must differ from target"),
    (dict(trigger="square"), "Received: trigger='square'"),
    (dict(trigger=Trigger(np.ones((9, 9)), np.ones((9, 9)))),
     "trigger must fit"),
    (dict(seed=-2), "Received: seed=-2"),
])
def test_bad_inputs(kwargs, match):
    x, y = data()
    x0, y0 = x.copy(), y.copy()
    args = dict(target=0, rate=0.05)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        backdoor(x, y, **args)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_length_mismatch_and_empty_source():
    x, y = data()
    with pytest.raises(ValueError, match="y must have one label per image"):
        backdoor(x, y[:-1], target=0, rate=0.1)
    with pytest.raises(ValueError, match="source=5 .no rows"):
        backdoor(x, y % 5, target=0, rate=0.1, source=5, num_classes=10)
    with pytest.raises(ValueError, match="x must not be empty"):
        backdoor(x[:0], y[:0], target=0, rate=0.1)


def test_label_flip_changes_exactly_the_index():
    y = np.arange(100) % 4
    y0 = y.copy()
    p = label_flip(y, rate=0.2, num_classes=4, seed=0)
    np.testing.assert_array_equal(y, y0)
    assert p.x is None and len(p.index) == 20
    changed = np.flatnonzero(p.y != y0)
    np.testing.assert_array_equal(changed, p.index)
    assert p.y.min() >= 0 and p.y.max() <= 3


def test_label_flip_one_hot_and_bad_input():
    y = np.eye(3)[np.arange(30) % 3]
    p = label_flip(y, rate=1.0, num_classes=3, seed=0)
    assert np.all(np.argmax(p.y, 1) != np.argmax(y, 1))
    with pytest.raises(ValueError, match="Received: rate=2"):
        label_flip(y, rate=2, num_classes=3)
    with pytest.raises(ValueError, match="Received: num_classes=1"):
        label_flip(np.zeros(4, int), rate=0.5, num_classes=1)
    with pytest.raises(ValueError, match="y must be < num_classes=2"):
        label_flip(np.arange(4), rate=0.5, num_classes=2)


def test_uint8_images_get_the_trigger_at_255_and_stay_uint8():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 200, size=(20, 28, 28, 1)).astype("uint8")
    y = np.arange(20) % 2
    p = backdoor(x, y, target=0, rate=0.25, seed=0)
    assert p.x.dtype == np.uint8 and len(p.index) == 5
    assert np.all(p.x[p.index, 23:27, 23:27, :] == 255)
    rest = np.setdiff1d(np.arange(20), p.index)
    np.testing.assert_array_equal(p.x[rest], x[rest])
    # The same images as floats in [0, 1]: the same rows, the patch at 1.0.
    q = backdoor(x / 255.0, y, target=0, rate=0.25, seed=0)
    np.testing.assert_array_equal(q.index, p.index)
    np.testing.assert_allclose(q.x * 255, p.x, atol=0.5)
    # A blend in uint8 rounds to the nearest integer of the float blend.
    t = apply_trigger(x[:2], trigger="blend")
    assert t.dtype == np.uint8
    np.testing.assert_allclose(
        t, apply_trigger(x[:2] / 255.0, trigger="blend") * 255,
        atol=0.5 + 1e-4)
    # An explicit box wins over the dtype.
    u = apply_trigger(x[:1], trigger="patch", clip=(0, 200))
    assert int(u[0, 24, 24, 0]) == 200
