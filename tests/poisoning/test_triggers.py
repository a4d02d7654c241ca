"""Trigger geometry pixel by pixel, and the trigger checks."""

import numpy as np
import pytest

from keras_adv.poisoning import Trigger, apply_trigger


def test_patch_geometry_pixel_by_pixel():
    x = np.full((2, 10, 12, 3), 0.25, np.float32)
    before = x.copy()
    out = apply_trigger(x)
    expected = before.copy()
    expected[:, 5:9, 7:11, :] = 1.0  # 4x4, one pixel in from bottom-right
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(x, before)
    assert out.dtype == np.float32


def test_patch_on_mnist_shape():
    out = apply_trigger(np.zeros((1, 28, 28, 1)))
    assert out.sum() == 16.0
    assert out[0, 23:27, 23:27, 0].min() == 1.0
    assert out[0, 27, :, 0].sum() == 0.0 and out[0, :, 27, 0].sum() == 0.0


def test_blend_is_fixed_alpha_mix():
    x = np.random.RandomState(0).uniform(size=(3, 6, 6, 2)).astype("float32")
    t = Trigger.blend((6, 6, 2), seed=1234)  # the named "blend" pattern
    out = apply_trigger(x, trigger="blend")
    np.testing.assert_allclose(out, 0.8 * x + 0.2 * t.pattern, atol=1e-6)
    np.testing.assert_array_equal(
        Trigger.blend((6, 6, 2), seed=1234).pattern, t.pattern)
    assert t.pattern.min() >= 0 and t.pattern.max() <= 1


def test_user_trigger_with_mask_and_offset():
    pattern = np.array([[1.0, 0.5], [0.0, 1.0]])
    mask = np.array([[1.0, 0.5], [0.0, 1.0]])
    t = Trigger(pattern, mask, offset=(1, 2))
    x = np.full((1, 4, 5, 1), 0.2, np.float32)
    out = t.apply(x)[0, :, :, 0]
    expected = np.full((4, 5), 0.2, np.float32)
    expected[1, 2], expected[1, 3] = 1.0, 0.5 * 0.2 + 0.5 * 0.5
    expected[2, 3] = 1.0
    np.testing.assert_allclose(out, expected, atol=1e-7)


@pytest.mark.parametrize("trigger, match", [
    ("star", "trigger must be one of"),
    (Trigger(np.ones((5, 5)), np.ones((5, 5))), "trigger must fit"),
    (Trigger(np.ones((2, 2)), np.ones((2, 2)), (3, 0)), "trigger must fit"),
    (Trigger(np.ones((2, 2, 2)), np.ones((2, 2))), "pattern must have 1 or 3"),
])
def test_bad_triggers(trigger, match):
    x = np.zeros((1, 4, 4, 3))
    with pytest.raises(ValueError, match=match):
        apply_trigger(x, trigger=trigger)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pattern=np.ones((2, 2)), mask=np.ones((3, 2))), "mask must have"),
    (dict(pattern=np.ones((2, 2)), mask=np.full((2, 2), 1.5)), "mask must hold"),
    (dict(pattern=[[np.nan]], mask=[[1.0]]), "pattern must be a finite"),
    (dict(pattern=np.ones((1, 1)), mask=np.ones((1, 1)), offset=(-1, 0)),
     "offset must be"),
])
def test_bad_trigger_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trigger(**kwargs)


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 28, 28)), "x must be a real array of shape"),
    (np.zeros((0, 28, 28, 1)), "x must not be empty"),
    (np.full((1, 28, 28, 1), np.inf), "x must be finite"),
])
def test_bad_images(x, match):
    with pytest.raises(ValueError, match=match):
        apply_trigger(x)


def test_patch_larger_than_image():
    with pytest.raises(ValueError, match="at least 5 pixels"):
        apply_trigger(np.zeros((1, 4, 4, 1)))
