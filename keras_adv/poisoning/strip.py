"""STRIP (Gao et al. 2019): a triggered input stays confidently classified
when other images are superimposed on it."""

import numpy as np

from keras_adv import ops, validation
from keras_adv.progress import Progress

LONG_BLENDS = 100_000  # inputs x overlays of a long run (progress=None)


def strip_entropy(model, x, clean_x, *, overlays=100, seed=None,
                  clip=(0.0, 1.0), batch_size=256, progress=None):
    """Mean prediction entropy of each input under superimposed clean images.

    Gao et al., "STRIP: A Defence Against Trojan Attacks on Deep Neural
    Networks", ACSAC 2019. Each input is added pixel-wise to `overlays` images drawn
    from `clean_x` (the authors' superimposition: a sum with weights 1 and
    1, clipped to the box), and the Shannon entropy (natural log) of the
    model's softmax is averaged over the `overlays` blends. A clean input loses its
    class in the blend (high entropy); a triggered one keeps the target
    class (low entropy). Needs no knowledge of the trigger or the poison.

    Args:
        model: a Keras model (logits or probabilities).
        x: inputs to test `(m, H, W, C)`.
        clean_x: held-out clean images `(k, H, W, C)` to superimpose.
        overlays: blends per input (>= 1; the paper's N = 100).
        seed: integer seed of the draws; `None`: NumPy's global generator.
        clip: the `(low, high)` box of the images.
        batch_size: rows per forward pass.
        progress: count the inputs blended on stderr (`strip_entropy:
            blended 10/10 inputs`); `None`: on a terminal from
            `LONG_BLENDS` inputs x overlays.

    Returns:
        float64 entropies `(m,)`.

    Raises:
        ValueError: bad images, images of different shapes, `overlays` not a
            positive integer, a bad clip box.

    Example:

    >>> h = strip_entropy(model, x_test[:10], x_val, overlays=20, seed=0)
    ... # doctest: +SKIP
    """
    if clip is None:
        raise ValueError("clip must be a pair (min, max): the blends are "
                         "clipped to it. Received: clip=None")
    low, high = validation.check_clip(clip)
    x = validation.check_images(x, clip=(low, high), model=model)
    clean_x = validation.check_images(clean_x, "clean_x", clip=(low, high))
    if clean_x.shape[1:] != x.shape[1:]:
        raise ValueError(f"clean_x must hold images of shape {x.shape[1:]}. "
                         f"Received: clean_x of shape {clean_x.shape}")
    n = validation.check_int("overlays", overlays)
    rng = validation.numpy_rng(seed)
    picks = rng.integers(0, len(clean_x), size=(len(x), n))
    out = np.empty(len(x))
    chunk = max(1, batch_size // n)
    with Progress.resolve(progress, len(x) * n, long=LONG_BLENDS,
                          total=len(x), counts=True, prefix="strip_entropy",
                          label="blended {} inputs") as counter:
        for i in range(0, len(x), chunk):
            rows = x[i:i + chunk]
            counter.doing(f"{n} blends of inputs {i + 1}-{i + len(rows)}")
            blend = rows[:, None] + clean_x[picks[i:i + chunk]]
            blend = np.clip(blend, low, high).reshape((-1,) + x.shape[1:])
            p = ops.probabilities(model, blend.astype(np.float32),
                                  batch_size)
            h = -np.sum(p * np.log(np.maximum(p, 1e-12)), axis=1)
            out[i:i + chunk] = h.reshape(len(rows), n).mean(axis=1)
            counter.step(len(rows))
    return out


def strip_threshold(clean_entropy, *, frr=0.01):
    """The STRIP decision threshold for a false rejection rate on clean data.

    The `frr` quantile of the entropies of clean inputs: inputs below it are
    flagged as triggered, so about `frr` of clean inputs are wrongly
    rejected. The paper fits a normal distribution to the clean entropies;
    this uses the empirical quantile instead (no distributional assumption).

    Args:
        clean_entropy: `strip_entropy` of clean held-out inputs.
        frr: accepted false rejection rate, in (0, 1).

    Returns:
        A float threshold; `strip_entropy(...) < threshold` flags an input.

    Raises:
        ValueError: empty or non-finite entropies, `frr` outside (0, 1).

    Example:

    >>> strip_threshold(np.arange(100.0), frr=0.05)
    4.95
    """
    h = np.asarray(clean_entropy, dtype=np.float64).ravel()
    if h.size == 0 or not np.all(np.isfinite(h)):
        raise ValueError("clean_entropy must be a non-empty array of finite "
                         f"values. Received: clean_entropy={validation.short(h)}")
    frr = validation.check_number("frr", frr, positive=True, upper=1.0)
    if frr >= 1.0:
        raise ValueError(f"frr must be in (0, 1). Received: frr={frr}")
    return float(np.quantile(h, frr))
