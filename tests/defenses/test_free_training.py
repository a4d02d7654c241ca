"""FreeTraining: the carried perturbation, resized to each batch (its
replayed optimizer steps in `fit`: tests/models/test_adversarial.py)."""

import numpy as np
import tensorflow as tf

from keras_adv.defenses.free_training import FreeState


def test_state_resizes_to_each_batch_and_keeps_the_rest():
    state = FreeState()
    np.testing.assert_array_equal(state.read(tf.zeros((2, 2))), np.zeros((2, 2)))
    state.write(tf.ones((2, 3)))
    np.testing.assert_array_equal(tf.reshape(state.read(tf.zeros((3, 3))), -1),
                                  [1, 1, 1, 1, 1, 1, 0, 0, 0])
    state.write(2 * tf.ones((1, 2)))
    np.testing.assert_array_equal(tf.reshape(state.read(tf.zeros((2, 4))), -1),
                                  [2, 2, 1, 1, 1, 1, 0, 0])

