"""Defensive distillation (Papernot et al., IEEE S&P 2016)."""

import contextlib
import sys

import keras
import numpy as np

from keras_adv import validation
from keras_adv.layers.temperature import Temperature
from keras_adv.progress import Progress

LONG_EXAMPLES = 20_000  # examples x epochs of a long run (progress=None)


def _tempered(model, temperature):
    return keras.Sequential([model, Temperature(temperature)])


def defensive_distillation(
    teacher,
    student,
    x,
    y,
    *,
    temperature=100.0,
    epochs=10,
    batch_size=128,
    optimizer="adam",
    validation_data=None,
    progress=None,
):
    """Trains a defensively distilled model and returns it deployed at T = 1.

    Papernot et al., "Distillation as a Defense to Adversarial Perturbations
    against Deep Neural Networks" (2016):
    1. train `teacher` on the hard labels with softmax(z / T);
    2. relabel `x` with the teacher's soft labels softmax(z_teacher / T);
    3. train `student` on those soft labels, again with softmax(z / T);
    4. deploy the student at T = 1, i.e. return its raw logits.

    The deployed logits are about T times larger than during training, so
    softmax saturates and cross-entropy gradients vanish. This is gradient
    masking, not robustness: Carlini & Wagner (2017) break it with a margin
    loss on the logits (`keras_adv.attacks.pgd(..., loss="margin")`), and
    `keras_adv.evaluate_robustness` must see through it.

    Args:
        teacher: an uncompiled Keras model returning logits.
        student: an uncompiled Keras model returning logits (often the same
            architecture, freshly initialised).
        x: training inputs.
        y: integer training labels.
        temperature: T > 0 (100 in the paper's MNIST experiments).
        epochs: epochs for each of the two trainings.
        batch_size: batch size for both trainings.
        optimizer: a Keras optimizer name, or a zero-argument callable
            returning a new optimizer (each training gets a fresh one).
        validation_data: optional `(x_val, y_val)` with integer labels.
        progress: on stderr, a stage line per phase (`defensive_distillation:
            training the teacher at T=100.0 (10 epochs)`) and each `fit`'s
            own progress (a bar on a terminal, a line per epoch elsewhere);
            `None`: on a terminal from `LONG_EXAMPLES` examples x epochs.

    Returns:
        `student`, trained, returning logits at T = 1 (the deployed model).

    Raises:
        ValueError: temperature not a finite number > 0, epochs < 1, or
            labels of the wrong shape.

    Example:

    >>> x = np.random.rand(64, 4).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> def mlp():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> deployed = defensive_distillation(mlp(), mlp(), x, y, temperature=20.0,
    ...                                   epochs=1)
    >>> deployed(x[:2]).shape
    TensorShape([2, 2])
    """
    temperature = validation.check_number(
        "temperature", temperature, positive=True, allow_tensor=False)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1. Received: epochs={epochs!r}")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"y must be integer labels of shape ({len(x)},). Received: y with "
            f"shape {y.shape}"
        )
    val = None
    if validation_data is not None:
        val = (validation_data[0], np.asarray(validation_data[1]))
    # Not opened: fit's own progress shows that it runs, no heartbeat
    # between its lines.
    stage = Progress.resolve(progress, 2 * epochs * len(x), long=LONG_EXAMPLES,
                             prefix="defensive_distillation")
    verbose = (1 if sys.stderr.isatty() else 2) if stage.enabled else 0
    stage(f"training the teacher at T={temperature} ({epochs} epochs)")
    with (contextlib.redirect_stdout(sys.stderr) if stage.enabled
          else contextlib.nullcontext()):  # Keras' bar and lines
        return _distil(teacher, student, x, y, val, temperature,
                       epochs=epochs, batch_size=batch_size, verbose=verbose,
                       stage=stage, optimizer=optimizer)


def _distil(teacher, student, x, y, val, temperature, *, epochs, batch_size,
            verbose, stage, optimizer):
    """The two trainings; `verbose` is `fit`'s, `stage` the `Progress`
    of the phases."""

    def new_optimizer():
        return optimizer() if callable(optimizer) else keras.optimizers.get(optimizer)

    hard = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    soft = keras.losses.CategoricalCrossentropy(from_logits=True)

    hot_teacher = _tempered(teacher, temperature)
    hot_teacher.compile(optimizer=new_optimizer(), loss=hard,
                        metrics=["accuracy"])
    hot_teacher.fit(x, y, epochs=epochs, batch_size=batch_size,
                    validation_data=val, verbose=verbose)

    stage("the teacher's soft labels")
    soft_labels = keras.ops.softmax(
        hot_teacher.predict(x, batch_size=max(batch_size, 256), verbose=0)
    )
    stage(f"training the student at T={temperature} ({epochs} epochs)")
    hot_student = _tempered(student, temperature)
    hot_student.compile(optimizer=new_optimizer(), loss=soft)
    hot_student.fit(x, soft_labels, epochs=epochs, batch_size=batch_size,
                    verbose=verbose)
    return student
