"""Sample grids and the GANMonitor callback."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.generative import DCGAN, GANMonitor, image_grid, save_image_grid


def test_image_grid_layout():
    x = np.zeros((5, 4, 3, 1), np.float32)
    x[1] = 1.0
    grid = image_grid(x, cols=3)
    assert grid.shape == (2 * 6 + 2, 3 * 5 + 2, 1) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 128  # grey padding
    assert (grid[2:6, 7:10] == 255).all()  # the second tile, white
    assert (grid[2:6, 2:5] == 0).all()


def test_save_image_grid_writes_a_png(tmp_path):
    x = np.random.default_rng(0).random((4, 8, 8, 3), np.float32)
    path = save_image_grid(str(tmp_path / "a" / "grid.png"), x, scale=3)
    decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
    assert decoded.shape == (3 * 22, 3 * 22, 3)
    np.testing.assert_array_equal(decoded[::3, ::3], image_grid(x))


def test_monitor_writes_grids_every_epochs(tmp_path):
    gan = DCGAN((8, 8, 1), latent_dim=4, width=4, seed=0)
    gan.compile()
    monitor = GANMonitor(str(tmp_path / "epoch_{epoch}.png"), every=2,
                         num_images=9, seed=0)
    x = np.random.default_rng(0).random((8, 8, 8, 1), np.float32)
    gan.fit(x, batch_size=8, epochs=4, verbose=0, callbacks=[monitor])
    assert [p.rsplit("/", 1)[1] for p in monitor.written] == [
        "epoch_2.png", "epoch_4.png"]
    grid = tf.io.decode_png(tf.io.read_file(monitor.written[1])).numpy()
    expected = image_grid(gan.generate(9, seed=0))
    np.testing.assert_array_equal(grid[::2, ::2], expected)


def test_conditional_grid_has_a_column_per_class(tmp_path):
    gan = DCGAN((8, 8, 1), latent_dim=4, num_classes=3, width=4, seed=0)
    monitor = GANMonitor(str(tmp_path / "g.png"), num_images=6)
    monitor.set_model(gan)
    monitor.on_epoch_end(0)
    grid = tf.io.decode_png(tf.io.read_file(str(tmp_path / "g.png")))
    assert grid.shape == (2 * (2 * 10 + 2), 2 * (3 * 10 + 2), 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(path=""), "path=''"),
    (dict(path="x_{step}.png"), "{epoch}"),
    (dict(path="x.png", every=0), "every=0"),
    (dict(path="x.png", num_images=0), "num_images=0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{")):
        GANMonitor(**kwargs)
