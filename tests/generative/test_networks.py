"""The DCGAN networks (generative/networks.py): shapes, the architecture of
Radford et al., the rescaled tanh output and the conditional inputs."""

import keras
import numpy as np
import pytest

from keras_adv.generative import DCGAN
from keras_adv.generative.networks import build_discriminator, build_generator

SHAPE = (8, 8, 1)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (12, 8, 2)])
def test_networks_shapes(shape):
    gan = DCGAN(shape, latent_dim=5, width=4, seed=0)
    assert gan.generator.input_shape == (None, 5)
    assert gan.generator.output_shape == (None, *shape)
    assert gan.discriminator.input_shape == (None, *shape)
    assert gan.discriminator.output_shape == (None, 1)
    assert isinstance(gan.generator, keras.Model)


def test_architecture_follows_dcgan():
    gan = DCGAN((28, 28, 1), latent_dim=10, width=8, seed=0)
    g_types = [type(layer).__name__ for layer in gan.generator.layers]
    d_types = [type(layer).__name__ for layer in gan.discriminator.layers]
    # BN after the projection and the hidden transposed convolution only
    # (not on the output); ReLU in G; no pooling.
    assert g_types.count("BatchNormalization") == 2
    assert g_types.count("ReLU") == 2
    assert g_types[-2:] == ["Conv2DTranspose", "Rescaling"]
    assert gan.generator.layers[-2].activation.__name__ == "tanh"
    # D: no BN between the input and the first convolution; LeakyReLU(0.2).
    first_conv = d_types.index("Conv2D")
    assert "BatchNormalization" not in d_types[:first_conv + 2]
    assert d_types.count("BatchNormalization") == 1
    leaky = [la for la in gan.discriminator.layers
             if type(la).__name__ == "LeakyReLU"]
    assert len(leaky) == 2
    assert all(np.isclose(la.negative_slope, 0.2) for la in leaky)
    assert not any("Pool" in t for t in g_types + d_types)
    # N(0, 0.02) kernels.
    kernel = gan.generator.get_layer("project").kernel.numpy()
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002


def test_output_is_rescaled_tanh():
    gan = DCGAN(SHAPE, latent_dim=4, width=4, seed=0)
    z = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    pre = keras.Model(gan.generator.inputs,
                      gan.generator.get_layer("to_image").output)(z)
    out = gan.generator(z)
    np.testing.assert_allclose(out, (pre.numpy() + 1) / 2, atol=1e-6)


def test_conditional_networks_take_labels_beside_their_inputs():
    g = build_generator(SHAPE, 4, num_classes=3, width=4, seed=0)
    d = build_discriminator(SHAPE, num_classes=3, width=4, seed=0)
    z = np.zeros((2, 4), "float32")
    labels = np.array([0, 2], "int32")
    images = g([z, labels]).numpy()
    assert images.shape == (2, *SHAPE)
    assert d([images, labels]).shape == (2, 1)
    # Different labels, same latent vector: different images.
    assert not np.allclose(images[0], images[1])
