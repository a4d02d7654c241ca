"""`scan_training_set`: both detectors over a training set, as one report."""

import dataclasses
import time

import numpy as np

from keras_adv import ops, reporting, validation
from keras_adv.poisoning.clustering import activation_clustering
from keras_adv.poisoning.spectral import spectral_signature

METHODS = ("both", "spectral", "clustering")


@dataclasses.dataclass(eq=False)
class PoisonScanReport(reporting.Report):
    """The training rows that the poisoning detectors flag, per method and
    per class.

    Attributes:
        num_examples: training rows scanned.
        expected_fraction: the spectral signature's expected poisoned share
            within a class (None when it did not run).
        layer: the layer whose representations were scanned (None: the
            input of the last layer).
        methods: `{"spectral_signature" | "activation_clustering":
            {"flagged": [row, ...], "per_class": {"<class>": [row, ...]}}}`,
            rows sorted, every class of the labels listed.
        seconds: wall time.

    Example:

    >>> r = PoisonScanReport(4, 0.5, None, {"spectral_signature": {
    ...     "flagged": [3], "per_class": {"0": [], "1": [3]}}}, 0.1)
    >>> r.flagged("spectral_signature")
    [3]
    >>> PoisonScanReport.from_json(r.to_json()) == r
    True
    """

    num_examples: int
    expected_fraction: float
    layer: str
    methods: dict
    seconds: float

    def flagged(self, method):
        """The rows `method` flagged, sorted. Example:
        `report.flagged("activation_clustering")`."""
        return list(self.methods[method]["flagged"])

    def table(self):
        """The number flagged per method and the first rows per class.

        Example: `print(report.table())`.
        """
        lines = [f"Poisoning scan ({self.num_examples} examples, "
                 f"{self.seconds:.1f} s)"]
        for name, found in self.methods.items():
            lines.append(f"{name}: {len(found['flagged'])} flagged")
            for c, idx in found["per_class"].items():
                head = ", ".join(str(i) for i in idx[:10])
                more = f", ... ({len(idx)} in all)" if len(idx) > 10 else ""
                lines.append(f"  class {c}: {head}{more}" if idx else
                             f"  class {c}: none")
        return "\n".join(lines)


def scan_training_set(model, x, y, *, method="both", expected_fraction=None,
                      layer=None, remove_factor=1.5, size_threshold=0.35,
                      n_components=10, seed=None, batch_size=256,
                      clip="auto"):
    """Runs the spectral signature and/or activation clustering on a
    training set and reports the flagged rows per class.

    Args:
        model: the Keras model trained on (x, y).
        x: training images `(n, H, W, C)`.
        y: their labels, sparse or one-hot.
        method: `"both"`, `"spectral"` or `"clustering"`.
        expected_fraction: the spectral signature's expected poisoned share
            within a class, in [0, 1] (required unless `method` is
            `"clustering"`).
        layer, remove_factor: as `spectral_signature`.
        size_threshold, n_components: as `activation_clustering`.
        seed: seed of the clustering's ICA and k-means (None: NumPy's
            global generator).
        batch_size, clip: rows per forward pass; the data box.

    Returns:
        A `PoisonScanReport`.

    Raises:
        ValueError: an unknown method, a missing `expected_fraction`, and
            whatever the detectors refuse.

    Example:

    >>> report = scan_training_set(model, p.x, p.y, expected_fraction=0.35)
    ... # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}. "
                         f"Received: method={method!r}")
    if method != "clustering" and expected_fraction is None:
        raise ValueError("expected_fraction must be given for the spectral "
                         "signature. Received: expected_fraction=None")
    start = time.perf_counter()
    validation.check_keras_model(model)
    labels, _, _ = validation.check_label_array(
        y, len(x), ops.declared_classes(model))
    found = {}
    if method in ("both", "spectral"):
        found["spectral_signature"] = spectral_signature(
            model, x, y, expected_fraction=expected_fraction, layer=layer,
            remove_factor=remove_factor, batch_size=batch_size, clip=clip)
    if method in ("both", "clustering"):
        found["activation_clustering"] = activation_clustering(
            model, x, y, layer=layer, size_threshold=size_threshold,
            n_components=n_components, seed=seed, batch_size=batch_size,
            clip=clip)
    methods = {}
    for name, idx in found.items():
        per_class = {str(int(c)): [int(i) for i in idx[labels[idx] == c]]
                     for c in np.unique(labels)}
        methods[name] = {"flagged": [int(i) for i in idx],
                         "per_class": per_class}
    return PoisonScanReport(
        num_examples=int(len(x)),
        expected_fraction=(None if expected_fraction is None
                           else float(expected_fraction)),
        layer=layer, methods=methods, seconds=time.perf_counter() - start)
