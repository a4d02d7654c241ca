"""The first stage of `evaluate_robustness`: the attack registry, the
argument checks and the plan (attacks in order, budgets, clean predictions).
"""

import dataclasses
import inspect

import numpy as np

from keras_adv import attacks as _attacks
from keras_adv import ops, validation
from keras_adv.progress import show

STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


@dataclasses.dataclass(frozen=True)
class _Attack:
    name: str
    white_box: bool
    iterative: bool
    run: object  # (model, x, y, eps, **common, **options) -> x_adv
    fn: object = None  # the attack function that receives the options
    fixed: tuple = ()  # its arguments that the suite sets itself

    def option_names(self):
        """The options a user may pass to this attack (sorted)."""
        params = inspect.signature(self.fn).parameters
        return sorted(set(params) - {"model", "x", "y"} - set(self.fixed))


def _fgsm(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
          **opts):
    opts.setdefault("loss", "ce")
    return _attacks.pgd(model, x, y, eps=eps, norm=norm, clip=clip, steps=1,
                        random_start=False, eot_samples=eot,
                        from_logits=from_logits, seed=0, **opts)


def _pgd(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
         **opts):
    opts.setdefault("steps", 40)
    return _attacks.pgd(model, x, y, eps=eps, norm=norm, clip=clip, seed=seed,
                        eot_samples=eot, from_logits=from_logits, **opts)


def _apgd(loss, targets):
    def run(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
            **opts):
        opts.setdefault("loss", loss)
        if targets:
            # AutoAttack's APGD-T: the 9 most likely other classes, DLR.
            opts.setdefault("target_classes", min(9, classes - 1))
            if classes < 4:
                opts["loss"] = "ce"
        return _attacks.apgd(model, x, y, eps=eps, norm=norm, clip=clip,
                             seed=seed, eot_samples=eot,
                             from_logits=from_logits, **opts)

    return run


def _square(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
            **opts):
    opts.setdefault("queries", 5000)
    return _attacks.square(model, x, y, eps=eps, norm=norm, clip=clip,
                           seed=seed, from_logits=from_logits, **opts)


def _fab(targeted):
    def run(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
            **opts):
        if targeted:
            # AutoAttack's FAB-T: the 9 most likely other classes.
            opts.setdefault("target_classes", min(9, classes - 1))
        return _attacks.fab(model, x, y, eps=eps, norm=norm, clip=clip,
                            seed=seed, targeted=targeted,
                            from_logits=from_logits, **opts)

    return run


def _deepfool(model, x, y, *, eps, norm, clip, seed, eot, from_logits,
              classes, **opts):
    return _attacks.deepfool(model, x, y, eps=eps, norm=norm, clip=clip,
                             from_logits=from_logits, **opts)


