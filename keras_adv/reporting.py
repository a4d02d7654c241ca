"""The report protocol that every keras_adv report follows.

A report is a dataclass that subclasses `Report` and writes `table` (plain
text), and `to_dict` where its fields are not plain values; `Report` gives it
the rest:

    to_dict() / from_dict(values)       plain Python values, both ways
    to_json(path=None) / from_json(s)   a JSON string or file, both ways
    table() / str(report)               the plain-text summary
    plot(path)                          a PNG, where the report has a figure
    report == other                     the same class and the same to_dict()

`from_dict` builds the dataclass from the keys of `to_dict` that name its
fields; a report whose dict holds derived values or nested objects
overrides it. Every report round-trips: `R.from_json(r.to_json()) == r`.

The ground floor: this module imports nothing from keras_adv and nothing
heavy (matplotlib only inside `figure`).
"""

import contextlib
import dataclasses
import json
import math
import os


class Report:
    """Base of `RobustnessReport`, `CertificationReport`, `PoisoningReport`
    and `PoisonScanReport`.

    Example:

    >>> @dataclasses.dataclass(eq=False)
    ... class Count(Report):
    ...     n: int
    ...     def table(self):
    ...         return f"n = {self.n}"
    >>> Count.from_json(Count(3).to_json()) == Count(3)
    True
    >>> print(Count(3))
    n = 3
    """

    def to_dict(self):
        """The report as JSON-friendly Python values: by default every
        dataclass field made plain (`plain`); a report with nested parts
        or derived values writes its own.

        Example: `json.dumps(report.to_dict())`.
        """
        return {f.name: plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}

    def table(self):  # pragma: no cover - each report writes its own
        """The report as plain text."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described: the dataclass built from
        the keys that name its fields (others, such as derived values, are
        ignored).

        Raises:
            ValueError: a field without a default is missing.

        Example: `PoisoningReport.from_dict(report.to_dict())`.
        """
        if not isinstance(values, dict):
            raise ValueError(f"values must be a dict from {cls.__name__}."
                             f"to_dict(). Received: values of type "
                             f"{type(values).__name__}")
        fields = [f for f in dataclasses.fields(cls) if f.init]
        missing = [f.name for f in fields if f.name not in values
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(
                f"values must hold every field of {cls.__name__}. Received: "
                f"values without {', '.join(missing)}")
        return cls(**{f.name: values[f.name] for f in fields
                      if f.name in values})

    def to_json(self, path=None, indent=2):
        """The report as a JSON string (NaN and infinities as null); also
        written to `path` if given (atomically: a temporary file beside it,
        then renamed).

        Example: `report.to_json("report.json")`.
        """
        text = json.dumps(plain(self.to_dict()), indent=indent,
                          allow_nan=False)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path):
        """The report from a JSON string or the path of a JSON file that
        `to_json` wrote.

        Raises:
            ValueError: neither JSON text nor a readable file, or JSON that
                does not describe this kind of report.

        Example: `RobustnessReport.from_json("report.json")`.
        """
        text = text_or_path
        if isinstance(text, os.PathLike) or (
                isinstance(text, str) and not text.lstrip().startswith(("{", "["))):
            try:
                with open(text) as f:
                    text = f.read()
            except OSError as e:
                raise ValueError(
                    "text_or_path must be JSON text or a readable JSON file. "
                    f"Received: text_or_path={str(text_or_path)[:80]!r} "
                    f"({e.strerror or e})") from None
        if not isinstance(text, (str, bytes)):
            raise ValueError("text_or_path must be a str or a path. Received: "
                             f"text_or_path of type {type(text).__name__}")
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"text_or_path must hold JSON. Received: text "
                             f"that does not parse ({e})") from None
        return cls.from_dict(values)

    def __str__(self):
        return self.table()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


def plain(value):
    """`value` with NumPy scalars and arrays, tuples and non-string keys
    made plain JSON types (NaN and infinities become None).

    Example:

    >>> import numpy as np
    >>> plain({1: (np.float32(0.5), float("nan"))})
    {'1': [0.5, None]}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_text(path, text):
    """Writes `text` to `path` through a temporary file in the same folder
    and a rename, so a failure leaves no half-written file.

    Example: `write_text("report.json", report.to_json())`.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def columns(head, rows):
    """Right-aligned text columns: the header line, then one line per row.

    Example:

    >>> columns(["eps", "acc"], [["0.1", "90.00%"]])
    ['eps     acc', '0.1  90.00%']
    """
    widths = [max(len(h), *(len(r[j]) for r in rows)) if rows else len(h)
              for j, h in enumerate(head)]
    return ["  ".join(c.rjust(w) for c, w in zip(cells, widths))
            for cells in [head] + list(rows)]


@contextlib.contextmanager
def figure(path, *, xlabel, ylabel, title=None, title_color=None,
           size=(6, 4)):
    """A matplotlib axes (Agg backend) for an accuracy-style curve, saved as
    a PNG at `path` when the block ends (the figure is closed either way).

    Example:

    >>> with figure("curve.png", xlabel="eps", ylabel="accuracy") as ax:
    ...     ax.plot([0, 1], [1, 0])  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        if title:
            ax.set_title(title, **({"color": title_color} if title_color
                                   else {}))
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
