"""Certified accuracy: `certified_accuracy`, `CertificationReport` and
`evaluate_certified` (certify a labelled set and report it)."""

import dataclasses
import math
import time

import numpy as np

from keras_adv import reporting, validation
from keras_adv.certification import _certify
from keras_adv.certification._certify import Certificate, certify

DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


def certified_accuracy(certificate, y, *, radii):
    """The share of examples predicted correctly with a certified radius of
    at least r, for each r (Cohen et al. 2019, the "approximate certified
    test accuracy"). Abstentions count as wrong at every radius.

    Args:
        certificate: a `Certificate` from `certify`.
        y: integer labels `(batch,)` (or `(batch, 1)`).
        radii: a radius (>= 0) or a sequence of them.

    Returns:
        A float for a single radius, else a list of floats aligned with
        `radii`.

    Raises:
        ValueError: `certificate` is not a `Certificate`, labels of the
            wrong length or not integers, or a negative or non-finite
            radius.

    Example:

    >>> cert = Certificate(np.array([0, 1, -1]), np.array([0.3, 0.1, 0.0]),
    ...                    np.zeros((3, 2), "int64"))
    >>> certified_accuracy(cert, [0, 1, 1], radii=[0.0, 0.2])
    [0.6666666666666666, 0.3333333333333333]
    """
    if not isinstance(certificate, Certificate):
        raise ValueError(
            "certificate must be a keras_adv.certification.Certificate. "
            f"Received: certificate={validation.short(certificate)}")
    y = _certificate_labels(certificate, y)
    scalar = np.ndim(radii) == 0
    radii = check_radii(radii)
    correct = np.asarray(certificate.prediction) == y
    radius = np.asarray(certificate.radius)
    curve = [float(np.mean(correct & (radius >= r))) for r in radii]
    return curve[0] if scalar else curve


def check_radii(radii):
    """Radii as a tuple of floats, each finite and >= 0.

    Example:

    >>> check_radii(0.5)
    (0.5,)
    """
    values = np.ravel(np.asarray(radii, dtype=object))
    if values.size == 0:
        raise ValueError(f"radii must not be empty. Received: radii={radii!r}")
    out = []
    for r in values:
        try:
            out.append(float(validation.check_number("radii", r)))
        except (ValueError, TypeError):
            raise ValueError(
                "radii must be finite numbers >= 0. Received: "
                f"radii={validation.short(radii)}") from None
    return tuple(out)


def _certificate_labels(certificate, y):
    """`y` as int64 NumPy, checked against a certificate by
    `validation.check_labels`: one label per example, classes of its
    counts' width."""
    counts = np.asarray(certificate.counts)
    classes = counts.shape[1] if counts.ndim == 2 and counts.shape[1] else (
        int(np.max(certificate.prediction, initial=0)) + 1)
    return np.asarray(validation.check_labels(
        y, len(certificate.prediction), max(2, classes)), np.int64)


