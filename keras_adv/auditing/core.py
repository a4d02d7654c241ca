"""`audit`: evasion, examples, certification and poisoning of one model, in
one `AuditReport`."""

import base64
import io
import time

import numpy as np

from keras_adv import reporting, validation
from keras_adv.attacks import apgd
from keras_adv.auditing.report import AuditReport
from keras_adv.certification import evaluate_certified
from keras_adv.evaluation import evaluate_robustness
from keras_adv.generative import image_grid
from keras_adv.models.loading import keras_view
from keras_adv.poisoning import scan_training_set

GRID_ROWS = 8  # example rows in the grid: half broken, half held if possible
GRID_POOL = 16  # examples the grid's rows are chosen from
SUSPICIOUS = 16  # training images shown as the most suspicious


def audit(model, x, y, *, eps, norm="linf", clip=(0.0, 1.0), x_train=None,
          y_train=None, sigma=None, num_examples=None, seed=None,
          attacks="standard", poison_alpha=0.05, expected_fraction=None,
          n=1000, batch_size=None, from_logits=None, progress=None,
          evasion=None, describe=None):
    """The threat model of `model` in one report: the attack suite, an
    example grid, randomized-smoothing certification and a poisoning scan.

    Args:
        model: a Keras model, or a SavedModel from
            `keras_adv.models.load_model`.
        x, y: test inputs in `[0, 1]` and their labels, sparse or one-hot
            (made sparse once, so every section names the same classes).
        eps: a budget or a list of them.
        norm: `"linf"` or `"l2"`.
        clip: the box of valid inputs of the attacks and the example grid,
            as `evaluate_robustness` takes it.
        x_train, y_train: the training set, for the poisoning scan
            (`poisoning.scan_training_set`: its verdict, and spectral
            signatures and activation clustering beside it), labels sparse
            or one-hot; None skips it.
        sigma: the smoothing noise, for certification; None skips it.
        num_examples: audit the first N examples, a positive integer
            (None: all).
        seed: one seed for every random draw (None: the global generator).
        attacks: the suite, as `evaluate_robustness` takes it.
        poison_alpha: the poisoning scan's false-alarm level, in (0, 1):
            a clean training set is called poisoned with about this
            probability (`scan_training_set`'s `alpha`, named apart from
            certification's failure probability, which stays 0.001).
        expected_fraction: the poisoned share of a suspect class, in
            [0, 1], as `scan_training_set` takes it: None (the default)
            estimates it per suspect class.
        n: certification noise samples per example (n0 = 100).
        batch_size, from_logits: as `evaluate_robustness`.
        progress: as `evaluate_robustness` (None: on a terminal for long
            runs), or a callable, which is then called with a short text as
            each stage starts (the command prints it) and the attacks
            report their progress too.
        evasion: a `RobustnessReport` already made on the same examples,
            eps and norm (the suite is then not run again).
        describe: how the page names the run, a dict with any of `"data"`,
            `"train_data"`, `"source"` (the model's file) and `"command"`
            (what reproduces the run); None names the data `"arrays"` and
            the run a call from Python.

    Returns:
        An `AuditReport`; `to_html(path)` writes the page.

    Raises:
        ValueError: as the functions it calls, `y=None`, or a bad
            `num_examples`, `poison_alpha` or `expected_fraction`, before
            any work.
        ModuleNotFoundError: matplotlib or jinja2 (or, with training data,
            scikit-learn) missing, before any work; the message names
            `pip install 'keras_adv[audit]'`.

    Example:

    >>> report = keras_adv.audit(model, x, y, eps=[0.05, 0.1], sigma=0.25,
    ...                          x_train=x_tr, y_train=y_tr)  # doctest: +SKIP
    >>> report.to_html("audit/report.html")  # doctest: +SKIP
    """
    start = time.perf_counter()
    x, y, eps_list, y_train = _check(x, y, eps=eps, sigma=sigma,
                                     x_train=x_train, y_train=y_train,
                                     num_examples=num_examples)
    _check_scan(poison_alpha, expected_fraction)
    describe = _check_describe(describe)
    stage = progress if callable(progress) else (lambda text: None)
    progress = True if callable(progress) else progress
    if evasion is None:
        stage(f"attacks on {len(x)} examples at eps "
              + ", ".join(f"{e:g}" for e in eps_list))
        evasion = evaluate_robustness(
            model, x, y, eps=eps_list, norm=norm, clip=clip, attacks=attacks,
            seed=seed,
            batch_size=batch_size, from_logits=from_logits, progress=progress)
    elif (list(evasion.eps) != list(eps_list) or evasion.norm != norm
          or evasion.num_examples != len(x)):
        raise ValueError(
            "evasion must be a RobustnessReport of the same examples, eps and "
            f"norm. Received: evasion with eps {list(evasion.eps)}, norm "
            f"{evasion.norm}, {evasion.num_examples} examples")
    stage("the example grid")
    examples, grid = _examples(model, x, y, eps_list, norm, clip, seed,
                               from_logits)
    figures = {"robustness": _png(evasion.plot), "examples": grid}
    cert = None
    if sigma is not None:
        stage(f"certification (sigma {sigma:g}, n {n})")
        cert = evaluate_certified(model, x, y, sigma=sigma, n=n, seed=seed,
                                  progress=False)
        figures["certified"] = _png(cert.plot)
    poison, suspicious = None, []
    if x_train is not None:
        stage(f"poisoning scan of {len(x_train)} training rows")
        # An AdversarialModel's representation is its wrapped model's.
        inner = getattr(model, "base", None) or model
        poison = scan_training_set(keras_view(inner), x_train, y_train,
                                   alpha=poison_alpha,
                                   expected_fraction=expected_fraction,
                                   seed=seed, progress=False)
        suspicious = _suspicious(poison)
        if suspicious:
            figures["suspicious"] = _grid_png(
                np.asarray(x_train)[suspicious],
                [f"row {i}, label {int(y_train[i])}" for i in suspicious])
    summary = _summary(model, x, eps_list, norm, sigma, seed, describe)
    summary["seconds"] = time.perf_counter() - start
    return AuditReport(summary=summary, evasion=evasion, examples=examples,
                       certification=cert, poisoning=poison,
                       suspicious=suspicious, figures=figures)


