"""The report protocol that every keras_adv report follows.

A report is a dataclass that subclasses `Report` and writes `table` (plain
text), and `to_dict` where its fields are not plain values; `Report` gives it
the rest:

    to_dict() / from_dict(values)       plain Python values, both ways
    to_json(path=None) / from_json(s)   a JSON string or file, both ways
    table() / str(report)               the plain-text summary
    plot(path)                          a PNG, where the report has a figure
    report == other                     the same class and the same to_dict()
                                        as JSON values (NaN equals NaN)

`from_dict` builds the dataclass from the keys of `to_dict` that name its
fields (`json_keys` renames a field's key), each checked against the
field's annotation (`read_fields`): a missing or mistyped field is one
`ValueError` naming it; JSON's null reads back as NaN in a `float` field,
the form `to_json` writes NaN and infinities in. A report whose dict holds
derived values or nested objects overrides `from_dict` and starts from
`read_fields`. Every report round-trips: `R.from_json(r.to_json()) == r`,
NaN included (`==` compares the JSON values, where NaN is null).

The ground floor: this module imports nothing from keras_adv and nothing
heavy (matplotlib only inside `figure`).
"""

import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import types
import typing


class Report:
    """Base of `RobustnessReport`, `CertificationReport`, `PoisoningReport`,
    `PoisonScanReport` and `AuditReport`.

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

    # Where the JSON names a field otherwise: {field name: JSON key}.
    json_keys = {}

    @classmethod
    def from_dict(cls, values):
        """The report that `to_dict` described: the dataclass built from
        the keys that name its fields (others, such as derived values, are
        ignored), each checked against its annotation (`read_fields`).

        Raises:
            ValueError: `values` is not a dict, or a field without a default
                is missing, or a field is of the wrong type.

        Example: `PoisoningReport.from_dict(report.to_dict())`.
        """
        return cls(**cls.read_fields(values))

    @classmethod
    def read_fields(cls, values):
        """The dataclass fields found in `values` (under `json_keys` names),
        checked against their annotations and made Python values again:
        `int`, `float` (null is NaN), `bool`, `str`, `tuple[...]`, `list`,
        `dict[...]` and nested reports (by their own `from_dict`); other
        annotations are left to the report's `from_dict`. A null is taken
        where the field's default is None, its annotation admits None, or
        it is a name (`str`, such as a layer left to its default).

        Raises:
            ValueError: as `from_dict`, one line naming the field.

        Example: `RobustnessReport.read_fields(report.to_dict())["eps"]`.
        """
        name = cls.__name__
        if not isinstance(values, dict):
            raise ValueError(
                f"{name} JSON must be an object (a dict of its fields). "
                f"Received: {shown(values)}")
        hints = _hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            key, hint = cls.json_keys.get(f.name, f.name), hints[f.name]
            if key not in values:
                if (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING):
                    raise ValueError(
                        f"{name} JSON must have the field {key!r} "
                        f"({_describe(hint)}). Received: "
                        + (f"fields {shown(sorted(values))}" if values
                           else "an empty object"))
                continue
            out[f.name] = _field(name, key, hint, values[key],
                                 nullable=f.default is None)
        return out

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
        text, source = _json_text(text_or_path)
        if not text.strip():
            name = f"{_article(cls.__name__)} {cls.__name__}"
            raise ValueError(f"text_or_path must hold {name} as JSON. "
                             f"Received: {source}, empty")
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"text_or_path must hold JSON. Received: "
                             f"{source} that does not parse ({e})") from None
        return cls.from_dict(values)

    def __str__(self):
        return self.table()

    def __eq__(self, other):
        # The JSON values: NaN (null there) equals NaN.
        if type(other) is not type(self):
            return NotImplemented
        return plain(self.to_dict()) == plain(other.to_dict())

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


def _json_text(text_or_path):
    """`(text, where it came from)`: `text_or_path` itself when it is JSON
    text, else the file it names (read as UTF-8)."""
    text = text_or_path
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if isinstance(text, os.PathLike) or (
            isinstance(text, str) and text.strip()
            and not text.lstrip().startswith(("{", "["))):
        try:
            with open(text, encoding="utf-8") as f:
                return f.read(), f"the file {str(text_or_path)!r}"
        except (OSError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or type(e).__name__
            named = str(text_or_path)  # a path, shown whole unless huge
            named = named if len(named) <= 300 else named[:297] + "..."
            raise ValueError(
                "text_or_path must be JSON text or a readable JSON file. "
                f"Received: text_or_path={named!r} ({why})") from None
    if not isinstance(text, str):
        raise ValueError("text_or_path must be a str or a path. Received: "
                         f"text_or_path of type {type(text).__name__}")
    return text, "text"


def _hints(cls):
    """The annotation of each field of `cls` (None where unreadable)."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        hints = {}
    return {f.name: hints.get(f.name, None if isinstance(f.type, str)
                              else f.type) for f in dataclasses.fields(cls)}


