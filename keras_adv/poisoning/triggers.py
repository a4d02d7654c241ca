"""Backdoor triggers: a pattern blended into images through a mask.

BadNets (Gu et al. 2017, "BadNets: Identifying Vulnerabilities in the Machine
Learning Model Supply Chain") stamps a small patch; Chen et al. 2017
("Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning")
blend a fixed random pattern over the whole image.
"""

import dataclasses
import numbers

import numpy as np

from keras_adv import validation

PATCH_SIZE = 4
BLEND_ALPHA = 0.2
BLEND_SEED = 1234
TRIGGERS = ("patch", "blend")


@dataclasses.dataclass(frozen=True, eq=False)
class Trigger:
    """A trigger: `x' = (1 - mask) * x + mask * pattern` on a window of x.

    Args:
        pattern: array `(h, w)` or `(h, w, c)`: the values written.
        mask: array of the same height and width (channels 1 or c), values
            in [0, 1]: 1 replaces the pixel, 0 keeps it, between blends.
        offset: `(row, col)` of the window's top-left corner in the image.

    Raises:
        ValueError: pattern or mask not finite, of different heights and
            widths, a mask outside [0, 1], or a negative offset. A trigger
            larger than the image or with other channels is refused when it
            is applied.

    Example:

    >>> t = Trigger(np.ones((2, 2)), np.ones((2, 2)), offset=(0, 0))
    >>> float(t.apply(np.zeros((1, 4, 4, 1)))[0, :, :, 0].sum())
    4.0
    """

    pattern: np.ndarray
    mask: np.ndarray
    offset: tuple = (0, 0)

    def __post_init__(self):
        pattern = _as_3d(self.pattern, "pattern")
        mask = _as_3d(self.mask, "mask")
        if pattern.shape[:2] != mask.shape[:2]:
            raise ValueError(
                "mask must have the height and width of pattern "
                f"{pattern.shape[:2]}. Received: mask of shape {mask.shape}"
            )
        if mask.min() < 0 or mask.max() > 1:
            raise ValueError("mask must hold values in [0, 1]. Received: mask "
                             f"in [{mask.min():g}, {mask.max():g}]")
        off = self.offset
        ok = (isinstance(off, (tuple, list)) and len(off) == 2 and all(
            isinstance(o, numbers.Integral) and o >= 0 for o in off))
        if not ok:
            raise ValueError("offset must be two integers >= 0 (row, col). "
                             f"Received: offset={validation.short(off)}")
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "offset", (int(off[0]), int(off[1])))

    @classmethod
    def patch(cls, image_shape, *, size=PATCH_SIZE, value=1.0, margin=1):
        """The BadNets square: `size` x `size` pixels set to `value` in every
        channel, `margin` pixels in from the bottom-right corner.

        Example: `Trigger.patch((28, 28, 1)).offset` is `(23, 23)`.
        """
        h, w, c = _image_shape(image_shape)
        row, col = h - margin - size, w - margin - size
        if row < 0 or col < 0:
            raise ValueError(
                f"x must be at least {size + margin} pixels high and wide for "
                f"the patch trigger. Received: images of shape {(h, w, c)}"
            )
        pattern = np.full((size, size, c), value, np.float32)
        return cls(pattern, np.ones((size, size, 1), np.float32), (row, col))

    @classmethod
    def blend(cls, image_shape, *, alpha=BLEND_ALPHA, seed=None):
        """Chen et al.'s blended trigger: a uniform-random pattern over the
        whole image, mixed in with weight `alpha`. `seed` draws the pattern
        (`None`: NumPy's global generator); the named trigger `"blend"` is
        the pattern of seed 1234 (`BLEND_SEED`), the same in every call.

        Example: `Trigger.blend((28, 28, 1), seed=0).mask.max()` is `0.2`.
        """
        h, w, c = _image_shape(image_shape)
        seed = validation.check_seed(seed)
        # An integer seed keeps NumPy's RandomState stream, so that seed 1234
        # is the pattern the named trigger has always had.
        rng = (validation.numpy_rng(None) if seed is None
               else np.random.RandomState(seed))
        pattern = rng.uniform(0.0, 1.0, size=(h, w, c)).astype(np.float32)
        return cls(pattern, np.full((h, w, 1), alpha, np.float32), (0, 0))

    def apply(self, x, *, clip="auto"):
        """The triggered copy of the images `x` `(n, H, W, C)`; x unchanged.

        The pattern's values are fractions of the data box `clip` `(min,
        max)` (`"auto"`: `(0, 255)` for integer images, `(0, 1)` for
        floating ones): 1.0 writes `max`, 0.0 writes `min`. The result has
        x's dtype (integer images are rounded).

        Example: `Trigger.patch((28, 28, 1)).apply(x_test)`.
        """
        x = validation.check_images(x)
        self.check_fits(x.shape[1:])
        lo, hi = validation.data_box(x, clip)
        out = np.array(x, dtype=np.result_type(x.dtype, np.float32), copy=True)
        r, c = self.offset
        h, w = self.mask.shape[:2]
        window = out[:, r:r + h, c:c + w, :]
        out[:, r:r + h, c:c + w, :] = (1 - self.mask) * window + (
            self.mask * (lo + (hi - lo) * self.pattern))
        if not np.issubdtype(x.dtype, np.floating):
            out = np.clip(np.rint(out), lo, hi)
        return out.astype(x.dtype)

    def check_fits(self, image_shape):
        """Raises `ValueError` unless the trigger fits images of
        `image_shape` `(H, W, C)`. Example: `t.check_fits((28, 28, 1))`."""
        h, w, c = image_shape
        ph, pw, pc = self.pattern.shape
        r, col = self.offset
        if r + ph > h or col + pw > w:
            raise ValueError(
                f"trigger must fit inside the image {(h, w)}. Received: "
                f"trigger of size {(ph, pw)} at offset {self.offset}"
            )
        for name, arr in (("pattern", self.pattern), ("mask", self.mask)):
            if arr.shape[2] not in (1, c):
                raise ValueError(
                    f"trigger {name} must have 1 or {c} channels like the "
                    f"images. Received: {name} of shape {arr.shape}"
                )


