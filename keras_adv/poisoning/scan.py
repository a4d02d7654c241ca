"""`scan_training_set`: a verdict on a training set (is it poisoned, which
classes, which rows to remove), beside each detector's own rows."""

import dataclasses
import time
import typing

import numpy as np

from keras_adv import ops, reporting, validation
from keras_adv.poisoning import features, verdict
from keras_adv.poisoning.clustering import flag_clusters
from keras_adv.poisoning.features import LONG_ROWS
from keras_adv.poisoning.spectral import _one_thread, flag_classes
from keras_adv.poisoning.strip import strip_entropy
from keras_adv.progress import Progress

METHODS = ("both", "spectral", "clustering", "verdict")
BLENDS, HELD = 16, 200  # the trigger test: blends per row, images drawn


@dataclasses.dataclass(eq=False)
class PoisonScanReport(reporting.Report):
    """A verdict on a training set, and the rows each detector flags.

    Attributes:
        num_examples: training rows scanned.
        expected_fraction: the poisoned share of a suspect class given by
            the caller (None: estimated per class).
        layer: the layer whose representations were scanned (None: the
            input of the last layer).
        methods: `{"spectral_signature" | "activation_clustering":
            {"flagged": [row, ...], "per_class": {"<class>": [row, ...]}}}`,
            rows sorted, every class of the labels listed.
        seconds: wall time.
        alpha: the false-alarm level of the whole scan.
        poisoned: the verdict: some class holds a poisoned sub-population.
        suspect_classes: the classes found poisoned, sorted.
        classes: `{"<class>": {"rows", "statistic", "p_value",
            "separated", "entropy_ratio", "entropy_p_value", "suspect",
            "estimated_fraction", "flagged", "abstained"}}` (see
            `verdict.decide_classes`); `abstained` says why a class was not
            tested (None when it was).

    Example:

    >>> r = PoisonScanReport(4, 0.5, None, {"spectral_signature": {
    ...     "flagged": [3], "per_class": {"0": [], "1": [3]}}}, 0.1)
    >>> r.flagged("spectral_signature"), r.poisoned, r.flagged()
    ([3], False, [])
    >>> PoisonScanReport.from_json(r.to_json()) == r
    True
    """

    num_examples: int
    expected_fraction: typing.Optional[float]
    layer: str
    methods: dict
    seconds: float
    alpha: float = 0.05
    poisoned: bool = False
    suspect_classes: list = dataclasses.field(default_factory=list)
    classes: dict = dataclasses.field(default_factory=dict)

    def flagged(self, method=None):
        """The rows to remove, sorted: by the verdict (`method=None`: the
        poison clusters of the suspect classes, none when `poisoned` is
        False), or the rows a detector flagged (`"spectral_signature"`,
        `"activation_clustering"`). Example: `report.flagged()`."""
        if method is not None:
            return list(self.methods[method]["flagged"])
        return sorted(int(i) for c in self.classes.values()
                      for i in c["flagged"])

    def table(self):
        """The verdict, the test per class, the number each detector flags.

        Example: `print(report.table())`.
        """
        answer = (f"POISONED: classes {', '.join(map(str, self.suspect_classes))}"
                  if self.poisoned else "no poisoning found")
        lines = [f"Poisoning scan ({self.num_examples} examples, "
                 f"{self.seconds:.1f} s): {answer} at alpha={self.alpha:g}, "
                 f"{len(self.flagged())} rows to remove"]
        for c, e in self.classes.items():
            if e["abstained"]:
                lines.append(f"  class {c}: abstained ({e['abstained']})")
                continue
            note = (f"  SUSPECT, poison share {e['estimated_fraction']:.2f},"
                    f" {len(e['flagged'])} rows" if e["suspect"] else "")
            if e.get("separated") and not e["suspect"]:
                note = (f"  separated, but its cluster loses its class under"
                        f" blending like the rest (entropy ratio "
                        f"{e['entropy_ratio']:.2f}): a natural sub-population")
            lines.append(f"  class {c}: {e['rows']} rows, statistic "
                         f"{e['statistic']:.2f}, p={e['p_value']:.2g}{note}")
        for name, found in self.methods.items():
            lines.append(f"{name}: {len(found['flagged'])} flagged")
        return "\n".join(lines)