def _check(x, y, *, eps, sigma, x_train, y_train, num_examples):
    """The audit's arguments checked before any work: the page's modules,
    eps, sigma, `num_examples`, and labels (sparse or one-hot) made sparse
    once. Returns `(x, y, eps list, y_train)`, x and y cut to
    `num_examples`."""
    check_dependencies(scan=x_train is not None)
    eps_list = validation.parse_eps(eps)[0]
    if sigma is not None:
        validation.check_number("sigma", sigma, positive=True)
    if num_examples is not None:
        validation.check_int("num_examples", num_examples)
    if (x_train is None) != (y_train is None):
        given = "x_train" if y_train is None else "y_train"
        raise ValueError("x_train and y_train must be given together. "
                         f"Received: {given} alone")
    if y is None:
        raise ValueError("y must be the labels of x: the audit measures "
                         "accuracy against them. Received: y=None")
    x = np.asarray(x)
    y = validation.check_label_array(y, len(x))[0]
    if y_train is not None:
        y_train = validation.check_label_array(
            y_train, len(np.asarray(x_train)), name="y_train")[0]
    return x[:num_examples], y[:num_examples], eps_list, y_train


def _check_scan(poison_alpha, expected_fraction):
    """The poisoning scan's settings, checked before any work (as
    `scan_training_set` checks them, under the audit's names)."""
    validation.check_probability("poison_alpha", poison_alpha)
    if expected_fraction is not None:
        validation.check_rate(expected_fraction, "expected_fraction")


# The modules the audit needs beyond TensorFlow: (module, what for).
DEPENDENCIES = (("matplotlib", "its figures"), ("jinja2", "its page"))


def check_dependencies(*, scan=False):
    """Raises `ModuleNotFoundError` naming `pip install 'keras_adv[audit]'`
    when a module the audit needs is missing (scikit-learn too when it
    scans training data), before any work starts.

    Example: `check_dependencies(scan=True)`.
    """
    needed = DEPENDENCIES + ((("sklearn", "the poisoning scan"),) if scan
                             else ())
    module = reporting.missing_module([name for name, _ in needed])
    if module is not None:
        use = dict(needed)[module]
        extra = "poisoning" if module == "sklearn" else "audit"
        raise ModuleNotFoundError(
            f"keras_adv.audit needs {module} for {use}: pip install "
            f"'keras_adv[{extra}]'. Received: {module} not installed",
            name=module)


# What `describe` may name, with the page's words when it does not.
DESCRIBE = {"data": "arrays", "train_data": None, "source": "in memory",
            "command": "keras_adv.audit(...) from Python"}


def _check_describe(describe):
    """`describe` with every key of `DESCRIBE` (its defaults filled in);
    refuses anything but a dict of those keys, before any work."""
    if describe is None:
        describe = {}
    if not isinstance(describe, dict) or set(describe) - set(DESCRIBE):
        unknown = (sorted(set(describe) - set(DESCRIBE))
                   if isinstance(describe, dict) else None)
        raise ValueError(
            f"describe must be a dict with keys among {sorted(DESCRIBE)}. "
            f"Received: describe={validation.short(describe)}"
            + (f" (unknown: {unknown})" if unknown else ""))
    return {**DESCRIBE, **{k: v for k, v in describe.items()
                           if v is not None}}


