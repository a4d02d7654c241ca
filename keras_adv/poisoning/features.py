"""Internal representations of a model, read through the functional API."""

import numpy as np

from keras_adv.models.features import feature_model

LONG_ROWS = 1000  # rows whose representations make a long run (progress=None)


def extract(model, x, layer=None, batch_size=256):
    """The representation of `x` at `layer`, flattened to `(n, features)`.

    Example: `extract(model, x_train).shape` is `(4000, 128)` for small_cnn.
    """
    fm = feature_model(model, layer=layer)
    parts = [np.asarray(fm(x[i:i + batch_size], training=False))
             for i in range(0, len(x), batch_size)]
    feats = np.concatenate(parts, axis=0)
    return feats.reshape(len(x), -1).astype(np.float64)
