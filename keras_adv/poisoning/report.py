"""How well a backdoor works: attack success rate, clean accuracy, report."""

import dataclasses
import time

import numpy as np

from keras_adv import ops, reporting, validation
from keras_adv.poisoning import triggers
from keras_adv.progress import Progress

LONG_IMAGES = 5000  # test images that make a long run (progress=None)


def clean_accuracy(model, x, y, *, batch_size=256, clip="auto"):
    """Share of `x` that `model` classifies as `y`.

    Returns:
        A float in [0, 1].

    Example: `clean_accuracy(model, x_test, y_test)` is about 0.95 for
    small_cnn trained 8 epochs on mnist5k.

    Raises:
        ValueError: bad images or labels, or of different lengths.
    """
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    labels, _, _ = validation.check_label_array(y, len(x), ops.num_classes(model))
    pred = _predict(model, x, batch_size)
    return float(np.mean(pred == labels))


def attack_success_rate(model, x, y, *, target, trigger="patch",
                        batch_size=256, clip="auto"):
    """Share of the test images not of class `target` that the triggered
    version sends to `target`.

    The BadNets measure (Gu et al. 2017): images whose true class is
    `target` are left out, since the model's answer there says nothing
    about the trigger.

    Args:
        model: a Keras model.
        x: test images `(n, H, W, C)`.
        y: their true labels, sparse or one-hot.
        target: the backdoor's target class.
        trigger: `"patch"`, `"blend"` or a `Trigger`.
        batch_size: rows per forward pass.
        clip: the data box, or `"auto"` (`(0, 255)` for integer images,
            `(0, 1)` for floating ones); see `apply_trigger`.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: a target out of range, no image outside class `target`,
            an unknown trigger or one that does not fit, labels and images
            of different lengths.

    Example:

    >>> attack_success_rate(model, x_test, y_test, target=0)  # doctest: +SKIP
    0.99
    """
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    labels, k, _ = validation.check_label_array(y, len(x), ops.num_classes(model))
    target = validation.check_class(target, "target", k)
    trig = triggers.resolve(trigger, x.shape[1:])
    _, pred = _triggered(model, x, labels, target, trig, batch_size, clip)
    return float(np.mean(pred == target))


def _triggered(model, x, labels, target, trig, batch_size, clip):
    """`(rows, predictions)` of the triggered images outside class
    `target`; raises when there are none."""
    rows = np.flatnonzero(labels != target)
    if len(rows) == 0:
        raise ValueError(f"y must hold images outside class target={target}. "
                         "Received: y with every label equal to target")
    return rows, _predict(model, trig.apply(x[rows], clip=clip), batch_size)


@dataclasses.dataclass(eq=False)
class PoisoningReport(reporting.Report):
    """Clean accuracy and backdoor success of a model.

    Attributes:
        target: the backdoor's target class.
        trigger: the trigger's name (`"patch"`, `"blend"` or `"custom"`).
        num_examples: test images used.
        clean_accuracy: accuracy on the untouched test images.
        attack_success_rate: share of non-target images the trigger sends to
            `target`.
        triggered_accuracy: accuracy (true labels) on the triggered
            non-target images.
        seconds: wall time.

    Example:

    >>> report = evaluate_poisoning(model, x_test, y_test, target=0,
    ...                             trigger="patch")  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
    """

    target: int
    trigger: str
    num_examples: int
    clean_accuracy: float
    attack_success_rate: float
    triggered_accuracy: float
    seconds: float

    def table(self):
        """A plain-text summary. Example: `print(report.table())`."""
        rows = [("clean accuracy", self.clean_accuracy),
                ("attack success rate", self.attack_success_rate),
                ("accuracy on triggered images", self.triggered_accuracy)]
        width = max(len(r[0]) for r in rows)
        out = [f"Backdoor ({self.trigger} trigger, target {self.target}, "
               f"{self.num_examples} examples, {self.seconds:.1f} s)"]
        out += [f"{name.ljust(width)}  {value:7.2%}" for name, value in rows]
        return "\n".join(out)


def evaluate_poisoning(model, x, y, *, target, trigger,
                       batch_size=256, clip="auto", progress=None):
    """Clean accuracy and attack success rate of a (possibly) backdoored model.

    Args:
        model: a Keras model.
        x: test images `(n, H, W, C)`.
        y: their labels, sparse or one-hot.
        target, trigger, batch_size, clip: as `attack_success_rate`.
        progress: stage lines on stderr (`evaluate_poisoning: clean
            accuracy on 10000 images`); `None`: on a terminal from
            `LONG_IMAGES` images.

    Returns:
        A `PoisoningReport`.

    Raises:
        ValueError: as `attack_success_rate`.

    Example:

    >>> r = evaluate_poisoning(model, x_test, y_test, target=0, trigger="patch")
    ... # doctest: +SKIP
    >>> r.to_dict()["clean_accuracy"] > 0.9  # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    labels, k, _ = validation.check_label_array(
        y, len(x), ops.num_classes(model))
    target = validation.check_class(target, "target", k)
    trig = triggers.resolve(trigger, x.shape[1:])
    name = trigger if isinstance(trigger, str) else "custom"
    with Progress.resolve(progress, len(x), long=LONG_IMAGES,
                          prefix="evaluate_poisoning") as stage:
        stage(f"the {name} trigger on the images outside class {target}")
        rows, pred = _triggered(model, x, labels, target, trig, batch_size,
                                clip)
        stage(f"clean accuracy on {len(x)} images")
        clean = float(np.mean(_predict(model, x, batch_size) == labels))
    return PoisoningReport(
        target=target, trigger=name, num_examples=len(x),
        clean_accuracy=clean,
        attack_success_rate=float(np.mean(pred == target)),
        triggered_accuracy=float(np.mean(pred == labels[rows])),
        seconds=time.perf_counter() - start)


def _predict(model, x, batch_size):
    return ops.batched_logits(model, x, batch_size).argmax(axis=1)

