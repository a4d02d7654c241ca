"""What every `keras-adv` subcommand shares: the options, their checks
(without TensorFlow), the data, the model and the outputs.

A subcommand module (`keras_adv.commands.<name>`) has

    add_parser(subparsers)  # adds its parser; imports nothing heavy
    check(args)             # every flag value checked without TensorFlow;
                            # raises UsageError
    run(args) -> int        # the work; the exit status

and builds its parser from `add_model_argument` and `add_shared_options`,
checks them with `check_shared`, and loads with `load_data` and
`load_model`. `keras_adv.cli.main` turns `UsageError`, `ValueError` and
`OSError` into one line `keras-adv <command>: error: ...` and exit 2.
"""

import math
import os
import sys
import time

DATA_HELP = ("'mnist5k' (the embedded test split), 'mnist5k:train' (its "
             "training split), an .npz file with arrays x and y, or "
             "tfds:NAME[:SPLIT] (tensorflow-datasets; SPLIT defaults to "
             "test)")


# The names of `keras_adv.evaluation.ATTACKS`, known here without
# TensorFlow (a test keeps the two equal).
ATTACK_NAMES = ("apgd-ce", "apgd-dlr", "apgd-t", "deepfool", "fab", "fab-t",
                "fgsm", "pgd", "square")


class UsageError(ValueError):
    """Bad input on the command line (reported in one line, exit 2).

    Example: `raise UsageError("--num-examples must be >= 1. Received:
    --num-examples 0")`.
    """


def add_model_argument(parser):
    """The positional MODEL: a `.keras` file or a SavedModel directory.

    Example: `add_model_argument(subparsers.add_parser("certify"))`.
    """
    parser.add_argument(
        "model", metavar="MODEL",
        help="a .keras file (loaded in safe mode) or a SavedModel directory "
        "(scanned op by op before it runs), e.g. one written by "
        "model.export or keras_adv.models.export_model")


def add_shared_options(parser, *, data="mnist5k", num_examples=None,
                       batch_size=None, plot=True, json=True, progress=True):
    """Adds the options every subcommand takes: `--data`, `--num-examples`,
    `--batch-size`, `--seed`, `--json` (unless the command writes its own),
    `--plot` (when the report has one),
    `--trust-model` and `--no-progress` (when the command reports
    progress). `data=None` makes `--data` required.

    Example: `add_shared_options(p, num_examples=500, batch_size=1000)`.
    """
    parser.add_argument("--data", default=data, required=data is None,
                        help=DATA_HELP)
    parser.add_argument(
        "--num-examples", type=int, default=num_examples,
        help="use the first N examples" + (
            f" (default {num_examples})" if num_examples else " (default all)"))
    parser.add_argument(
        "--batch-size", type=int, default=batch_size,
        help="examples per forward pass" + (
            f" (default {batch_size})" if batch_size else ""))
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every random draw (default 0: the "
                        "command is repeatable)")
    if json:
        parser.add_argument("--json", default=None,
                            help="write the report here (JSON)")
    if plot:
        parser.add_argument("--plot", default=None,
                            help="write the report's curve here (PNG)")
    parser.add_argument(
        "--trust-model", action="store_true",
        help="load a SavedModel without scanning its ops (only for a model "
        "whose source you trust: its ops run as written)")
    if progress:
        parser.add_argument("--no-progress", action="store_true",
                            help="print no progress on stderr")


def add_attack_options(parser, example="0.1,0.2,0.3"):
    """`--eps` (required), `--norm` and `--attacks`: the threat model of the
    commands that attack (`evaluate`, `audit`).

    Example: `add_attack_options(subparsers.add_parser("evaluate"))`.
    """
    parser.add_argument("--eps", required=True,
                        help=f"budget(s), comma-separated, e.g. {example}")
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"])
    parser.add_argument("--attacks", default="standard",
                        help="'standard' or comma-separated names: "
                        + ",".join(ATTACK_NAMES))


def check_attack_options(args):
    """Checks `--eps` and `--attacks` without TensorFlow.

    Raises:
        UsageError: an eps that is not a finite number >= 0, an unknown or
            repeated attack name.

    Example: `check_attack_options(args)`.
    """
    parse_floats("--eps", args.eps)
    names = [a.strip() for a in args.attacks.split(",")]
    unknown = [a for a in names if a not in ATTACK_NAMES + ("standard",)]
    if unknown or len(set(names)) != len(names):
        why = f"unknown: {unknown[0]!r}" if unknown else "repeated"
        raise UsageError(
            f"--attacks must be 'standard' or distinct names from "
            f"{','.join(ATTACK_NAMES)}. Received: --attacks {args.attacks} "
            f"({why})")


