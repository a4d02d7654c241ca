"""Every argument and data check of keras_adv, in one place.

Checks raise `ValueError("<what is wanted>. Received: name=value")` before
any work is done and never modify the caller's data. Called eagerly, data
checks run in NumPy; inside a `tf.function` they become `tf.debugging`
assertions that run before the checked tensors are used.

This package is on the ground floor (docs/architecture.md): it imports
nothing from keras_adv. `arguments.py` checks arguments (numbers, norms,
boxes, seeds, ...), `budget.py` the eps against the data's range (a
warning), `data.py` checks data (inputs, labels, batches,
images); every name is used as `keras_adv.validation.<name>`.
"""

from keras_adv.validation.arguments import (  # noqa: F401
    LOSSES,
    NORMS,
    check_attack,
    check_bool,
    check_class,
    check_clip,
    check_from_logits,
    check_image_shape,
    check_int,
    check_keras_model,
    check_loss,
    check_model,
    check_norm,
    check_number,
    check_path,
    check_probability,
    check_rate,
    check_seed,
    numpy_rng,
    parse_eps,
    short,
)
from keras_adv.validation.budget import (  # noqa: F401
    EpsRangeWarning,
    eps_beyond_range,
    eps_reach,
    warn_eps_range,
)
from keras_adv.validation.data import (  # noqa: F401
    check_batch,
    check_images,
    check_in_box,
    check_input_shape,
    check_label_array,
    check_labels,
    check_x,
    data_box,
    declared_input_shape,
    shape_fits,
)

__all__ = [
    "EpsRangeWarning",
    "LOSSES",
    "NORMS",
    "check_attack",
    "check_batch",
    "check_class",
    "check_clip",
    "check_from_logits",
    "check_image_shape",
    "check_images",
    "check_in_box",
    "check_input_shape",
    "check_int",
    "check_keras_model",
    "check_path",
    "check_label_array",
    "check_labels",
    "check_loss",
    "check_model",
    "check_norm",
    "check_number",
    "check_rate",
    "check_seed",
    "check_x",
    "data_box",
    "declared_input_shape",
    "eps_beyond_range",
    "eps_reach",
    "numpy_rng",
    "parse_eps",
    "shape_fits",
    "short",
    "warn_eps_range",
]
