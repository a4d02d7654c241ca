"""The perturbation budget against the data's range (part of
`keras_adv.validation`): an eps that covers the whole box is legal, but its
robust accuracy says nothing about robustness, so it is named in a warning.
"""

import math
import warnings


class EpsRangeWarning(UserWarning):
    """An eps at least as large as the data's range under its norm: every
    input of the box is in reach, so the robust accuracy there measures
    only the model's constant regions.

    Example: `warnings.simplefilter("error", EpsRangeWarning)`.
    """


def eps_reach(norm, box, size):
    """The largest distance between two inputs of `box` under `norm`: the
    box width `high - low` for `"linf"`, `width * sqrt(size)` for `"l2"`
    (`size` values per example). None without a box.

    Example:

    >>> eps_reach("l2", (0.0, 1.0), 784)
    28.0
    """
    if box is None:
        return None
    width = float(box[1]) - float(box[0])
    return width if norm == "linf" else width * math.sqrt(size)


def eps_beyond_range(eps, norm, box, size):
    """The message of `EpsRangeWarning` for the budgets of `eps` (a list)
    that are larger than `eps_reach(norm, box, size)`, or None when every
    budget is smaller (or there is no box).

    Example:

    >>> eps_beyond_range([0.1, 3.0], "linf", (0.0, 1.0), 784)[:30]
    'eps 3 is larger than the data'
    """
    reach = eps_reach(norm, box, size)
    if reach is None:
        return None
    big = [e for e in eps if e > reach]
    if not big:
        return None
    lo, hi = (f"{float(b):.4g}" for b in box)
    rule = "its width" if norm == "linf" else f"width * sqrt({size})"
    return (f"eps {', '.join(f'{e:g}' for e in big)} is larger than the "
            f"data's range under {norm} ({reach:.4g}: box [{lo}, {hi}], "
            f"{rule}): every input of the box is in reach, so the robust "
            "accuracy there measures only where the model is constant")


def warn_eps_range(eps, norm, box, size, *, stacklevel=3):
    """Warns with `EpsRangeWarning` when a budget of `eps` is larger than
    the data's range (`eps_beyond_range`). Returns the message or None.

    Example: `warn_eps_range([0.1, 3.0], "linf", (0.0, 1.0), 784)`.
    """
    message = eps_beyond_range(eps, norm, box, size)
    if message is not None:
        warnings.warn(EpsRangeWarning(message), stacklevel=stacklevel)
    return message
