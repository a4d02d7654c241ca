"""Fast gradient sign method (Goodfellow et al. 2015) and its L2 form (FGM)."""

from keras_adv.attacks._pgd import _run


def fgsm(
    model,
    x,
    y=None,
    *,
    eps,
    norm="linf",
    loss="ce",
    targeted=False,
    clip=(0.0, 1.0),
    from_logits=None,
    perturb=None,
    perturb_layer=None,
):
    """Fast gradient sign method: one step of size eps.

    Goodfellow et al., "Explaining and Harnessing Adversarial Examples", ICLR
    2015. x' = clip(x + eps * sign(grad)) for L-inf and
    x' = clip(x + eps * grad / ||grad||2) for L2 (FGM), where grad is the
    gradient of the attack objective (for a targeted attack: the negative
    loss of the target class, so the step descends the target's loss).
    It is exactly `pgd(..., steps=1, step_size=eps, random_start=False)`.

    Args:
        model: a Keras model or callable returning logits (softmax outputs of
            Keras models are detected, see `pgd`).
        x: float array or tensor `(batch, ...)`, inside `clip`.
        y: sparse or one-hot labels (targets when `targeted=True`); `None`
            uses the model's predictions.
        eps: step size and budget (>= 0).
        norm: `"linf"` or `"l2"`.
        loss: `"ce"`, `"margin"` or `"dlr"`.
        targeted: step toward the classes in `y`.
        clip: `(min, max)` box of valid inputs, or `None`.
        from_logits: see `pgd`.
        perturb: the inputs of a model with several inputs to perturb (see
            `pgd`; eps applies to each on its own).
        perturb_layer: a layer whose output is perturbed instead (see
            `pgd`; token models).

    Returns:
        Tensor with the shape and dtype of `x`; the structure of `x` for
        several inputs; the adversarial layer output with `perturb_layer`.

    Raises:
        ValueError: for bad arguments, as `pgd`.
        TypeError: `targeted` not a bool.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = fgsm(model, x, eps=0.1)
    >>> bool(np.allclose(np.abs(x_adv - x), 0.1, atol=1e-6))
    True
    """
    return _run(
        model, x, y, eps=eps, steps=1, step_size=None, norm=norm,
        random_start=False, restarts=1, momentum=0.0, loss=loss,
        targeted=targeted, clip=clip, seed=0, eot_samples=1,
        from_logits=from_logits, perturb=perturb, perturb_layer=perturb_layer,
    )