def check_shared(args):
    """Checks the shared options and MODEL without TensorFlow.

    Raises:
        UsageError: a count below 1, an output path that cannot be written,
            a MODEL that is neither a `.keras` file nor a SavedModel
            directory, or a `--data` that names no data.

    Example: `check_shared(args)`.
    """
    for flag in ("--num-examples", "--batch-size"):
        check_count(flag, getattr(args, _dest(flag)))
    for flag in ("--json", "--plot"):
        check_output(flag, getattr(args, _dest(flag), None))
    check_data(args.data)
    check_model_path(args.model)


def _dest(flag):
    return flag.lstrip("-").replace("-", "_")


def check_count(flag, value, minimum=1):
    """Raises `UsageError` unless `value` is None or an integer >=
    `minimum`. Example: `check_count("--n", args.n)`."""
    if value is not None and value < minimum:
        raise UsageError(f"{flag} must be >= {minimum}. Received: {flag} "
                         f"{value}")


def check_model_path(path):
    """Raises `UsageError` unless `path` is a `.keras` file or a SavedModel
    directory (one holding `saved_model.pb`).

    Example: `check_model_path("model.keras")`.
    """
    if os.path.isfile(path) and path.endswith(".keras"):
        return
    if os.path.isdir(path) and os.path.isfile(
            os.path.join(path, "saved_model.pb")):
        return
    why = ("model not found" if not os.path.exists(path) else
           "a directory without saved_model.pb" if os.path.isdir(path) else
           "not a .keras file")
    raise UsageError(f"MODEL must be a .keras file or a SavedModel "
                     f"directory. Received: {path} ({why})")


def check_output(flag, path):
    """Raises `UsageError` unless `path` (if given) is a file path in an
    existing directory. Example: `check_output("--json", "out/r.json")`."""
    if not path:
        return
    if os.path.isdir(path):
        raise UsageError(f"{flag} must be a file path, not a directory. "
                         f"Received: {flag} {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} must be in an existing directory. Received: "
                         f"{flag} {path} ({folder} does not exist)")


def check_data(spec, flag="--data"):
    """Raises `UsageError` unless `spec` names data: `mnist5k`,
    `mnist5k:train`, `tfds:NAME[:SPLIT]` or an existing file (`flag`
    names the option in the message).

    Example: `check_data("mnist5k")`.
    """
    if spec in ("mnist5k", "mnist5k:train"):
        return
    if spec.startswith("tfds:"):
        parse_tfds(spec)
    elif not os.path.isfile(spec):
        raise UsageError(f"{flag} must be mnist5k, mnist5k:train, "
                         "tfds:NAME[:SPLIT] or an existing .npz file. "
                         f"Received: {flag} {spec} (data file not found)")


def parse_floats(flag, text, *, positive=False):
    """A comma-separated flag as a list of finite floats >= 0 (> 0 with
    `positive`), without TensorFlow.

    Example:

    >>> parse_floats("--eps", "0.1,0.2")
    [0.1, 0.2]
    """
    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError:
        values = [math.nan]
    bound = "> 0" if positive else ">= 0"
    if not all(math.isfinite(v) and (v > 0 if positive else v >= 0)
               for v in values):
        raise UsageError(f"{flag} must be comma-separated finite numbers "
                         f"{bound}. Received: {flag} {text}")
    return values


def parse_tfds(spec):
    """`tfds:NAME[:SPLIT]` as `(name, split)` (split `"test"` by default).

    Raises:
        UsageError: an empty name or split.

    Example:

    >>> parse_tfds("tfds:cifar10:test[:10%]")
    ('cifar10', 'test[:10%]')
    """
    parts = spec[len("tfds:"):].split(":", 1)  # a split may hold ':'
    if not all(p.strip() for p in parts):
        raise UsageError("--data must be tfds:NAME or tfds:NAME:SPLIT. "
                         f"Received: --data {spec}")
    return parts[0], parts[1] if len(parts) == 2 else "test"


