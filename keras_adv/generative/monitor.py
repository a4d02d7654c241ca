"""Sample grids as PNG files: `image_grid`, `save_image_grid` and the
`GANMonitor` callback."""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_adv import reporting, validation

_PAD = 2  # pixels of grey between tiles


def image_grid(images, *, cols=None):
    """Tiles a batch of images in [0, 1] into one uint8 image.

    Args:
        images: `(n, height, width, channels)` with 1 or 3 channels, values
            in [0, 1], n >= 1.
        cols: tiles per row (`None`: `ceil(sqrt(n))`).

    Returns:
        A uint8 array `(rows * (height + 2) + 2, cols * (width + 2) + 2,
        channels)`, tiles separated by 2 grey pixels.

    Raises:
        ValueError: bad images or `cols`.

    Example:

    >>> image_grid(np.zeros((5, 4, 4, 1), "float32"), cols=5).shape
    (8, 32, 1)
    """
    x = validation.check_images(images, "images", clip=(0.0, 1.0)).astype(
        np.float32, copy=False)
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            "images must have 1 or 3 channels. Received: images with shape "
            f"{x.shape}"
        )
    n, h, w, c = x.shape
    cols = (math.ceil(math.sqrt(n)) if cols is None
            else validation.check_int("cols", cols, 1))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + _PAD) + _PAD, cols * (w + _PAD) + _PAD, c),
                   0.5, np.float32)
    for i in range(n):
        top = _PAD + (i // cols) * (h + _PAD)
        left = _PAD + (i % cols) * (w + _PAD)
        grid[top:top + h, left:left + w] = x[i]
    return np.round(grid * 255).astype(np.uint8)


def save_image_grid(path, images, *, cols=None, scale=2):
    """Writes `image_grid(images)` as a PNG file (`tf.io.encode_png`).

    Args:
        path: the PNG file to write (its directory is created).
        images: see `image_grid`.
        cols: see `image_grid`.
        scale: integer upscaling of the grid (nearest neighbour, >= 1), so
            that 28x28 samples are visible in a browser.

    Returns:
        `path`.

    Raises:
        ValueError: see `image_grid`; a bad `scale`.

    Example: `save_image_grid("samples.png", gan.generate(64, seed=0))`.
    """
    scale = validation.check_int("scale", scale, 1)
    grid = image_grid(images, cols=cols)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    reporting.write_text(path, tf.io.encode_png(grid).numpy())
    return path


class GANMonitor(keras.callbacks.Callback):
    """Writes a PNG grid of generator samples every `every` epochs.

    The samples come from `model.generate(num_images, seed=seed)`, so every grid
    shows the same latent vectors and the grids of successive epochs can
    be compared image by image. For a class-conditional `DCGAN` the labels
    are `arange(num_images) % num_classes` and the grid has `num_classes` columns:
    one class per column.

    Args:
        path: the PNG file; may contain `{epoch}` (1-based), e.g.
            `"samples/epoch_{epoch:03d}.png"`; without it each grid
            overwrites the previous one.
        every: write after every `every`-th epoch (>= 1).
        num_images: samples per grid (>= 1).
        seed: the latent-vector seed (>= 0); `None` draws one from NumPy's
            global generator when the monitor is made (then fixed).

    Raises:
        ValueError: bad `path`, `every`, `num_images` or `seed`; a model without
            `generate` (on `fit`).

    Example:

    >>> monitor = GANMonitor("samples/epoch_{epoch}.png", every=5,
    ...                      num_images=16)
    >>> monitor.path_for(10)
    'samples/epoch_10.png'
    """

    def __init__(self, path, *, every=1, num_images=64, seed=None):
        super().__init__()
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValueError(
                f"path must be a non-empty file path. Received: path={path!r}"
            )
        try:
            os.fspath(path).format(epoch=1)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                "path may only contain the field {epoch}. Received: "
                f"path={path!r}"
            ) from e
        self.path = os.fspath(path)
        self.every = validation.check_int("every", every, 1)
        self.num_images = validation.check_int("num_images", num_images, 1)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = validation.check_int("seed", seed, 0)
        self.written = []

    def path_for(self, epoch):
        """The file written after `epoch` (1-based)."""
        return self.path.format(epoch=epoch)

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "generate", None)):
            raise ValueError(
                "GANMonitor needs a model with a generate(n, seed=...) method "
                f"(a DCGAN). Received: model={type(self.model).__name__}"
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images = self.model.generate(self.num_images, seed=self.seed)
        classes = getattr(self.model, "num_classes", None)
        path = self.path_for(epoch + 1)
        save_image_grid(path, images, cols=classes)
        self.written.append(path)
