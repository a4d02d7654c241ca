"""FreeTraining: the carried perturbation and the replayed optimizer
steps."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import defenses, models
from keras_adv.defenses.free_training import FreeState
from tests.conftest import linear_model


def test_state_resizes_to_each_batch_and_keeps_the_rest():
    state = FreeState()
    np.testing.assert_array_equal(state.read(tf.zeros((2, 2))), np.zeros((2, 2)))
    state.write(tf.ones((2, 3)))
    np.testing.assert_array_equal(tf.reshape(state.read(tf.zeros((3, 3))), -1),
                                  [1, 1, 1, 1, 1, 1, 0, 0, 0])
    state.write(2 * tf.ones((1, 2)))
    np.testing.assert_array_equal(tf.reshape(state.read(tf.zeros((2, 4))), -1),
                                  [2, 2, 1, 1, 1, 1, 0, 0])


def test_fit_makes_replays_optimizer_steps_per_batch(linear_batch):
    _, _, _, x, _, y, _ = linear_batch
    model = models.AdversarialModel(
        linear_model()[0], defense=defenses.FreeTraining(eps=0.1, replays=3))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    logs = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert int(model.optimizer.iterations) == 3 * 3
    assert np.isfinite(logs["adv_loss"][0])