class _Mismatch(Exception):
    """A JSON value that its field's annotation does not allow."""


def _field(report, key, hint, value, *, nullable):
    """`value` of the field `key` as its annotation `hint` wants it, or a
    one-line ValueError naming the report and the field."""
    if value is None and (nullable or hint is str):
        return None  # absent (a default of None, a name left unset)
    try:
        return _convert(hint, value)
    except _Mismatch:
        raise ValueError(
            f"{report} JSON must have the field {key!r} as "
            f"{_describe(hint)}. Received: {key}={shown(value)}") from None
    except ValueError as e:  # a nested report's own error
        raise ValueError(f"{report} JSON field {key!r}: {e}") from None


def read_field(report, key, hint, value):
    """`value`, the JSON field `key` of the report class named `report`, as
    the annotation `hint` wants it (`list[int]`, `list[float]` with null
    as NaN, ...), or a one-line `ValueError` naming the field: what
    `read_fields` does for one field, for a report's nested parts.

    Example:

    >>> read_field("CertificationReport", "radius", list[float], [0.5, None])
    [0.5, nan]
    """
    return _field(report, key, hint, value, nullable=False)


def _optional_inner(args):
    """The `X` of `Optional[X]` / `X | None` (None for a wider union)."""
    rest = [a for a in args if a is not type(None)]
    return rest[0] if len(rest) == 1 else None


def _convert(hint, value):
    """`value` (from JSON) converted to `hint`; raises `_Mismatch`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(_optional_inner(args), value)
    base = origin or hint
    if base is float:
        if value is None:
            return math.nan  # to_json writes NaN and infinities as null
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base in (bool, str):
        ok = isinstance(value, base)
    elif base in (tuple, list):
        if not isinstance(value, list):
            raise _Mismatch
        inner = _item(args)
        return base(_convert(inner, v) for v in value)
    elif base is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        inner = args[1] if len(args) == 2 else None
        return {k: _convert(inner, v) for k, v in value.items()}
    elif isinstance(base, type) and issubclass(base, Report):
        if not isinstance(value, dict):
            raise _Mismatch
        return base.from_dict(value)
    else:
        return value  # no annotation, or one its report's from_dict reads
    if not ok:
        raise _Mismatch
    return value


def _item(args):
    """The item annotation of `tuple[X, ...]` or `list[X]`, else None."""
    if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
        return args[0]
    return None


def _describe(hint, plural=False):
    """What a JSON value of annotation `hint` is, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _describe(_optional_inner(args), plural)
    base = origin or hint
    one, many = {
        float: ("a number or null for NaN", "numbers"),
        int: ("an integer", "integers"), bool: ("true or false", "booleans"),
        str: ("a string", "strings")}.get(base, (None, None))
    if one:
        return many if plural else one
    if base in (tuple, list):
        inner = _item(args)
        what = "lists" if plural else "a list"
        return f"{what} of {_describe(inner, True)}" if inner else what
    if base is dict:
        what = "objects" if plural else "an object"
        return (f"{what} of {_describe(args[1], True)}" if len(args) == 2
                else what)
    if isinstance(base, type) and issubclass(base, Report):
        return f"{base.__name__} objects" if plural else \
            f"an object (a {base.__name__})"
    return "values" if plural else "a value"


def _article(name):
    """`an` before a vowel, `a` otherwise. Example: `_article("Audit")`."""
    return "an" if name[:1].upper() in "AEIOU" else "a"


def shown(value, limit=60):
    """`value` from JSON in a short form for an error line.

    Example:

    >>> shown([1, 2])
    '[1, 2]'
    >>> shown(list(range(40)))[:20]
    'a list of 40: [0, 1,'
    """
    if isinstance(value, (list, dict)) and len(str(value)) > limit:
        kind = "a list" if isinstance(value, list) else "an object"
        return f"{kind} of {len(value)}: {str(value)[:limit]}..."
    if isinstance(value, (list, dict, str, int, float, bool)) or value is None:
        return repr(value)[:limit]
    return f"a {type(value).__name__}"


def missing_module(names):
    """The first of `names` (import names) that is not installed, or None;
    nothing is imported (`importlib.util.find_spec`), so a command can ask
    before TensorFlow loads.

    Example: `missing_module(["json", "no_such_module"])` is
    `"no_such_module"`.
    """
    for name in names:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def write_text(path, text):
    """Writes `text` (a str, as UTF-8, or bytes as they are) to `path`
    through a temporary file in the same folder and a rename, so a failure
    leaves no half-written file: the one writer of report files, pages and
    images.

    Example: `write_text("report.json", report.to_json())`.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    binary = isinstance(text, bytes)
    try:
        with open(tmp, "wb" if binary else "w",
                  encoding=None if binary else "utf-8") as f:
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
