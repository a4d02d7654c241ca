"""Clean-label backdoor (Turner et al. 2019): adversarially perturbed
target-class images carry the trigger with their true label."""

import numpy as np

from keras_adv.poisoning import triggers
from keras_adv.poisoning.backdoor import Poisoned
from keras_adv.progress import Progress

LONG_ROW_STEPS = 50_000  # rows x PGD steps of a long run (progress=None)


def clean_label_backdoor(model, x, y, *, target, rate, eps, trigger="patch",
                         steps=20, seed=None, batch_size=256, clip="auto",
                         progress=None):
    """Clean-label backdoor: poison rows keep their correct label `target`.

    Turner, Tsipras and Madry, "Label-Consistent Backdoor Attacks", arXiv
    2019. `round(rate * n_target)` images of class `target` are first pushed
    away from their class by an untargeted L-inf PGD attack
    (`keras_adv.attacks.pgd`, cross-entropy on the true label, `steps`
    steps, random start) on the surrogate `model`, so that their own
    features no longer explain the label; the trigger is then stamped on the
    perturbed images. The network learns to rely on the trigger for them.
    Deviations from the paper: `rate` is the share of the target class (the
    paper's convention, unlike `backdoor`, where it is the share of the whole
    set); the full-strength trigger is used (no reduced-amplitude or
    four-corner variants).

    Args:
        model: a surrogate Keras model returning logits, trained on clean
            data of the same task.
        x: training images `(n, H, W, C)` in the box `clip`.
        y: labels, sparse or one-hot.
        target: the class to backdoor.
        rate: share of the target class to poison, in [0, 1].
        eps: L-inf PGD budget (> 0).
        trigger: `"patch"`, `"blend"` or a `Trigger`.
        steps: PGD steps (>= 1).
        seed: integer seed of the row choice and the PGD start; `None` draws
            from NumPy's global generator.
        batch_size: rows per attack call.
        clip: the data box `(min, max)` of the images, the attack and the
            trigger, or `"auto"`: `(0, 255)` for integer images, `(0, 1)`
            for floating ones (eps is in the same units; integer poisons
            are rounded).
        progress: count the rows attacked on stderr (`clean_label_backdoor:
            perturbed 256/300 rows`); `None`: on a terminal from
            `LONG_ROW_STEPS` rows x steps.

    Returns:
        `Poisoned(x, y, index)`: `y` is a copy of the labels (unchanged
        values); `x` and `y` are not modified.

    Raises:
        ValueError: a rate outside [0, 1], a target out of range or with no
            rows, eps not > 0, bad steps, an unknown trigger or one that does
            not fit, labels and images of different lengths.

    Example:

    >>> p = clean_label_backdoor(surrogate, x, y, target=0, rate=0.3,
    ...                          eps=0.3, seed=0)  # doctest: +SKIP
    >>> bool(np.all(p.y == y))  # doctest: +SKIP
    True
    """
    from keras_adv import attacks, validation

    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    box = tuple(float(b) for b in validation.data_box(x, clip))
    labels, k, _ = validation.check_label_array(y, len(x))
    target = validation.check_class(target, "target", k)
    rate = validation.check_rate(rate)
    eps = validation.check_number("eps", eps, positive=True)
    steps = validation.check_int("steps", steps)
    batch_size = validation.check_int("batch_size", batch_size)
    trig = triggers.resolve(trigger, x.shape[1:])
    rng = validation.numpy_rng(seed)
    pool = np.flatnonzero(labels == target)
    if len(pool) == 0:
        raise ValueError(f"target must be a class present in y. Received: "
                         f"target={target} (no rows)")
    count = int(round(rate * len(pool)))
    counter = Progress.resolve(progress, count * steps, long=LONG_ROW_STEPS,
                               total=count, counts=True,
                               prefix="clean_label_backdoor",
                               label="perturbed {} rows")
    index = np.sort(rng.choice(pool, size=count, replace=False)).astype(
        np.int64)
    attack_seed = int(rng.integers(0, 2**31 - 1))
    x_out = np.array(x, copy=True)
    with counter:
        for i in range(0, count, batch_size):
            rows = index[i:i + batch_size]
            counter.doing(f"PGD on rows {i + 1}-{i + len(rows)}")
            adv = attacks.pgd(model, x[rows].astype(np.float32),
                              labels[rows], eps=eps, steps=steps,
                              seed=attack_seed + i, clip=box)
            stamped = trig.apply(np.asarray(adv), clip=box)
            if not np.issubdtype(x.dtype, np.floating):
                stamped = np.rint(stamped)
            x_out[rows] = stamped.astype(x.dtype)
            counter.step(len(rows))
    return Poisoned(x_out, np.array(y, copy=True), index)
