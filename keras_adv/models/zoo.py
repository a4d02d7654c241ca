"""Small reference architectures used by the examples, tests and benchmarks."""

import keras


def small_cnn(*, input_shape=(28, 28, 1), num_classes=10, width=32,
              seed=None):
    """A small convnet returning logits; trains on mnist5k in seconds on CPU.

    Conv(width, 3x3, stride 2) - ReLU - Conv(2*width, 3x3, stride 2) - ReLU -
    Flatten - Dense(128) - ReLU - Dense(num_classes).

    Args:
        input_shape: shape of one input, channels last.
        num_classes: number of output logits.
        width: filters of the first convolution.
        seed: seed for the weight initialisers (`None`: random).

    Returns:
        A built `keras.Sequential` returning logits.

    Example:

    >>> model = small_cnn()
    >>> model.output_shape
    (None, 10)
    """
    def init(i):
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + i
        )

    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(width, 3, strides=2, padding="same",
                                activation="relu", kernel_initializer=init(0)),
            keras.layers.Conv2D(2 * width, 3, strides=2, padding="same",
                                activation="relu", kernel_initializer=init(1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu",
                               kernel_initializer=init(2)),
            keras.layers.Dense(num_classes, kernel_initializer=init(3)),
        ],
        name="small_cnn",
    )
