"""What every `keras-adv` subcommand shares: the options, their checks
(without TensorFlow), the data, the model and the outputs.

A subcommand module (`keras_adv.commands.<name>`) has

    add_parser(subparsers)  # adds its parser; imports nothing heavy
    check(args)             # every flag value checked without TensorFlow;
                            # raises UsageError
    run(args) -> int        # the work; the exit status

and builds its parser from `command_parser` and `add_shared_options`,
checks the values with `check_shared` (and its files last, with
`keras_adv.commands.paths.check_io`), and loads with `load_data` and
`load_model` inside `stages` (progress) and `warning_lines`.
`keras_adv.cli.main` turns `UsageError`, `ValueError` and `OSError` into
one line `keras-adv <command>: error: ...` and exit 2.
"""

import argparse
import contextlib
import math
import os
import sys
import warnings

from keras_adv.reporting import missing_module

DATA_HELP = ("'mnist5k' or 'mnist5k:test' (the embedded test split), "
             "'mnist5k:train' (its training split), an .npz file with arrays "
             "x and y, or tfds:NAME[:SPLIT] (tensorflow-datasets; the test "
             "split when SPLIT is omitted)")


# The names of `keras_adv.evaluation.ATTACKS`, known here without
# TensorFlow (a test keeps the two equal).
ATTACK_NAMES = ("apgd-ce", "apgd-dlr", "apgd-t", "deepfool", "fab", "fab-t",
                "fgsm", "pgd", "square")
# The attacks of 'standard' (`keras_adv.evaluation.plan.STANDARD`; a test
# keeps the two equal).
STANDARD_NAMES = ("apgd-ce", "apgd-t", "fab-t", "square")
# Seeds every random draw accepts (NumPy, TensorFlow's stateless ops and
# scikit-learn's random_state): integers in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1
# The optional modules and the extra of setup.py that installs each.
EXTRAS = {"jinja2": "audit", "matplotlib": "audit", "sklearn": "poisoning"}


class UsageError(ValueError):
    """Bad input on the command line (reported in one line, exit 2).

    Example: `raise UsageError("--num-examples must be >= 1. Received:
    --num-examples 0")`.
    """


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each option's default, `(default: ...)`, except where
    there is none (None, off) or the help text already names it.

    Example: `argparse.ArgumentParser(formatter_class=HelpFormatter)`.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or (
                "default" in text):
            return text
        return super()._get_help_string(action)


def add_model_argument(parser):
    """The positional MODEL: a `.keras` file or a SavedModel directory.

    Example: `add_model_argument(subparsers.add_parser("certify"))`.
    """
    parser.add_argument(
        "model", metavar="MODEL",
        help="a .keras file (loaded in safe mode) or a SavedModel directory "
        "(scanned op by op before it runs), e.g. one written by "
        "model.export or keras_adv.models.export_model")


def command_parser(subparsers, name, *, help, description):
    """The parser of the subcommand `name` with its positional MODEL
    (`add_model_argument`): the start of every command's `add_parser`.

    Example: `p = command_parser(subparsers, "certify", help="...",
    description="...")`.
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    add_model_argument(parser)
    return parser


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
        help="use the first N examples" + ("" if num_examples else
                                           " (default: all)"))
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="examples per forward pass")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"seed of every random draw, 0 to {MAX_SEED}; "
                        "fixed, so that the command is repeatable")
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
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"],
                        help="the norm of the budget")
    parser.add_argument("--attacks", default="standard",
                        help="'standard' (" + ",".join(STANDARD_NAMES)
                        + "), or comma-separated names: "
                        + ",".join(ATTACK_NAMES) + ", or 'standard' and "
                        "names outside it")


def check_attack_options(args):
    """Checks `--eps` and `--attacks` without TensorFlow.

    Raises:
        UsageError: an eps that is not a finite number >= 0, an unknown or
            repeated attack name, or 'standard' with one of its own attacks.

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
    inside = [a for a in names if a in STANDARD_NAMES]
    if "standard" in names and inside:
        raise UsageError(
            f"--attacks must not name an attack of 'standard' "
            f"({','.join(STANDARD_NAMES)}) next to it. Received: --attacks "
            f"{args.attacks} ({inside[0]} is in standard)")


def check_shared(args, flags=None):
    """Checks the numbers without TensorFlow: every float flag of the
    command finite (`check_finite`), the counts, the seed, then each flag
    of `flags` (a table `{flag: check}` of the command's own flags, each
    `check(flag, value)`: `check_positive`, `check_level`, `check_share`,
    `check_count`, `parse_floats`). The files (MODEL, `--data`, outputs)
    are checked by `paths.check_io`, after the values.

    Raises:
        UsageError: a non-finite number, a count below 1, a seed outside
            [0, 2**32 - 1], a flag refused by its check.

    Example: `check_shared(args, {"--alpha": check_level})`.
    """
    check_finite(args)
    for flag in ("--num-examples", "--batch-size"):
        check_count(flag, getattr(args, _dest(flag)))
    check_seed(args.seed)
    for flag, check in (flags or {}).items():
        check(flag, getattr(args, _dest(flag)))


def _dest(flag):
    return flag.lstrip("-").replace("-", "_")


def _flag(dest):
    return "--" + dest.replace("_", "-")


def check_finite(args):
    """Raises `UsageError` for any float flag of `args` that is NaN or
    infinite (argparse's `type=float` takes `nan` and `inf`).

    Example: `check_finite(parser.parse_args(["certify", "m.keras",
    "--sigma", "inf"]))`.
    """
    for dest, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{_flag(dest)} must be a finite number. "
                             f"Received: {_flag(dest)} {value}")