def scan_training_set(model, x, y, *, alpha=0.05, method="both",
                      expected_fraction=None, layer=None, remove_factor=1.5,
                      size_threshold=0.35, n_components=10, seed=None,
                      batch_size=256, clip="auto", progress=None):
    """Decides whether a training set is poisoned, and which rows to remove.

    Per class, the representations at `layer` are tested for a poisoned
    sub-population (`verdict.py`): top 10 whitened principal components,
    2-means, the clusters' separation over its mean under one Gaussian of
    the class's size; p-values from a law fitted to clean classes, at
    `alpha / classes` each (Bonferroni). A separated class is suspect when
    its cluster also behaves as a trigger does: blended with images of
    other classes, its rows keep their class (median entropy at most half
    the rest's, STRIP's superimposition), where a natural sub-population
    loses it. A clean training set is called poisoned with probability at
    most about `alpha` (measured: docs/poisoning.md). A suspect class's
    poison cluster (the one whose members spread more) is the rows to
    remove, `report.flagged()`. The
    spectral signature (Tran et al. 2018) and activation clustering (Chen
    et al. 2018) also run, their rows in `report.flagged(name)`.

    Args:
        model: the Keras model trained on (x, y).
        x: training images `(n, H, W, C)`.
        y: their labels, sparse or one-hot, as many classes as the model.
        alpha: false-alarm level of the whole scan, in (0, 1).
        method: `"both"` detectors, `"spectral"`, `"clustering"` or
            `"verdict"` (no detector beside the verdict).
        expected_fraction: poisoned share of a suspect class, in [0, 1]:
            None estimates it per class (the poison cluster's share); a
            value flags that share of each suspect class, the rows nearest
            the poison cluster, and is the spectral signature's share for
            every class.
        layer, remove_factor: as `spectral_signature`.
        size_threshold, n_components: as `activation_clustering`.
        seed: seed of the clustering's ICA and k-means and of the trigger
            test's blends (None: NumPy's global generator).
        batch_size, clip: rows per forward pass; the data box.
        progress: stage lines on stderr (`scan_training_set:
            representations of 5000 rows`); `None`: on a terminal from
            `LONG_ROWS` rows.

    Returns:
        A `PoisonScanReport`. A class with fewer than 50 rows is not tested
        and says so (`classes[c]["abstained"]`).

    Raises:
        ValueError: `alpha` outside (0, 1), an unknown method, one-hot
            labels of another width than the model's outputs, labels beyond
            them, representations that are not finite, and whatever the
            detectors refuse.

    Example:

    >>> report = scan_training_set(model, p.x, p.y)  # doctest: +SKIP
    >>> report.poisoned, report.suspect_classes  # doctest: +SKIP
    (True, [0])
    >>> keep = np.setdiff1d(np.arange(len(p.x)), report.flagged())
    ... # doctest: +SKIP
    """
    start = time.perf_counter()
    labels, classes, x = _check(model, x, y, alpha, method,
                                 expected_fraction, clip)
    remove_factor = validation.check_number("remove_factor", remove_factor,
                                             positive=True)
    validation.check_number("size_threshold", size_threshold, positive=True, upper=0.5)
    validation.check_int("n_components", n_components)
    batch_size = validation.check_int("batch_size", batch_size)
    validation.check_seed(seed)
    with Progress.resolve(progress, len(x), long=LONG_ROWS,
                          prefix="scan_training_set") as stage:
        stage(f"representations of {len(x)} rows")
        feats = features.extract(model, x, layer, batch_size)
        if not np.all(np.isfinite(feats)):
            raise ValueError("the model's representations of x must be finite. "
                             f"Received: {int(np.sum(~np.isfinite(feats).all(axis=1)))}"
                             " rows with NaN or inf")
        entropy = _blend_entropy(model, x, labels, seed, batch_size, clip)
        stage(f"per-class test and trigger test of {len(classes)} classes")
        with _one_thread():
            tests = verdict.decide_classes(feats, labels, classes, alpha=alpha,
                                           expected_fraction=expected_fraction,
                                           entropy=entropy)
        found = {}
        if method in ("both", "spectral"):
            share = expected_fraction if expected_fraction is not None else {
                int(c): e["estimated_fraction"] for c, e in tests.items()
                if e["suspect"]}
            stage("spectral signature")
            with _one_thread():
                found["spectral_signature"] = flag_classes(feats, labels,
                                                           remove_factor, share)
        if method in ("both", "clustering"):
            stage("activation clustering")
            found["activation_clustering"] = flag_clusters(
                feats, labels, n_components, "ica", size_threshold, seed)
    suspects = sorted(int(c) for c, e in tests.items() if e["suspect"])
    return PoisonScanReport(
        num_examples=int(len(x)),
        expected_fraction=(None if expected_fraction is None
                           else float(expected_fraction)),
        layer=layer, methods=_per_class(found, labels, classes),
        seconds=time.perf_counter() - start, alpha=float(alpha),
        poisoned=bool(suspects), suspect_classes=suspects, classes=tests)


def _blend_entropy(model, x, labels, seed, batch_size, clip):
    """The trigger test's blend entropies of a class's rows: each row
    superimposed on `BLENDS` of `HELD` rows of the other classes."""
    rng = validation.numpy_rng(seed)
    box = validation.data_box(x, clip) or (float(np.min(x)),
                                           float(np.max(x)))

    def entropy(c, rows):
        others = np.flatnonzero(labels != c)
        held = x[rng.choice(others, min(HELD, len(others)), replace=False)]
        return strip_entropy(model, x[rows], held, overlays=BLENDS,
                             seed=int(rng.integers(2**31)), clip=box,
                             batch_size=batch_size)

    return entropy


def _check(model, x, y, alpha, method, expected_fraction, clip):
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}. "
                         f"Received: method={method!r}")
    validation.check_probability("alpha", alpha)
    if expected_fraction is not None:
        validation.check_rate(expected_fraction, "expected_fraction")
    validation.check_keras_model(model)
    x = validation.check_images(x, clip=clip, model=model)
    declared = ops.num_classes(model)
    labels, k, one_hot = validation.check_label_array(y, len(x), declared)
    width = np.shape(y)[1] if one_hot else None
    if width is not None and declared is not None and width != declared:
        raise ValueError(f"y must be one-hot over the model's {declared} "
                         f"classes. Received: y of width {width}")
    return labels, range(k), x


def _per_class(found, labels, classes):
    methods = {}
    for name, idx in found.items():
        per_class = {str(int(c)): [int(i) for i in idx[labels[idx] == c]]
                     for c in classes if np.any(labels == c)}
        methods[name] = {"flagged": [int(i) for i in idx],
                         "per_class": per_class}
    return methods