_SET = ("eps", "norm", "clip", "from_logits", "seed", "eot_samples")
ATTACKS = {
    "fgsm": _Attack("fgsm", True, False, _fgsm, _attacks.pgd,
                    _SET + ("steps", "random_start")),
    "pgd": _Attack("pgd", True, True, _pgd, _attacks.pgd, _SET),
    "apgd-ce": _Attack("apgd-ce", True, True, _apgd("ce", False),
                       _attacks.apgd, _SET),
    "apgd-dlr": _Attack("apgd-dlr", True, True, _apgd("dlr", False),
                        _attacks.apgd, _SET),
    "apgd-t": _Attack("apgd-t", True, True, _apgd("dlr", True), _attacks.apgd,
                      _SET),
    "fab": _Attack("fab", True, True, _fab(False), _attacks.fab,
                   _SET + ("targeted",)),
    "fab-t": _Attack("fab-t", True, True, _fab(True), _attacks.fab,
                     _SET + ("targeted",)),
    "deepfool": _Attack("deepfool", True, True, _deepfool, _attacks.deepfool,
                        _SET),
    "square": _Attack("square", False, True, _square, _attacks.square, _SET),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything the later stages need, fixed before any attack runs.

    `common` holds the keyword arguments every attack runner takes; its
    `classes` is filled in from the first chunk's clean outputs
    (`with_classes`).
    """

    model: object
    eps: list
    scalar_eps: bool
    norm: str
    attacks: list  # of (_Attack, options)
    eot_samples: object
    batch_size: int
    seed: object
    checks: bool
    metrics: bool
    progress: object
    common: dict

    @property
    def names(self):
        """Attack names in the order they run."""
        return [a.name for a, _ in self.attacks]

    @property
    def fgsm_check(self):
        """Whether the single-step check applies (an iterative white-box
        attack is in the suite)."""
        return any(a.white_box and a.iterative for a, _ in self.attacks)

    def with_classes(self, classes):
        """The plan with the model's number of classes known."""
        return dataclasses.replace(self, common=dict(self.common,
                                                     classes=int(classes)))


def make_plan(model, *, eps, norm, attacks, eot_samples, batch_size, seed,
              clip, from_logits, checks, metrics, progress):
    """Checks every argument of `evaluate_robustness` but the data (before
    any work). Returns a `Plan`.

    Example: `plan = make_plan(model, eps=0.1, norm="linf", ...)`.
    """
    validation.check_model(model)
    norm = validation.check_norm(norm)
    clip = validation.check_clip(clip)
    eps_list, scalar = validation.parse_eps(eps)
    attack_list = parse_attacks(attacks)
    eot = 1 if eot_samples is None else validation.check_int(
        "eot_samples", eot_samples)
    batch_size = 500 if batch_size is None else validation.check_int(
        "batch_size", batch_size)
    if seed is not None:
        ops.seed_tensor(seed)
    validation.check_from_logits(from_logits)
    if progress is not None:  # True or False; None is resolved per run
        progress = show(progress)
    return Plan(
        model=model, eps=eps_list, scalar_eps=scalar, norm=norm,
        attacks=attack_list, eot_samples=eot_samples, batch_size=batch_size,
        seed=seed, checks=bool(checks), metrics=bool(metrics),
        progress=progress,
        common=dict(norm=norm, clip=clip, eot=eot, from_logits=from_logits,
                    classes=None),
    )


def classes_of(plan, x):
    """The model's number of classes (`ops.num_classes`: the count it
    declares, else the width of its logits on the first example of `x`,
    the first chunk); checks `x` against the model's input shape first.

    Example: `plan = plan.with_classes(classes_of(plan, x[:8]))`.
    """
    validation.check_input_shape(plan.model, x)
    return ops.num_classes(plan.model, x, plan.common["from_logits"])


def warn_eps_range(plan, x):
    """Warns (`validation.EpsRangeWarning`) when a budget of the plan is
    larger than the data's range under its norm: the clip box, or without
    one the range of `x` (the first chunk). Returns the message or None.

    Example: `warn_eps_range(plan, x[:8])`.
    """
    x = np.asarray(x) if not isinstance(x, (dict, list, tuple)) else None
    if x is None or x.size == 0 or not np.issubdtype(x.dtype, np.number):
        return None
    box = plan.common["clip"]
    if box is None:
        box = (float(np.min(x)), float(np.max(x)))
    return validation.warn_eps_range(plan.eps, plan.norm, box,
                                     int(np.prod(x.shape[1:])), stacklevel=5)


def parse_attacks(attacks):
    """Turns the `attacks` argument into a list of `(attack, options)`.

    Args:
        attacks: `"standard"`, a comma-separated string, or a list of names
            from `ATTACKS`, each optionally a `(name, options)` pair.

    Returns:
        A list of `(attack, options)` pairs in the order they run.

    Raises:
        ValueError: for an unknown or repeated attack or an unknown option.

    Example:

    >>> [a.name for a, _ in parse_attacks("pgd,apgd-ce")]
    ['pgd', 'apgd-ce']
    """
    if isinstance(attacks, str):
        items = (list(STANDARD) if attacks.strip() == "standard"
                 else [a.strip() for a in attacks.split(",")])
    elif isinstance(attacks, (list, tuple)):
        items = list(attacks)
    else:
        items = None
    if not items:
        raise ValueError(
            f"attacks must be 'standard' or a list of attack names from "
            f"{sorted(ATTACKS)}. Received: attacks={attacks!r}"
        )
    plan = []
    for item in items:
        plan += _parse_item(item, attacks)
    if len({a.name for a, _ in plan}) != len(plan):
        raise ValueError(
            f"attacks must not repeat an attack. Received: attacks={attacks!r}"
        )
    return plan


def _parse_item(item, attacks):
    """One `name` or `(name, options)` entry of `attacks`, as a list of
    `(attack, options)` pairs (`"standard"` gives four)."""
    options = {}
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(
        item[1], dict
    ):
        item, options = item
    if item == "standard":
        return [(ATTACKS[a], {}) for a in STANDARD]
    if not isinstance(item, str) or item not in ATTACKS:
        raise ValueError(
            f"attacks must name attacks from {sorted(ATTACKS)} or "
            f"'standard'. Received: attacks={attacks!r} (unknown: "
            f"{item!r})"
        )
    attack = ATTACKS[item]
    unknown = sorted(set(options) - set(attack.option_names()))
    if unknown:
        raise ValueError(
            f"attacks options for {item!r} must be among "
            f"{attack.option_names()}. Received: attacks={attacks!r} "
            f"(unknown options: {unknown})"
        )
    return [(attack, dict(options))]
