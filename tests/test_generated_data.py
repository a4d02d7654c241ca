"""keras_adv.datasets.pseudo_label and keras_adv.datasets.mix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import datasets
from tests.conftest import linear_model


def sources(n_real=50, n_gen=200, dim=4):
    real = (np.zeros((n_real, dim), "float32"), np.arange(n_real) % 3)
    gen = (np.ones((n_gen, dim), "float32"), np.full(n_gen, -1))
    return real, gen


@pytest.mark.parametrize("fraction, batch, n_real", [
    (0.3, 128, 38), (0.25, 8, 2), (0.5, 7, 4), (0.0, 8, 0), (1.0, 8, 8)])
def test_mix_real_rows_per_batch(fraction, batch, n_real):
    real, gen = sources(n_real=80, n_gen=300)
    ds = datasets.mix(real, gen, real_fraction=fraction, batch_size=batch,
                      seed=0)
    count = 0
    for x, y in ds:
        x, y = x.numpy(), y.numpy()
        assert x.shape == (batch, 4) and x.dtype == np.float32
        assert y.dtype == np.int64
        assert int((x[:, 0] == 0).sum()) == n_real  # real rows are zeros
        assert (y[:n_real] >= 0).all() and (y[n_real:] == -1).all()
        count += 1
    expected = max(80 // n_real if n_real else 0,
                   300 // (batch - n_real) if batch - n_real else 0)
    assert count == expected == len(ds)


def test_mix_repeats_the_smaller_source_and_covers_the_larger():
    real = (np.arange(10, dtype="float32")[:, None], np.arange(10) % 2)
    gen = (100 + np.arange(70, dtype="float32")[:, None], np.zeros(70, int))
    ds = datasets.mix(real, gen, real_fraction=0.3, batch_size=10, seed=1)
    xs = np.concatenate([x.numpy()[:, 0] for x, _ in ds])
    assert len(xs) == 100
    gen_seen = xs[xs >= 100]
    assert sorted(gen_seen.tolist()) == list(range(100, 170))  # once each
    real_seen = xs[xs < 100]
    assert len(real_seen) == 30 and set(real_seen.tolist()) == set(range(10))


def test_mix_accepts_datasets_and_pseudo_labels():
    real, gen = sources()
    real_ds = tf.data.Dataset.from_tensor_slices(real)
    gen_ds = tf.data.Dataset.from_tensor_slices(gen).filter(
        lambda x, y: True)  # unknown cardinality
    ds = datasets.mix(real_ds, gen_ds, real_fraction=0.5, batch_size=10)
    batches = list(ds)
    assert len(batches) == 40
    assert all(int((b[1].numpy() == -1).sum()) == 5 for b in batches)


def test_mix_bad_inputs():
    real, gen = sources()
    before = real[0].copy()
    with pytest.raises(ValueError, match="Received: real_fraction=1.5"):
        datasets.mix(real, gen, real_fraction=1.5)
    with pytest.raises(ValueError, match="Received: real_fraction=-0.1"):
        datasets.mix(real, gen, real_fraction=-0.1)
    with pytest.raises(ValueError, match=r"shape of real \(4,\)"):
        datasets.mix(real, (np.ones((200, 5), "float32"), gen[1]))
    with pytest.raises(ValueError, match="real must carry labels >= 0"):
        datasets.mix((real[0], -np.ones(50, int)), gen)
    with pytest.raises(ValueError, match="batch_size=0"):
        datasets.mix(real, gen, batch_size=0)
    with pytest.raises(ValueError, match="at least 38 examples"):
        datasets.mix((real[0][:10], real[1][:10]), gen)
    with pytest.raises(ValueError, match="Received: generated=ndarray"):
        datasets.mix(real, gen[0])
    np.testing.assert_array_equal(real[0], before)


def test_pseudo_labels_equal_teacher_argmax():
    teacher = linear_model(in_dim=6, classes=4)[0]
    x = np.random.default_rng(0).random((300, 6), np.float32)
    x_kept, y = datasets.pseudo_label(teacher, x, batch_size=64)
    np.testing.assert_array_equal(
        y, np.argmax(teacher.predict(x, verbose=0), axis=-1))
    np.testing.assert_array_equal(x_kept, x)
    assert y.dtype == np.int64


@pytest.mark.parametrize("softmax", [False, True])
def test_pseudo_label_threshold_drops_unconfident(softmax):
    teacher = linear_model(in_dim=6, classes=4, softmax=softmax)[0]
    x = np.random.default_rng(1).random((200, 6), np.float32)
    out = keras.ops.convert_to_numpy(teacher(x))
    probs = out if softmax else keras.ops.convert_to_numpy(
        keras.ops.softmax(out))
    threshold = float(np.median(probs.max(-1)))
    x_kept, y = datasets.pseudo_label(teacher, x, threshold=threshold)
    keep = probs.max(-1) >= threshold
    assert len(y) == keep.sum() and 90 <= len(y) <= 110
    np.testing.assert_array_equal(x_kept, x[keep])
    np.testing.assert_array_equal(y, probs.argmax(-1)[keep])


def test_pseudo_label_bad_inputs():
    teacher = linear_model(in_dim=6, classes=4)[0]
    x = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match="Received: threshold=1.5"):
        datasets.pseudo_label(teacher, x, threshold=1.5)
    with pytest.raises(ValueError, match="Received: x with shape"):
        datasets.pseudo_label(teacher, np.zeros((0, 6), np.float32))
    with pytest.raises(ValueError, match="batch_size=0"):
        datasets.pseudo_label(teacher, x, batch_size=0)
    with pytest.raises(ValueError, match="teacher must output"):
        datasets.pseudo_label(lambda v: np.zeros((len(v),)), x)
    # One column is a binary classifier's logit: classes 0 and 1.
    _, labels = datasets.pseudo_label(
        lambda v: np.where(v[:, :1] > 0.5, 2.0, -2.0), np.eye(4, 6, dtype="float32"))
    assert labels.tolist() == [1, 0, 0, 0]
