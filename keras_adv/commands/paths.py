"""The files a `keras-adv` command reads and writes, checked in `check`
(without TensorFlow): every input exists and is what it claims to be (a
Keras archive or a SavedModel, an `.npz` file with `x` and `y`, an earlier
report), every output can be written, and no output is an input.

Example: `check_io(args, reads={"MODEL": args.model}, writes={"--json":
args.json})`.
"""

import json
import os
import zipfile

from keras_adv.commands.common import UsageError, check_data, check_output

NAMED_DATA = ("mnist5k", "mnist5k:test", "mnist5k:train")


def check_io(args, *, reads, writes):
    """Checks the inputs and outputs of a command: `reads` maps a flag to
    a path or data spec (MODEL is checked with `check_model_path`, other
    flags with `check_data_file`), `writes` maps a flag to a file path
    (None for an output not asked for). Outputs are checked first, with
    `check_output`, then each against every input and every other output
    (`check_not_read`).

    Raises:
        UsageError: naming the flag and the path.

    Example: `check_io(args, reads={"MODEL": args.model, "--data":
    args.data}, writes={"--json": args.json})`.
    """
    writes = {flag: path for flag, path in writes.items() if path}
    for flag, path in writes.items():
        check_output(flag, path)
    for flag, spec in reads.items():
        if spec is None:
            continue
        if flag == "MODEL":
            check_model_path(spec)
        else:
            check_data_file(flag, spec)
    files = {f: p for f, p in reads.items() if p and names_a_file(p)}
    seen = {}
    for flag, path in writes.items():
        check_not_read(flag, path, {**files, **seen})
        seen[flag] = path


def names_a_file(spec):
    """Whether a MODEL or `--data` value is a path (not `mnist5k...` or
    `tfds:...`). Example: `names_a_file("train.npz")`."""
    return spec not in NAMED_DATA and not spec.startswith("tfds:")


def same_or_inside(path, other):
    """Whether `path` is `other` (the same file, through links too) or lies
    inside the directory `other`.

    Example: `same_or_inside("m/saved_model.pb", "m")`.
    """
    real, real_other = os.path.realpath(path), os.path.realpath(other)
    if real == real_other or real.startswith(real_other.rstrip(os.sep)
                                             + os.sep):
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # either does not exist yet
        return False


def check_not_read(flag, path, inputs):
    """Raises `UsageError` when the output `path` of `flag` is one of
    `inputs` (a dict flag -> path) or inside one of them (a SavedModel
    directory): a command never writes where it reads.

    Example: `check_not_read("--json", "m.keras", {"MODEL": "m.keras"})`.
    """
    for other, source in inputs.items():
        if same_or_inside(path, source):
            raise UsageError(
                f"{flag} must not be a file the command reads or writes "
                f"for another option. Received: {flag} {path} (it is "
                f"{other} {source})")


def check_model_path(path):
    """Raises `UsageError` unless `path` is a `.keras` archive (a zip file
    holding `config.json`) or a SavedModel directory (one holding
    `saved_model.pb`).

    Example: `check_model_path("model.keras")`.
    """
    if os.path.isdir(path) and os.path.isfile(
            os.path.join(path, "saved_model.pb")):
        return
    if os.path.isfile(path) and path.endswith(".keras"):
        why = _not_keras_archive(path)
        if why is None:
            return
    else:
        why = ("model not found" if not os.path.exists(path) else
               "a directory without saved_model.pb" if os.path.isdir(path)
               else "not a .keras file")
    raise UsageError(f"MODEL must be a .keras file or a SavedModel "
                     f"directory. Received: {path} ({why})")


def _not_keras_archive(path):
    """Why `path` is not a Keras archive, or None when it is one."""
    try:
        if not zipfile.is_zipfile(path):
            return "not a .keras archive: not a zip file"
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "not a .keras archive: no config.json inside"
    except (OSError, zipfile.BadZipFile) as e:
        return f"not a .keras archive: {e}"
    return None


def check_data_file(flag, spec):
    """`check_data`, and for a file: an `.npz` archive (read without
    pickle) holding arrays `x` and `y` (or `x_test` and `y_test`).

    Example: `check_data_file("--data", "train.npz")`.
    """
    check_data(spec, flag)
    if not names_a_file(spec):
        return
    import numpy as np

    want = f"{flag} must be an .npz file with arrays x and y"
    if not zipfile.is_zipfile(spec):
        raise UsageError(f"{want}. Received: {flag} {spec} (not an .npz "
                         "archive)")
    try:
        with np.load(spec, allow_pickle=False) as data:
            keys = set(data.files)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        why = (str(e).strip() or type(e).__name__).splitlines()[0]
        raise UsageError(f"{want}. Received: {flag} {spec} (cannot read "
                         f"it: {why})") from None
    if not ({"x", "y"} <= keys or {"x_test", "y_test"} <= keys):
        raise UsageError(f"{want}. Received: {flag} {spec} holding "
                         f"{sorted(keys) or 'no arrays'}")


def check_report_file(flag, path, fields, what):
    """Raises `UsageError` unless `path` is a JSON object holding every
    name of `fields` (the top-level fields of the report `what`).

    Example: `check_report_file("--compare", "old/report.json",
    ("summary", "evasion"), "an earlier audit's report.json")`.
    """
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        why = "file not found"
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = f"not JSON: {str(e).splitlines()[0]}"
    else:
        missing = ([n for n in fields if n not in values]
                   if isinstance(values, dict) else None)
        if missing == []:
            return
        why = (f"a JSON {type(values).__name__}, not an object"
               if missing is None else "a JSON object without "
               + ", ".join(repr(m) for m in missing))
    raise UsageError(f"{flag} must be {what}. Received: {flag} {path} "
                     f"({why})")
