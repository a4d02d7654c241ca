"""models/zoo.py: `small_cnn`, its shape, size and seeded weights."""

import numpy as np

from keras_adv.models import small_cnn


def test_small_cnn_shape_size_and_seed():
    model = small_cnn(input_shape=(8, 8, 3), num_classes=4, width=2, seed=3)
    assert model.output_shape == (None, 4)
    # conv 3*3*3*2+2, conv 3*3*2*4+4, dense (2*2*4)*128+128, dense 128*4+4
    assert model.count_params() == 56 + 76 + 2176 + 516
    again = small_cnn(input_shape=(8, 8, 3), num_classes=4, width=2, seed=3)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = small_cnn(input_shape=(8, 8, 3), num_classes=4, width=2, seed=4)
    assert not np.array_equal(model.get_weights()[0], other.get_weights()[0])
