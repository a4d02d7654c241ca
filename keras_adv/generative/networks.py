"""The DCGAN generator and discriminator as plain functional Keras models.

Radford, Metz and Chintala, "Unsupervised representation learning with deep
convolutional generative adversarial networks", ICLR 2016: strided
convolutions instead of pooling, no fully connected hidden layers beyond the
generator's projection of the latent vector, batch normalisation everywhere
except the generator output and the discriminator input, ReLU in the
generator, LeakyReLU(0.2) in the discriminator, weights drawn from
N(0, 0.02).
"""

import keras

KERNEL = 5  # the authors' 5x5 kernels
LEAKY_SLOPE = 0.2


def _init(seed, index):
    """N(0, 0.02) weights; a distinct seed per layer when `seed` is given."""
    return keras.initializers.RandomNormal(
        0.0, 0.02, seed=None if seed is None else seed + index)


def _bn():
    """Batch normalisation with gamma from N(1, 0.02), as the authors."""
    return keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def build_generator(image_shape, latent_dim, *, num_classes=None, width=64,
                    seed=None):
    """The DCGAN generator: latent vector (and label) to an image in [0, 1].

    Dense projection of the latent vector to `(h/4, w/4, 2*width)`, BN,
    ReLU; a 5x5 stride-2 transposed convolution to `(h/2, w/2, width)`, BN,
    ReLU; a 5x5 stride-2 transposed convolution to `(h, w, channels)`, tanh,
    rescaled to [0, 1] by `(tanh + 1) / 2` (no BN on the output). In the
    class-conditional form the label (an integer input `"labels"`) is
    one-hot encoded and concatenated to the latent vector.

    Args:
        image_shape: `(height, width, channels)`, sides divisible by 4.
        latent_dim: size of the latent vector.
        num_classes: `None` (unconditional) or the number of classes.
        width: filters of the last hidden layer (the first has twice as many).
        seed: weight initialisation seed (`None`: random).

    Returns:
        A `keras.Model` named `"generator"`: input `"latent"` (and
        `"labels"`), output images of `image_shape`.

    Example:

    >>> g = build_generator((28, 28, 1), 16, width=8, seed=0)
    >>> g.output_shape
    (None, 28, 28, 1)
    """
    h, w, c = image_shape
    latent = keras.Input((latent_dim,), name="latent")
    inputs, z = [latent], latent
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        onehot = keras.layers.CategoryEncoding(
            num_classes, output_mode="one_hot", name="label_onehot")(labels)
        z = keras.layers.Concatenate(name="latent_and_label")([latent, onehot])
    x = keras.layers.Dense(h // 4 * w // 4 * 2 * width, use_bias=False,
                           kernel_initializer=_init(seed, 0),
                           name="project")(z)
    x = keras.layers.Reshape((h // 4, w // 4, 2 * width))(x)
    x = keras.layers.ReLU()(_bn()(x))
    x = keras.layers.Conv2DTranspose(
        width, KERNEL, strides=2, padding="same", use_bias=False,
        kernel_initializer=_init(seed, 1))(x)
    x = keras.layers.ReLU()(_bn()(x))
    x = keras.layers.Conv2DTranspose(
        c, KERNEL, strides=2, padding="same", activation="tanh",
        kernel_initializer=_init(seed, 2), name="to_image")(x)
    images = keras.layers.Rescaling(0.5, offset=0.5, name="to_unit_box")(x)
    return keras.Model(inputs if num_classes is not None else latent, images,
                       name="generator")


def build_discriminator(image_shape, *, num_classes=None, width=64,
                        seed=None):
    """The DCGAN discriminator: an image (and label) to one real/fake logit.

    The image in [0, 1] is mapped to [-1, 1] (the range the authors'
    discriminator sees); a 5x5 stride-2 convolution to `width` filters and
    LeakyReLU(0.2) (no BN on the input layer); a 5x5 stride-2 convolution
    to `2*width` filters, BN, LeakyReLU(0.2); flatten; one logit. In the
    class-conditional form the one-hot label is tiled over the image and
    concatenated as `num_classes` extra channels.

    Args:
        image_shape: `(height, width, channels)`, sides divisible by 4.
        num_classes: `None` (unconditional) or the number of classes.
        width: filters of the first convolution.
        seed: weight initialisation seed (`None`: random).

    Returns:
        A `keras.Model` named `"discriminator"`: input `"images"` (and
        `"labels"`), output logits of shape `(None, 1)`.

    Example:

    >>> d = build_discriminator((32, 32, 3), width=8, seed=0)
    >>> d.output_shape
    (None, 1)
    """
    h, w, _ = image_shape
    images = keras.Input(image_shape, name="images")
    inputs = [images]
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_tanh_box")(images)
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        onehot = keras.layers.CategoryEncoding(
            num_classes, output_mode="one_hot", name="label_onehot")(labels)
        maps = keras.layers.Reshape((1, 1, num_classes))(onehot)
        maps = keras.layers.UpSampling2D((h, w), name="label_maps")(maps)
        x = keras.layers.Concatenate(name="image_and_label")([x, maps])
    x = keras.layers.Conv2D(width, KERNEL, strides=2, padding="same",
                            kernel_initializer=_init(seed, 10))(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = keras.layers.Conv2D(2 * width, KERNEL, strides=2, padding="same",
                            use_bias=False,
                            kernel_initializer=_init(seed, 11))(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE)(_bn()(x))
    x = keras.layers.Flatten()(x)
    logits = keras.layers.Dense(1, kernel_initializer=_init(seed, 12),
                                name="logit")(x)
    return keras.Model(inputs if num_classes is not None else images, logits,
                       name="discriminator")
