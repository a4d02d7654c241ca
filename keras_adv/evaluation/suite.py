"""`evaluate_robustness`: worst-case robust accuracy over an attack suite,
with gradient-masking checks."""

import dataclasses
import inspect
import math
import sys
import time

import numpy as np
import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.attacks import apgd, deepfool, pgd, square
from keras_adv.evaluation import masking
from keras_adv.evaluation.metrics import empirical_robustness, loss_sensitivity
from keras_adv.evaluation.report import MaskingWarning, RobustnessReport

STANDARD = ("apgd-ce", "apgd-t", "square")


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
    return pgd(model, x, y, eps=eps, norm=norm, clip=clip, steps=1,
               random_start=False, eot_samples=eot, from_logits=from_logits,
               seed=0, **opts)


def _pgd(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
         **opts):
    opts.setdefault("steps", 40)
    return pgd(model, x, y, eps=eps, norm=norm, clip=clip, seed=seed,
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
        return apgd(model, x, y, eps=eps, norm=norm, clip=clip, seed=seed,
                    eot_samples=eot, from_logits=from_logits, **opts)

    return run


def _square(model, x, y, *, eps, norm, clip, seed, eot, from_logits, classes,
            **opts):
    opts.setdefault("queries", 5000)
    return square(model, x, y, eps=eps, norm=norm, clip=clip, seed=seed,
                  from_logits=from_logits, **opts)


def _deepfool(model, x, y, *, eps, norm, clip, seed, eot, from_logits,
              classes, **opts):
    return deepfool(model, x, y, eps=eps, norm=norm, clip=clip,
                    from_logits=from_logits, **opts)


_SET = ("eps", "norm", "clip", "from_logits", "seed", "eot_samples")
ATTACKS = {
    "fgsm": _Attack("fgsm", True, False, _fgsm, pgd,
                    _SET + ("steps", "random_start")),
    "pgd": _Attack("pgd", True, True, _pgd, pgd, _SET),
    "apgd-ce": _Attack("apgd-ce", True, True, _apgd("ce", False), apgd, _SET),
    "apgd-dlr": _Attack("apgd-dlr", True, True, _apgd("dlr", False), apgd,
                        _SET),
    "apgd-t": _Attack("apgd-t", True, True, _apgd("dlr", True), apgd, _SET),
    "deepfool": _Attack("deepfool", True, True, _deepfool, deepfool, _SET),
    "square": _Attack("square", False, True, _square, square, _SET),
}


def evaluate_robustness(
    model,
    x,
    y,
    *,
    eps,
    norm="linf",
    attacks="standard",
    eot_samples=None,
    batch_size=None,
    seed=None,
    clip=(0.0, 1.0),
    from_logits=None,
    checks=True,
    metrics=True,
    progress=None,
):
    """Worst-case robust accuracy under a suite of attacks, with
    gradient-masking checks.

    The `"standard"` suite is AutoAttack's (Croce & Hein 2020) without FAB:
    APGD-CE, then APGD-T (targeted DLR against the 9 most likely other
    classes), then Square (5000 queries), each run only on the examples
    that are still correctly classified, so an example counts as robust
    only if every attack failed on it (the worst case per example). Every
    adversarial example is checked (finite, inside the eps-ball and the box)
    before it counts.

    With `checks=True` the report carries a `MaskingWarning` for each sign of
    gradient masking (Carlini et al. 2019): input gradients that are zero,
    missing or NaN; outputs that change between identical calls while
    `eot_samples` is not set; single-step FGSM beating the iterative
    attacks; the black-box attack beating the white-box ones; accuracy that
    does not fall toward zero as eps grows (checked with PGD from x at a
    budget covering the whole box, and along the eps curve). These
    diagnostics do not enter the robust accuracy; a normal undefended model
    gets no warning.

    Args:
        model: a Keras model or callable returning logits or probabilities
            `(batch, classes)` (softmax outputs of Keras models detected).
        x: inputs inside `clip`.
        y: labels, sparse or one-hot; `None` uses the model's predictions.
        eps: a budget, or a list of budgets (a robustness curve).
        norm: `"linf"` or `"l2"`.
        attacks: `"standard"`, a comma-separated string, or a list of names
            from `ATTACKS` (`"fgsm"`, `"pgd"`, `"apgd-ce"`, `"apgd-dlr"`,
            `"apgd-t"`, `"deepfool"`, `"square"`), each optionally a
            `(name, options)` pair whose options go to the attack function
            (e.g. `("square", {"queries": 1000})`), run in that order.
        eot_samples: `None` for deterministic models; for randomised ones
            the number of forward passes each gradient averages over (EOT).
        batch_size: examples per attack call (`None`: 500).
        seed: integer for a repeatable evaluation.
        clip: `(min, max)` box of valid inputs, or `None`.
        from_logits: see `keras_adv.attacks.pgd` (`False` when the model
            returns probabilities that are not a detectable softmax).
        checks: run the gradient-masking checks.
        metrics: compute the empirical robustness (DeepFool) and loss
            sensitivity on up to 500 examples.
        progress: show a progress bar on stderr; `None` shows it on a
            terminal when the run covers 200 or more example-eps pairs.

    Returns:
        A `RobustnessReport`.

    Raises:
        ValueError: naming the argument, for a model that is not
            callable, an unknown attack, attack option or norm, a negative
            or non-numeric eps, bad labels, or `x` that is empty,
            non-finite, outside `clip` or not of the model's input shape.

    Example:

    >>> (_, _), (x, y) = keras_adv.datasets.load("mnist5k")  # doctest: +SKIP
    >>> report = evaluate_robustness(model, x[:500], y[:500],
    ...                              eps=[0.1, 0.2, 0.3])  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
    >>> report.plot("robustness.png")  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    validation.check_model(model)
    norm = validation.check_norm(norm)
    clip = validation.check_clip(clip)
    eps_list, scalar = validation.parse_eps(eps)
    plan = parse_attacks(attacks)
    eot = 1 if eot_samples is None else validation.check_int("eot_samples",
                                                       eot_samples)
    batch_size = 500 if batch_size is None else validation.check_int(
        "batch_size", batch_size)
    if seed is not None:
        ops.seed_tensor(seed)
    validation.check_from_logits(from_logits)
    x = validation.check_x(x, clip)
    validation.check_input_shape(model, x)
    x = x.numpy()
    clean = ops.batched_logits(model, x, batch_size, from_logits)
    if clean.ndim != 2:
        raise ValueError(
            "model must return logits of shape (batch, classes). Received: "
            f"model output with shape {clean.shape}"
        )
    classes = clean.shape[-1]
    pred = np.argmax(clean, axis=-1)
    y = pred.copy() if y is None else validation.check_labels(
        y, len(x), classes).numpy()
    correct = pred == y
    n = len(x)
    common = dict(norm=norm, clip=clip, eot=eot, from_logits=from_logits,
                  classes=classes)
    names = [a.name for a, _ in plan]
    timings = {name: 0.0 for name in names}
    curves = {name: [0.0] * len(eps_list) for name in names}
    robust_curve = [0.0] * len(eps_list)
    warnings, diagnostics, invalid = [], {}, {}
    show = progress if progress is not None else (
        sys.stderr.isatty() and n * len(eps_list) >= 200)
    bar = _Progress(len(eps_list) * len(plan) + (2 if checks else 0),
                    enabled=bool(show))

    white_ok = True
    if checks:
        t0 = time.perf_counter()
        idx = np.flatnonzero(correct)[:256]
        found, state, stats = masking.check_gradients(
            model, x[idx], y[idx], from_logits)
        warnings += found
        diagnostics["gradients"] = stats
        white_ok = state != "missing"
        if eot_samples is None:
            found, diff = masking.check_randomness(model, x[:64], from_logits)
            warnings += found
            diagnostics["output_difference"] = diff
        timings["checks"] = time.perf_counter() - t0
        bar.step("checks")
    elif _no_gradient(model, x[:1], y[:1], from_logits):
        white_ok = False
        warnings.append(MaskingWarning(
            "gradients", "The model gives no input gradient: white-box "
            "attacks were skipped; only black-box attacks ran."))

    has_iterative_white = any(a.white_box and a.iterative for a, _ in plan)
    has_black_after_white = any(
        not a.white_box and any(b.white_box for b, _ in plan[:i])
        for i, (a, _) in enumerate(plan))
    fgsm_curve, fgsm_only, black_only = [], [], []
    for i, e in enumerate(eps_list):
        robust = correct.copy()
        after_white = None
        broke_black = np.zeros(n, bool)
        for j, (attack, options) in enumerate(plan):
            bar.step(f"eps={e:g} {attack.name}")
            if not attack.white_box and after_white is None:
                after_white = robust.copy()
            if attack.white_box and not white_ok:
                curves[attack.name][i] = float(robust.mean())
                continue
            t0 = time.perf_counter()
            run_seed = None if seed is None else seed + 1000 * i + j
            broken, bad = _attack_points(
                attack, options, model, x, y, np.flatnonzero(robust), e,
                run_seed, batch_size, common)
            robust[broken] = False
            if not attack.white_box:
                broke_black[broken] = True
            invalid[attack.name] = invalid.get(attack.name, 0) + bad
            timings[attack.name] += time.perf_counter() - t0
            curves[attack.name][i] = float(robust.mean())
        robust_curve[i] = float(robust.mean())
        if after_white is None:
            after_white = robust.copy()
        if checks and white_ok and has_black_after_white:
            count = int((broke_black & after_white).sum())
            black_only.append(count)
            if masking.significant(count, n):
                black = [a.name for a, _ in plan if not a.white_box]
                warnings.append(masking.black_box_warning(e, black, count, n))
        if checks and white_ok and has_iterative_white and e > 0:
            t0 = time.perf_counter()
            broken, _ = _attack_points(
                ATTACKS["fgsm"], {}, model, x, y, np.flatnonzero(correct), e,
                None, batch_size, common)
            hit = np.zeros(n, bool)
            hit[broken] = True
            count = int((hit & after_white).sum())
            fgsm_curve.append(float((correct & ~hit).mean()))
            fgsm_only.append(count)
            if masking.significant(count, n):
                warnings.append(masking.single_step_warning(e, count, n))
            timings["checks"] += time.perf_counter() - t0
    if fgsm_curve:
        diagnostics["fgsm_accuracy"] = fgsm_curve
        diagnostics["fgsm_only"] = fgsm_only
    if black_only:
        diagnostics["black_box_only"] = black_only

    if checks:
        t0 = time.perf_counter()
        big_eps, big_acc = None, None
        if white_ok:
            big_eps, big_acc = _large_eps_accuracy(
                model, x, y, correct, eps_list, batch_size, common)
            diagnostics["large_eps"] = {"eps": big_eps, "accuracy": big_acc}
        ordered = sorted(range(len(eps_list)), key=lambda k: eps_list[k])
        warnings += masking.eps_growth_warnings(
            big_eps if big_eps is not None else 0.0, big_acc,
            [eps_list[k] for k in ordered], [robust_curve[k] for k in ordered])
        timings["checks"] += time.perf_counter() - t0
        bar.step("checks")
    for name, count in invalid.items():
        if count:
            warnings.append(masking.invalid_warning(name, count))

    metric_values = {}
    if metrics and white_ok and correct.any():
        t0 = time.perf_counter()
        idx = np.arange(min(n, 500))
        metric_values["empirical_robustness"] = empirical_robustness(
            model, x[idx], y[idx], norm=norm, clip=clip,
            batch_size=batch_size, from_logits=from_logits)
        metric_values["loss_sensitivity"] = loss_sensitivity(
            model, x[idx], y[idx], batch_size=batch_size,
            from_logits=from_logits)
        timings["metrics"] = time.perf_counter() - t0
    bar.close()
    return RobustnessReport(
        eps=tuple(eps_list), norm=norm, attacks=tuple(names),
        num_examples=n, clean_accuracy=float(correct.mean()),
        robust_accuracy_curve=tuple(robust_curve),
        attack_accuracy_curve={k: tuple(v) for k, v in curves.items()},
        timings=timings, seconds=time.perf_counter() - t_start,
        warnings=warnings, diagnostics=diagnostics, metrics=metric_values,
        scalar_eps=scalar,
    )


def parse_attacks(attacks):
    """Turns the `attacks` argument into a list of `(attack, options)`.

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
        options = {}
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(
            item[1], dict
        ):
            item, options = item
        if item == "standard":
            plan += [(ATTACKS[a], {}) for a in STANDARD]
            continue
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
        plan.append((attack, dict(options)))
    if len({a.name for a, _ in plan}) != len(plan):
        raise ValueError(
            f"attacks must not repeat an attack. Received: attacks={attacks!r}"
        )
    return plan


def _attack_points(attack, options, model, x, y, idx, eps, seed, batch_size,
                   common):
    """Runs one attack on x[idx]; returns the indices it broke (valid
    adversarial examples only) and the number of invalid successes."""
    broken, bad = [], 0
    for start in range(0, idx.size, batch_size):
        part = idx[start:start + batch_size]
        adv = attack.run(model, x[part], y[part], eps=eps, seed=seed,
                         **dict(common, **options))
        adv = np.asarray(adv)
        wrong = np.argmax(ops.batched_logits(model, adv, batch_size,
                                  common["from_logits"]), -1) != y[part]
        ok = masking.valid_points(adv, x[part], eps, common["norm"],
                                  common["clip"])
        broken.append(part[wrong & ok])
        bad += int((wrong & ~ok).sum())
    if not broken:
        return np.zeros(0, int), 0
    return np.concatenate(broken), bad


def _large_eps_accuracy(model, x, y, correct, eps_list, batch_size, common):
    """Accuracy under PGD from x (CE, then margin) at a budget that covers
    the whole input box, on up to 200 correctly classified examples."""
    clip, norm = common["clip"], common["norm"]
    idx = np.flatnonzero(correct)[:200]
    if clip is not None:
        span = clip[1] - clip[0]
        big = span if norm == "linf" else span * math.sqrt(x[0].size)
    else:
        big = 10.0 * max(max(eps_list), 0.1)
    if idx.size == 0:
        return big, None
    robust = np.ones(idx.size, bool)
    for loss in ("ce", "margin"):
        live = np.flatnonzero(robust)
        if live.size == 0:
            break
        broken, _ = _attack_points(
            ATTACKS["pgd"], {"loss": loss, "steps": 20, "random_start": False},
            model, x[idx], y[idx], live, big, 0, batch_size, common)
        robust[broken] = False
    return big, float(robust.mean())


def _no_gradient(model, x, y, from_logits):
    from keras_adv.evaluation.metrics import input_gradient

    return input_gradient(model, x, y, from_logits) is None


class _Progress:
    """A one-line text progress bar on stderr."""

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.perf_counter()

    def step(self, label):
        if not self.enabled:
            return
        self.done += 1
        frac = min(self.done / max(self.total, 1), 1.0)
        filled = int(24 * frac)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (24 - filled)}] {self.done}/{self.total} "
            f"{elapsed:6.1f}s {label[:40]:<40}"
        )
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