def stream_tfds(spec):
    """The tfds split of `--data tfds:...` as a stream of batches.

    Example: `stream_tfds("tfds:mnist:test")`.
    """
    from keras_adv import datasets

    name, split = parse_tfds(spec)
    try:
        return datasets.stream_tfds(name, split)
    except (ValueError, datasets.DatasetUnavailableError) as e:
        raise UsageError(f"--data must name a tensorflow-datasets split that "
                         f"can be loaded. Received: --data {spec} ({e})"
                         ) from None


def load_data(spec, num_examples=None):
    """The first `num_examples` examples (all when None) of `--data`:
    `mnist5k` (the embedded test split), `mnist5k:train` (its training
    split), a tfds split (read into arrays) or an `.npz` file holding `x`
    and `y` (or `x_test` and `y_test`), as float32 images and labels.

    Raises:
        UsageError: a missing or unreadable file, missing arrays, or x and y
            of different lengths.

    Example: `x, y = load_data("mnist5k", 100)`.
    """
    import numpy as np

    if spec in ("mnist5k", "mnist5k:train"):
        from keras_adv import datasets

        train, test = datasets.load("mnist5k")
        x, y = train if spec.endswith(":train") else test
    elif spec.startswith("tfds:"):
        x, y = _tfds_arrays(spec, num_examples)
    else:
        x, y = _npz_arrays(spec)
    return np.asarray(x, np.float32)[:num_examples], np.asarray(y)[:num_examples]


def _tfds_arrays(spec, num_examples):
    import numpy as np

    stream = stream_tfds(spec)
    if num_examples is not None:
        stream = stream.unbatch().take(num_examples).batch(1024)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in stream))
    return np.concatenate(xs), np.concatenate(ys)


def _npz_arrays(spec):
    import numpy as np

    try:
        with np.load(spec, allow_pickle=False) as data:
            keys = set(data.files)
            xk = next((k for k in ("x", "x_test") if k in keys), None)
            yk = next((k for k in ("y", "y_test") if k in keys), None)
            if xk is None or yk is None:
                raise UsageError(f"--data must hold arrays 'x' and 'y'. "
                                 f"Received: {spec} with {sorted(keys)}")
            x, y = data[xk], data[yk]
    except UsageError:
        raise
    except (OSError, EOFError, ValueError) as e:
        raise UsageError(f"--data must be an .npz file. Received: --data "
                         f"{spec} (cannot read it: {e})") from None
    if len(x) != len(y):
        raise UsageError(
            f"--data must hold one label per example. Received: {spec} with "
            f"x of length {len(x)} and y of length {len(y)}")
    return x, y


def load_model(command, path, trust_model=False):
    """The model at `path` through `keras_adv.models.load_model` (`.keras`
    in safe mode; a SavedModel after its op scan, skipped with
    `trust_model`, which prints a warning line).

    Example: `model = load_model("certify", args.model)`.
    """
    import warnings

    from keras_adv.models import loading

    if trust_model:
        sys.stderr.write(
            f"keras-adv {command}: warning: --trust-model: a SavedModel is "
            "loaded without the op scan; its ops run as written\n")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="trust_model=True",
                                category=UserWarning)
        return loading.load_model(path, trust_model=trust_model)


def write_outputs(report, json_path=None, plot_path=None):
    """Writes the report's JSON and plot; a failure leaves neither behind
    (files that did not exist before are removed). Prints `wrote PATH`.

    Example: `write_outputs(report, args.json, args.plot)`.
    """
    outputs = [p for p in (json_path, plot_path) if p]
    fresh = [p for p in outputs if not os.path.exists(p)]
    try:
        if json_path:
            report.to_json(json_path)
        if plot_path:
            report.plot(plot_path)
    except BaseException:
        for path in fresh:
            if os.path.isfile(path):
                os.remove(path)
        raise
    for path in outputs:
        print(f"wrote {path}")


class Stages:
    """Stage lines on stderr (`keras-adv certify: loading the model`), with
    the seconds since the command started; silent with `--no-progress`.

    Example: `stages = Stages("certify", args); stages("loading the model")`.
    """

    def __init__(self, command, args):
        self.command = command
        self.enabled = not getattr(args, "no_progress", False)
        self.start = time.perf_counter()

    def __call__(self, text):
        if self.enabled:
            seconds = time.perf_counter() - self.start
            sys.stderr.write(f"keras-adv {self.command}: {text} "
                             f"({seconds:.0f} s)\n")
            sys.stderr.flush()
