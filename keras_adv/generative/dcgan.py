"""DCGAN: a Keras model whose `fit` trains a generator and a discriminator."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import validation
from keras_adv.generative import networks


def _bce(logits, target):
    """Mean binary cross-entropy of logits against a constant 0/1 target."""
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=labels, logits=logits))


def _default_optimizer():
    """The DCGAN paper's optimizer: Adam, learning rate 2e-4, beta_1 0.5."""
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


@keras.saving.register_keras_serializable(package="keras_adv")
class DCGAN(keras.Model):
    """A deep convolutional GAN trained with `fit` (Radford et al. 2016).

    Radford, Metz and Chintala, "Unsupervised representation learning with
    deep convolutional generative adversarial networks", ICLR 2016. The
    generator (`keras_adv.generative.build_generator`) maps a latent vector
    z ~ N(0, I) through transposed strided convolutions to an image; the
    discriminator (`build_discriminator`) maps an image through strided
    convolutions to a real/fake logit. No pooling, batch normalisation in
    both except the generator output and the discriminator input, ReLU in
    the generator, LeakyReLU(0.2) in the discriminator, N(0, 0.02) weights.

    The generator output is `(tanh + 1) / 2`: the paper's tanh output,
    rescaled to the data box [0, 1] (the discriminator maps its input back
    to [-1, 1] first). A sigmoid would give the same range (it is
    `(tanh(a / 2) + 1) / 2`); the rescaled tanh keeps the paper's
    pre-activation scale, for which the N(0, 0.02) initialisation and the
    Adam settings were tuned.

    One training step (one batch of real images) is:

    1. a discriminator update on the real batch (target 1) and a fake
       batch of the same size (target 0), each through the discriminator
       separately (so batch normalisation sees pure batches, as the
       authors), with binary cross-entropy `d_loss = BCE(real, 1) +
       BCE(fake, 0)`;
    2. a generator update on a fresh fake batch only, with the
       non-saturating loss `g_loss = BCE(D(G(z)), 1) = -log D(G(z))`.

    `fit` logs `d_loss`, `g_loss`, `d_real_accuracy` (share of real images
    with a positive logit) and `d_fake_accuracy` (share of fake images with
    a negative logit). The latent vectors of training come from a
    `keras.random.SeedGenerator(seed)`.

    Class-conditional form (`num_classes` given): `fit(x, y)` with integer
    labels; the generator receives the one-hot label concatenated to z, the
    discriminator the one-hot label tiled over the image as `num_classes`
    extra channels. Fake batches carry the labels of the real batch.

    Args:
        image_shape: `(height, width, channels)`; height and width
            multiples of 4 (two stride-2 layers), e.g. `(28, 28, 1)` or
            `(32, 32, 3)`.
        latent_dim: size of z (>= 1).
        num_classes: `None` (unconditional) or the number of classes (>= 2).
        width: filters of the discriminator's first and the generator's
            last hidden layer (>= 1); the other hidden layer has twice as
            many.
        seed: seed of the weight initialisation and of the training latent
            vectors (`None`: random).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: a bad `image_shape`, `latent_dim`, `num_classes`,
            `width` or `seed`.

    Example:

    >>> gan = DCGAN((28, 28, 1), latent_dim=16, width=8, seed=0)
    >>> gan.compile()
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1), "float32")
    >>> history = gan.fit(x, batch_size=32, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['d_fake_accuracy', 'd_loss', 'd_real_accuracy', 'g_loss']
    >>> gan.generate(4, seed=1).shape
    (4, 28, 28, 1)
    """

    def __init__(self, image_shape, *, latent_dim=100, num_classes=None,
                 width=64, seed=None, **kwargs):
        image_shape = validation.check_image_shape(image_shape)
        latent_dim = validation.check_int("latent_dim", latent_dim, 1)
        if num_classes is not None:
            num_classes = validation.check_int("num_classes", num_classes, 2)
        width = validation.check_int("width", width, 1)
        seed = validation.check_seed(seed)
        super().__init__(**kwargs)
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.width = width
        self.seed = seed
        self.generator = networks.build_generator(
            image_shape, latent_dim, num_classes=num_classes, width=width,
            seed=seed)
        self.discriminator = networks.build_discriminator(
            image_shape, num_classes=num_classes, width=width, seed=seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real_accuracy")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake_accuracy")
        self.d_optimizer = None
        self.g_optimizer = None
        self.built = True

    @property
    def conditional(self):
        """True for the class-conditional form (`num_classes` given)."""
        return self.num_classes is not None

    @property
    def metrics(self):
        """The four trackers `fit` logs (reset by Keras every epoch)."""
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker]

    def compile(self, d_optimizer=None, g_optimizer=None, *,
                steps_per_execution=1, run_eagerly=False):
        """Sets the two optimizers (default: Adam(2e-4, beta_1=0.5) each).

        Args:
            d_optimizer: discriminator optimizer (instance or name).
            g_optimizer: generator optimizer (instance or name); it is also
                `model.optimizer`, so `model.optimizer.iterations` counts
                generator steps.
            steps_per_execution: batches per compiled call (Keras').
            run_eagerly: run `train_step` eagerly (debugging).

        Raises:
            ValueError: the two optimizers are the same object.

        Example: `gan.compile(g_optimizer=keras.optimizers.Adam(1e-4))`.
        """
        d_opt = keras.optimizers.get(d_optimizer or _default_optimizer())
        g_opt = keras.optimizers.get(g_optimizer or _default_optimizer())
        if d_opt is g_opt:
            raise ValueError(
                "d_optimizer and g_optimizer must be two optimizer objects "
                "(each keeps its own moments). Received: the same object "
                f"{d_opt!r} twice"
            )
        self.d_optimizer, self.g_optimizer = d_opt, g_opt
        super().compile(optimizer=g_opt, jit_compile=False,
                        steps_per_execution=steps_per_execution,
                        run_eagerly=run_eagerly)

    def get_compile_config(self):
        """The two optimizers, serialised (for `.keras` saving)."""
        if self.d_optimizer is None:
            return {}
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        """Compiles from `get_compile_config()` and builds both optimizers
        so that their saved state can be loaded."""
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]))
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def call(self, inputs, training=None):
        """The generator: latent vectors (and labels) to images in [0, 1]."""
        return self.generator(inputs, training=training)

    def _inputs(self, first, labels):
        return [first, labels] if self.conditional else first

    def train_step(self, data):
        """One discriminator update, then one generator update."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, self.compute_dtype)
        if self.conditional:
            y = tf.cast(tf.reshape(y, [-1]), "int32")
        n = tf.shape(x)[0]
        z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        fake = self.generator(self._inputs(z, y), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(self._inputs(x, y), training=True)
            fake_logits = self.discriminator(self._inputs(fake, y),
                                             training=True)
            d_loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)

        z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake = self.generator(self._inputs(z, y), training=True)
            logits = self.discriminator(self._inputs(fake, y), training=True)
            g_loss = _bce(logits, 1.0)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(
            tf.cast(real_logits > 0, "float32"))
        self.d_fake_tracker.update_state(
            tf.cast(fake_logits < 0, "float32"))
        return {m.name: m.result() for m in self.metrics}

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit` after checking the images (and labels).

        Arrays are checked in full (rank, shape, values in [0, 1], labels);
        a `tf.data.Dataset` by its element spec (rank and shape, a label
        element in the conditional form).

        Raises:
            ValueError: bad images or labels (see above), labels for an
                unconditional model, or none for a conditional one.

        Example: `gan.fit(x_train, epochs=5, batch_size=64)`.
        """
        if isinstance(x, tf.data.Dataset):
            self._check_dataset(x)
            kwargs.setdefault("shuffle", False)  # a Dataset shuffles itself
        else:
            validation.check_images(x, "x", clip=(0.0, 1.0),
                                    shape=self.image_shape)
            if self.conditional:
                if y is None:
                    raise ValueError(
                        f"y must hold the labels of a conditional DCGAN "
                        f"(num_classes={self.num_classes}). Received: y=None"
                    )
                validation.check_label_array(y, len(x), self.num_classes)
            elif y is not None:
                raise ValueError(
                    "y must be None for an unconditional DCGAN (construct it "
                    "with num_classes to train on labels). Received: y with "
                    f"shape {np.shape(y)}"
                )
        return super().fit(x, y, **kwargs)

    def _check_dataset(self, dataset):
        spec = dataset.element_spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        image_spec = parts[0]
        shape = getattr(image_spec, "shape", None)
        if shape is None or shape.rank != 4 or not shape[1:].is_compatible_with(
                self.image_shape):
            raise ValueError(
                f"x must be a tf.data.Dataset of batches of images of shape "
                f"{self.image_shape} (rank 4). Received: x with element spec "
                f"{spec}"
            )
        if self.conditional and len(parts) < 2:
            raise ValueError(
                "x must yield (images, labels) batches for a conditional "
                f"DCGAN. Received: x with element spec {spec}"
            )

    def generate(self, num_images, *, labels=None, seed=None, batch_size=256):
        """Draws `num_images` images from the generator (inference mode).

        Args:
            num_images: number of images (>= 0).
            labels: conditional form only: `num_images` integer labels in
                `[0, num_classes)`; `None` gives `arange(num_images) % num_classes`
                (balanced classes, in order).
            seed: latent-vector seed: the same seed and `batch_size` give
                bit-identical images on one machine (stateless random
                numbers); `None` draws from Keras' global generator
                (`keras.utils.set_random_seed` governs it).
            batch_size: images per generator call (>= 1). The latent vectors
                do not depend on it; the images agree across batch sizes
                within 1e-6 (oneDNN picks its kernels by batch size, so the
                last bits of a pixel may differ).

        Returns:
            A float32 NumPy array `(num_images, *image_shape)` in [0, 1].

        Raises:
            ValueError: bad `num_images`, `batch_size` or `seed`; labels for an
                unconditional model; labels of the wrong shape or range.

        Example:

        >>> gan = DCGAN((28, 28, 1), latent_dim=8, width=4, seed=0)
        >>> a = gan.generate(3, seed=7); b = gan.generate(3, seed=7)
        >>> bool((a == b).all()), a.dtype.name
        (True, 'float32')
        """
        n = validation.check_int("num_images", num_images, 0)
        batch_size = validation.check_int("batch_size", batch_size, 1)
        seed = validation.check_seed(seed)
        labels = self._generate_labels(labels, n)
        z = keras.ops.convert_to_numpy(
            keras.random.normal((n, self.latent_dim), seed=seed))
        out = np.empty((n, *self.image_shape), np.float32)
        for start in range(0, n, batch_size):
            part = slice(start, start + batch_size)
            images = self.generator(
                self._inputs(z[part], None if labels is None else labels[part]),
                training=False)
            out[part] = keras.ops.convert_to_numpy(images)
        return np.clip(out, 0.0, 1.0)

    def _generate_labels(self, labels, n):
        if not self.conditional:
            if labels is not None:
                raise ValueError(
                    "labels need a conditional DCGAN (construct it with "
                    "num_classes). Received: labels with shape "
                    f"{np.shape(labels)}"
                )
            return None
        if labels is None:
            return (np.arange(n) % self.num_classes).astype(np.int32)
        labels, _, _ = validation.check_label_array(labels, n, self.num_classes,
                                                    name="labels")
        return labels.astype(np.int32)

    def export(self, filepath):
        """Writes the generator as a TensorFlow SavedModel for serving.

        The signature `serve` takes `latent` (float32, `(None, latent_dim)`)
        and, in the conditional form, `labels` (int32, `(None,)`), and
        returns images in [0, 1]. Load it with `tf.saved_model.load(path)`.

        Args:
            filepath: the SavedModel directory to write.

        Returns:
            `filepath`.

        Example: `gan.export("generator_savedmodel")`.
        """
        archive = keras.export.ExportArchive()
        archive.track(self.generator)
        latent = tf.TensorSpec((None, self.latent_dim), tf.float32,
                               name="latent")
        if self.conditional:
            labels = tf.TensorSpec((None,), tf.int32, name="labels")
            archive.add_endpoint(
                "serve",
                lambda latent, labels: self.generator(
                    [latent, labels], training=False),
                input_signature=[latent, labels])
        else:
            archive.add_endpoint(
                "serve", lambda latent: self.generator(latent, training=False),
                input_signature=[latent])
        archive.write_out(filepath, verbose=False)
        return filepath

    def get_config(self):
        """Constructor arguments (the networks are rebuilt from them)."""
        return {"name": self.name, "trainable": self.trainable,
                "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim, "num_classes": self.num_classes,
                "width": self.width, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the model from `get_config()`.

        Example: `DCGAN.from_config(gan.get_config())`.
        """
        config = dict(config)
        config["image_shape"] = tuple(config["image_shape"])
        return cls(**config)