@dataclasses.dataclass(eq=False)
class CertificationReport(reporting.Report):
    """Certified accuracy of a smoothed classifier against the L2 radius.

    Attributes:
        sigma, n0, n, alpha: the settings of `certify`.
        radii: the radii evaluated, a tuple.
        certified_accuracy_curve: certified accuracy per radius.
        num_examples: examples certified.
        abstain_rate: share of examples where the smoothed classifier
            abstains.
        seconds: wall time of the certification.
        samples_per_second: noisy forward passes per second
            (`num_examples * (n0 + n) / seconds`).
        certificate: the `Certificate` behind the numbers, or None.
        labels: the int64 labels it was scored against, or None.

    Example:

    >>> report = evaluate_certified(model, x, y, sigma=0.25)  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
    """

    sigma: float
    n0: int
    n: int
    alpha: float
    radii: tuple[float, ...]
    certified_accuracy_curve: tuple[float, ...]
    num_examples: int
    abstain_rate: float
    seconds: float
    samples_per_second: float
    certificate: Certificate = None
    labels: np.ndarray = None

    json_keys = {"certified_accuracy_curve": "certified_accuracy"}

    @classmethod
    def from_certificate(cls, certificate, y, *, sigma, n0, n, alpha,
                         radii=DEFAULT_RADII, seconds=0.0):
        """Builds the report from a `Certificate` and the labels.

        Args:
            certificate: a `Certificate` from `certify`.
            y: integer labels `(batch,)`.
            sigma, n0, n, alpha: the settings the certificate was made with.
            radii: radii to report (each >= 0).
            seconds: wall time of the certification (0: unknown).

        Returns:
            A `CertificationReport`.

        Raises:
            ValueError: as `certified_accuracy`.

        Example: `CertificationReport.from_certificate(cert, y, sigma=0.25,
        n0=100, n=10_000, alpha=0.001)`.
        """
        radii = check_radii(radii)
        curve = certified_accuracy(certificate, y, radii=list(radii))
        count = len(certificate.prediction)
        abstain = float(np.mean(np.asarray(certificate.prediction) < 0))
        rate = count * (n0 + n) / seconds if seconds > 0 else math.nan
        return cls(float(sigma), int(n0), int(n), float(alpha), radii,
                   tuple(curve), count, abstain, float(seconds), float(rate),
                   certificate, _certificate_labels(certificate, y))

    def to_dict(self):
        """A JSON-serialisable dict: the settings, the curve and, when the
        report holds them, the per-example certificate and labels.

        Example: `json.dumps(report.to_dict())`.
        """
        cert = self.certificate
        return {
            "sigma": self.sigma,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
            "radii": list(self.radii),
            "certified_accuracy": list(self.certified_accuracy_curve),
            "num_examples": self.num_examples,
            "abstain_rate": self.abstain_rate,
            "seconds": self.seconds,
            "samples_per_second": self.samples_per_second,
            "certificate": None if cert is None else {
                "prediction": np.asarray(cert.prediction).tolist(),
                "radius": np.asarray(cert.radius).tolist(),
                "counts": np.asarray(cert.counts).tolist()},
            "labels": (None if self.labels is None
                       else np.asarray(self.labels).tolist()),
        }

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described (the certificate as a
        `Certificate` of NumPy arrays again, null numbers as NaN).

        Raises:
            ValueError: a missing or mistyped field, named in one line.

        Example: `CertificationReport.from_json("certified.json")`.
        """
        fields = cls.read_fields(values)
        if fields.get("certificate") is not None:
            fields["certificate"] = _read_certificate(fields["certificate"])
        labels = fields.get("labels")
        if labels is not None:
            fields["labels"] = _read_array("labels", labels, list[int])
        return cls(**fields)

    def table(self):
        """A plain-text table of certified accuracy per radius.

        Example: `print(report.table())`.
        """
        head = (f"Certified accuracy (L2, sigma={self.sigma:g}, n0={self.n0}, "
                f"n={self.n}, alpha={self.alpha:g}, {self.num_examples} "
                f"examples, {self.seconds:.1f} s)")
        rows = [[f"{r:.3g}", f"{a:.2%}"] for r, a in
                zip(self.radii, self.certified_accuracy_curve)]
        lines = reporting.columns(["radius", "certified accuracy"], rows)
        return "\n".join([head] + ["  " + line for line in lines]
                         + [f"Abstained: {self.abstain_rate:.2%}"])

    def plot(self, path):
        """Draws certified accuracy against the radius and saves a PNG at
        `path`. Example: `report.plot("certified.png")`."""
        with reporting.figure(
                path, xlabel="L2 radius", ylabel="certified accuracy",
                title=f"Randomized smoothing (n={self.n}, "
                f"alpha={self.alpha:g})") as ax:
            ax.plot(self.radii, self.certified_accuracy_curve, marker="o",
                    label=f"sigma = {self.sigma:g}")
            if self.certificate is not None and self.labels is not None:
                # The exact step curve between the reported radii.
                fine = np.linspace(0.0, max(self.radii) or 1.0, 201)
                ax.plot(fine, certified_accuracy(
                    self.certificate, self.labels, radii=list(fine)),
                    color="gray", alpha=0.6, linewidth=1)
        return path


def _read_certificate(values):
    """A `Certificate` from its JSON object, or a one-line ValueError."""
    keys = ("prediction", "radius", "counts")
    if not isinstance(values, dict) or any(k not in values for k in keys):
        raise ValueError(
            "CertificationReport JSON must have the field 'certificate' as "
            "null or an object with 'prediction', 'radius' and 'counts'. "
            f"Received: certificate={reporting.shown(values)}")
    prediction = _read_array("certificate.prediction", values["prediction"],
                             list[int])
    radius = _read_array("certificate.radius", values["radius"], list[float])
    counts = _read_array("certificate.counts", values["counts"],
                         list[list[int]])
    if len(radius) != len(prediction) or (
            counts.size and len(counts) != len(prediction)):
        raise ValueError(
            "CertificationReport JSON must have a certificate with one "
            "prediction, radius and row of counts per example. Received: "
            f"{len(prediction)} predictions, {len(radius)} radii and "
            f"{len(counts)} rows of counts")
    return Certificate(prediction, radius,
                       counts.reshape(len(prediction), -1))


def _read_array(name, values, hint):
    """`values`, a JSON list read by `reporting.read_field` as `hint`
    (`list[int]`, `list[float]` with null as NaN, `list[list[int]]` with
    rows of one width), as a NumPy array."""
    values = reporting.read_field("CertificationReport", name, hint, values)
    if len({len(row) for row in values if isinstance(row, list)}) > 1:
        raise ValueError(
            f"CertificationReport JSON must have the field {name!r} with "
            "rows of one width. Received: rows of widths "
            f"{sorted({len(row) for row in values})}")
    return np.asarray(values, np.float64 if hint == list[float] else np.int64)


def evaluate_certified(model, x, y, *, sigma, radii=DEFAULT_RADII, n0=100,
                       n=10_000, alpha=0.001, batch_size=1000, seed=None,
                       clip=None, progress=None):
    """Certifies `x` with `certify` and reports certified accuracy per radius.

    Cohen, Rosenfeld and Kolter 2019: certified accuracy at radius r is the
    share of test examples that the smoothed classifier gets right with a
    certified radius >= r (a lower bound on the accuracy under any L2 attack
    of norm < r, up to the failure probability alpha per example).

    Args:
        model, x, sigma, n0, n, alpha, batch_size, seed, clip, progress:
            as `certify` (its stage lines read `certify: ...`).
        y: integer labels `(batch,)`, classes of the model (0 and 1 for a
            one-unit binary model).
        radii: radii to report (each >= 0).

    Returns:
        A `CertificationReport`.

    Raises:
        ValueError: as `certify` and `certified_accuracy`.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> x, y = np.zeros((4, 2), "float32"), np.zeros(4, "int64")
    >>> report = evaluate_certified(model, x, y, sigma=0.5, n=100, seed=0)
    >>> len(report.certified_accuracy_curve)
    5
    """
    radii = check_radii(radii)
    x, _, num_classes = _certify.check_inputs(model, x, sigma=sigma,
                                              batch_size=batch_size, clip=clip)
    validation.check_labels(y, int(x.shape[0]), num_classes)
    start = time.perf_counter()
    cert = certify(model, x, sigma=sigma, n0=n0, n=n, alpha=alpha,
                   batch_size=batch_size, seed=seed, clip=clip,
                   progress=progress)
    seconds = time.perf_counter() - start
    return CertificationReport.from_certificate(
        cert, y, sigma=sigma, n0=n0, n=n, alpha=alpha, radii=radii,
        seconds=seconds)