def _summary(model, x, eps, norm, sigma, seed, describe):
    import keras
    import tensorflow as tf

    import keras_adv

    count = getattr(model, "count_params", None)
    return {
        "name": getattr(model, "name", type(model).__name__),
        "parameters": int(count()) if callable(count) else None,
        "input_shape": list(x.shape[1:]),
        "source": describe["source"],
        "data": describe["data"], "train_data": describe["train_data"],
        "num_examples": int(len(x)), "norm": norm,
        "eps": [float(e) for e in eps], "sigma": sigma, "seed": seed,
        "versions": {"keras_adv": keras_adv.__version__,
                     "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "command": describe["command"],
    }


def _predict(model, x, from_logits):
    from keras_adv import ops

    return ops.batched_logits(model, x, 256, from_logits).argmax(-1)


def _examples(model, x, y, eps, norm, clip, seed, from_logits):
    """The grid's rows (chosen by `seed` among examples the strongest eps
    broke and held) and the grid as a PNG."""
    rng = validation.numpy_rng(seed)
    pool = np.sort(rng.permutation(len(x))[:GRID_POOL])
    xs, ys = x[pool].astype(np.float32), y[pool]
    clean = _predict(model, xs, from_logits)
    advs = [np.asarray(apgd(model, xs, ys, eps=e, norm=norm, clip=clip,
                            steps=50, seed=seed, from_logits=from_logits))
            for e in eps]
    preds = [_predict(model, a, from_logits) for a in advs]
    ok = clean == ys
    broken = np.flatnonzero(ok & (preds[-1] != ys))
    held = np.flatnonzero(ok & (preds[-1] == ys))
    half = GRID_ROWS // 2
    chosen = list(broken[:half]) + list(held[:GRID_ROWS - min(half,
                                                               len(broken))])
    chosen = sorted(chosen[:GRID_ROWS] or range(min(GRID_ROWS, len(pool))))
    rows = [{"index": int(pool[k]), "label": int(ys[k]),
             "clean": int(clean[k]),
             "adversarial": [int(p[k]) for p in preds]} for k in chosen]
    return rows, _examples_png(xs[chosen], [advs_k[chosen] for advs_k in advs],
                               rows, eps)


def _examples_png(clean, advs, rows, eps):
    """The example grid: per row, the clean image, the adversarial image at
    each eps (red title when broken) and the perturbation magnified."""
    cells = []
    for r, row in enumerate(rows):
        line = [(clean[r], f"label {row['label']}\npred {row['clean']}",
                 "black")]
        for i, e in enumerate(eps):
            p = row["adversarial"][i]
            line.append((advs[i][r], f"eps {e:g}\npred {p}",
                         "darkred" if p != row["label"] else "darkgreen"))
        delta = advs[-1][r] - clean[r]
        scale = np.abs(delta).max() or 1.0
        line.append((0.5 + 0.5 * delta / scale, "perturbation\n(magnified)",
                     "black"))
        cells.append(line)
    return _image_grid(cells, width=1.7, fontsize=8)


def _grid_png(images, titles, cols=8):
    """Images with their titles, `cols` per row."""
    cells = [(img, title, "black") for img, title in zip(images, titles)]
    return _image_grid([cells[k:k + cols] for k in range(0, len(cells), cols)]
                       or [[]], width=1.6, fontsize=7, cols=cols)


def _image_grid(rows, *, width, fontsize, cols=None):
    """Rows of `(image, title, title colour)` cells as base64 PNG text:
    each row laid out by `generative.image_grid` (the one image grid), its
    titles drawn above their tiles. Integer images are read in (0, 255),
    others in (0, 1) (`validation.data_box`), clipped to that box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = cols or max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), 1, squeeze=False,
                             figsize=(width * cols, 1.8 * len(rows)))
    try:
        for ax, row in zip(axes[:, 0], rows):
            ax.axis("off")
            if row:
                tiles = image_grid(_unit([img for img, _, _ in row]),
                                   cols=cols)
                ax.imshow(tiles[..., 0] if tiles.shape[-1] == 1 else tiles,
                          cmap="gray", vmin=0, vmax=255)
            for c, (_, title, color) in enumerate(row):
                ax.text((c + 0.5) / cols, 1.0, title, transform=ax.transAxes,
                        ha="center", va="bottom", fontsize=fontsize,
                        color=color)
        fig.tight_layout()
        return _png(lambda buf: fig.savefig(buf, format="png", dpi=80))
    finally:
        plt.close(fig)


def _unit(images):
    """Images as float32 `(n, H, W, C)` in [0, 1]: scaled from their data
    box and clipped (a channel axis added to 2-D images)."""
    x = np.stack([np.asarray(img) for img in images])
    low, high = validation.data_box(x)
    x = np.clip((x.astype(np.float32) - low) / (high - low), 0.0, 1.0)
    return x[..., None] if x.ndim == 3 else x


def _png(write):
    """What `write(buffer)` draws (a report's `plot`, a figure's
    `savefig`), as base64 PNG text."""
    buf = io.BytesIO()
    write(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _suspicious(poison):
    """The rows the scan's verdict recommends removing (`flagged()`), up to
    `SUSPICIOUS`, taken in turn from each suspect class; none when the
    verdict is clean."""
    if not poison.poisoned:
        return []
    per_class = [poison.classes[str(c)]["flagged"]
                 for c in poison.suspect_classes]
    order = [rows[k] for k in range(max(map(len, per_class), default=0))
             for rows in per_class if k < len(rows)]
    return [int(i) for i in order[:SUSPICIOUS]]