def resolve(trigger, image_shape):
    """A `Trigger` from `"patch"`, `"blend"` or a `Trigger`, checked against
    `image_shape`. Example: `resolve("patch", (28, 28, 1))`."""
    if isinstance(trigger, Trigger):
        trigger.check_fits(tuple(image_shape))
        return trigger
    if trigger == "patch":
        return Trigger.patch(image_shape)
    if trigger == "blend":
        return Trigger.blend(image_shape, seed=BLEND_SEED)
    raise ValueError(
        f"trigger must be one of {TRIGGERS} or a Trigger. Received: "
        f"trigger={validation.short(trigger)}"
    )


def apply_trigger(x, *, trigger="patch", clip="auto"):
    """Stamps a backdoor trigger on images (for example test images).

    `"patch"` is the BadNets square (Gu et al. 2017): 4x4 pixels at the
    maximum of the data box (1.0 in [0, 1], 255 for uint8) in every channel,
    one pixel in from the bottom-right corner. `"blend"` is Chen et al.
    2017's blended pattern: a fixed uniform-random image (seed 1234) mixed
    in with alpha 0.2. A `Trigger` gives any pattern, mask and position.

    Args:
        x: images `(n, H, W, C)`.
        trigger: `"patch"`, `"blend"` or a `Trigger`.
        clip: the data box `(min, max)`, or `"auto"`: `(0, 255)` for
            integer images, `(0, 1)` for floating ones. `x` must lie in it;
            the trigger's values are fractions of it.

    Returns:
        A new array of x's dtype with the trigger applied; `x` is not
        modified.

    Raises:
        ValueError: `x` is not a non-empty finite `(n, H, W, C)` array or
            lies outside the box, the trigger is unknown, larger than the
            image or of other channels.

    Example:

    >>> xt = apply_trigger(np.zeros((1, 28, 28, 1)))
    >>> float(xt[0, 23:27, 23:27, 0].min()), float(xt.sum())
    (1.0, 16.0)
    """
    x = validation.check_images(x, clip=clip)
    return resolve(trigger, x.shape[1:]).apply(x, clip=clip)


def _as_3d(value, name):
    try:
        arr = np.array(value, dtype=np.float32, copy=True)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers. Received: "
                         f"{name}={validation.short(value)}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} must be a finite, non-empty array (h, w) or (h, w, c). "
            f"Received: {name} of shape {arr.shape}"
        )
    return arr


def _image_shape(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError("image_shape must be (height, width, channels). "
                         f"Received: image_shape={shape}")
    return shape