def check_seed(seed, flag="--seed"):
    """Raises `UsageError` unless `seed` is an integer in [0, `MAX_SEED`]
    (what NumPy, TensorFlow's stateless ops and scikit-learn all take).

    Example: `check_seed(0)`.
    """
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag} must be an integer in [0, {MAX_SEED}]. "
                         f"Received: {flag} {seed}")


def check_modules(command, modules):
    """Raises `UsageError` naming the first of `modules` (import names)
    that is not installed, and the extra that installs it, before any work
    (`reporting.missing_module`: nothing is imported).

    Example: `check_modules("audit", ["jinja2", "matplotlib"])`.
    """
    name = missing_module(modules)
    if name is not None:
        extra = EXTRAS.get(name)
        fix = (f"pip install 'keras_adv[{extra}]'" if extra else
               f"pip install {name}")
        raise UsageError(
            f"{command} needs the module {name} ({fix}). Received: "
            f"{name} not installed")


def check_count(flag, value, minimum=1):
    """Raises `UsageError` unless `value` is None or an integer >=
    `minimum`. Example: `check_count("--n", args.n)`."""
    if value is not None and value < minimum:
        raise UsageError(f"{flag} must be >= {minimum}. Received: {flag} "
                         f"{value}")


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
    `mnist5k:test`, `mnist5k:train`, `tfds:NAME[:SPLIT]` or an existing
    file (`flag` names the option in the message).

    Example: `check_data("mnist5k")`.
    """
    if spec in ("mnist5k", "mnist5k:test", "mnist5k:train"):
        return
    if spec.startswith("tfds:"):
        parse_tfds(spec)
    elif not os.path.isfile(spec):
        raise UsageError(f"{flag} must be mnist5k, mnist5k:train, "
                         "tfds:NAME[:SPLIT] or an existing .npz file. "
                         f"Received: {flag} {spec} (data file not found)")


def data_name(spec):
    """`--data` as the output names it, with its split: `mnist5k` is
    `mnist5k:test`, `tfds:NAME` is `tfds:NAME:test`, a file its path.

    Example:

    >>> data_name("mnist5k")
    'mnist5k:test'
    """
    if spec == "mnist5k":
        return "mnist5k:test"
    if spec.startswith("tfds:"):
        name, split = parse_tfds(spec)
        return f"tfds:{name}:{split}"
    return spec


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


def load_inputs(command, args, stages):
    """The data (`--data`, first `--num-examples`) and the model (MODEL) of
    a command, each announced by a stage line that names the data's split.
    Returns `(x, y, model)`.

    Example: `x, y, model = load_inputs("certify", args, stages)`.
    """
    name = data_name(args.data)
    stages(f"loading the data ({name})")
    x, y = load_data(args.data, args.num_examples)
    stages(f"data: {name} ({len(x)} examples)")
    stages("loading the model")
    return x, y, load_model(command, args.model, args.trust_model)


def check_level(flag, value):
    """Raises `UsageError` unless `value` is in (0, 1): a false-alarm or
    failure level (`--alpha`, `--poison-alpha`).

    Example: `check_level("--alpha", args.alpha)`.
    """
    if not 0.0 < value < 1.0:
        raise UsageError(f"{flag} must be in (0, 1). Received: {flag} "
                         f"{value}")


def check_positive(flag, value):
    """Raises `UsageError` unless `value` is None or a number > 0
    (`--sigma`, `--remove-factor`). Example: `check_positive("--sigma",
    args.sigma)`."""
    if value is not None and not value > 0:
        raise UsageError(f"{flag} must be a finite number > 0. Received: "
                         f"{flag} {value}")


def check_share(flag, value):
    """Raises `UsageError` unless `value` is None or in [0, 1] (a share of
    rows, `--expected-fraction`). Example: `check_share(
    "--expected-fraction", args.expected_fraction)`."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise UsageError(f"{flag} must be in [0, 1]. Received: {flag} "
                         f"{value}")


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

    if spec in ("mnist5k", "mnist5k:test", "mnist5k:train"):
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


def stages(command, args):
    """The progress of a command: a `keras_adv.progress.Progress`
    (the one progress mechanism) whose lines read `keras-adv certify:
    loading the model (3 s)`, with the seconds since the command started
    (`args.started`, set by `cli.main`), silent with `--no-progress`. Open
    it with `with`: a heartbeat repeats the current stage (`..., still
    running`) while stderr has no progress line. No TensorFlow.

    Example:

        with stages("certify", args) as stage:
            stage("loading the data")
    """
    from keras_adv.progress import Progress

    return Progress(not getattr(args, "no_progress", False),
                    prefix=f"keras-adv {command}",
                    start=getattr(args, "started", None))


@contextlib.contextmanager
def warning_lines(command):
    """Inside this block, warnings of keras_adv's own classes (an eps beyond
    the data's range, ...) are printed as one line each, `keras-adv
    <command>: warning: <message>`, as they happen; other warnings as
    Python prints them.

    Example: `with warning_lines("evaluate"): evaluate_robustness(...)`.
    """
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not category.__module__.startswith("keras_adv"):
                return shown(message, category, filename, lineno, file, line)
            text = str(message).strip().splitlines()[0]
            sys.stderr.write(f"keras-adv {command}: warning: {text}\n")
            sys.stderr.flush()

        warnings.showwarning = show
        from keras_adv import validation  # TensorFlow is loaded by now

        # Every time, not once per place: one process may run many commands.
        warnings.simplefilter("always", validation.EpsRangeWarning)
        yield
