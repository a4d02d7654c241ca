"""The `keras-adv` command line.

    keras-adv evaluate PATH --data mnist5k|FILE.npz|tfds:NAME[:SPLIT]
        --eps 0.1,0.2,0.3 [--norm linf|l2] [--attacks standard|pgd,...]
        [--eot N] [--n 1000] [--batch-size 500] [--checkpoint run.ckpt]
        [--json out.json] [--plot out.png] [--trust-model]

PATH is a `.keras` file or a SavedModel directory (for example one written by
`model.export`). The model may return logits or probabilities. It is loaded
by `keras_adv.models.load_model`: `.keras` files in Keras safe mode, and
SavedModels only after a scan of their ops (a model that would read or write
files, use the network or run Python is refused; `--trust-model` skips the
scan and says so in a warning line). On bad input the command prints one line
to stderr, writes nothing and exits with status 2.

Subcommands. `COMMANDS` maps each subcommand to the module that implements
it, `"keras_adv.commands.<name>"` (or `"module:attribute"` for an object of the
same shape). That module provides

    add_parser(subparsers)  # adds its parser with subparsers.add_parser(NAME,
                            # ...); must not import TensorFlow
    check(args)             # optional: checks of the arguments that need no
                            # TensorFlow; raises UsageError (fails fast)
    run(args) -> int        # does the work; the exit status

`keras-adv --help` imports each module to call `add_parser`, so those modules
import TensorFlow (and the rest of `keras_adv`) only inside `run`, and raise
`keras_adv.cli.UsageError` for bad arguments. `main` calls `check`, quiets
TensorFlow's start-up logging (`quiet_tensorflow`), then calls `run`; it maps
`UsageError`, `ValueError` and `OSError` to one line and exit 2, and any other
error to one line and exit 1.
"""

import argparse
import importlib
import os
import re
import sys
import tempfile
import types
import warnings

COMMANDS = {
    "evaluate": "keras_adv.cli:EVALUATE",
    "certify": "keras_adv.commands.certify",
    "poison-scan": "keras_adv.commands.poison_scan",
}


class UsageError(ValueError):
    """Bad input on the command line (reported in one line, exit 2).

    Example: `raise UsageError("--n must be >= 1. Received: --n 0")`.
    """


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    """The argument parser of `keras-adv`, with every registered subcommand.

    Returns:
        An `argparse.ArgumentParser` whose errors raise `UsageError`.

    Example: `build_parser().parse_args(["evaluate", "m.keras", "--eps", "0.1"])`.
    """
    parser = _Parser(prog="keras-adv",
                     description="Adversarial robustness tools for Keras.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def _command(name):
    module, _, attribute = COMMANDS[name].partition(":")
    command = importlib.import_module(module)
    return getattr(command, attribute) if attribute else command


def main(argv=None):
    """Entry point of `keras-adv`; returns the exit status.

    Example: `main(["evaluate", "model.keras", "--eps", "0.1", "--n", "100"])`.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError(f"choose a command: {', '.join(COMMANDS)}")
        command = _command(args.command)
        if hasattr(command, "check"):
            command.check(args)
        quiet_tensorflow()
        return command.run(args)
    except (UsageError, ValueError, OSError) as e:
        _fail(str(e), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        _fail(f"{type(e).__name__}: {e}", 1)
    return 2


def _fail(message, status):
    first = str(message).strip().split("\n")[0] or "failed"
    sys.stderr.write(f"keras-adv: error: {first}\n")
    raise SystemExit(status)


# A line of TensorFlow's C++ logging (absl or TF's own format), and the notice
# absl prints before its logging is set up.
_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]|"
    r"WARNING: All log messages before absl::InitializeLog|"
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\])")
_PYTHON_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")


def quiet_tensorflow():
    """Imports TensorFlow without its C++ start-up lines on stderr.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` unless the user set it, then imports
    TensorFlow and Keras and lists the devices with the stderr file descriptor
    redirected, since the lines printed then (absl's pre-initialisation notice,
    the oneDNN and CPU-feature notices, the CUDA probe) ignore that variable.
    Lines that are not C++ log lines are written back to stderr. Does nothing
    when TensorFlow is already imported.

    Example: `quiet_tensorflow(); import tensorflow as tf`.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            sys.stderr.write(_without_native_logs(text))
    from absl import logging

    logging.set_verbosity(logging.ERROR)


def _without_native_logs(text):
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        if _NATIVE_LOG.match(line):
            dropping = True  # a C++ log line and its continuation lines
        elif _PYTHON_WARNING.match(line) or line.startswith("Traceback"):
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


# ----------------------------------------------------------------------------
# keras-adv evaluate
# ----------------------------------------------------------------------------


def _add_evaluate_parser(subparsers):
    ev = subparsers.add_parser(
        "evaluate", help="worst-case robust accuracy of a saved model",
        description="Runs an attack suite on a saved model and prints the "
        "robust accuracy per eps, with gradient-masking warnings. "
        "SavedModels are scanned for ops that touch files, the network or "
        "processes before anything from them runs.")
    ev.add_argument("path", help="a .keras file or a SavedModel directory")
    ev.add_argument("--data", default="mnist5k",
                    help="'mnist5k' (embedded test split), an .npz file "
                    "with arrays x and y, or tfds:NAME[:SPLIT] (streamed "
                    "from tensorflow-datasets; SPLIT defaults to test)")
    ev.add_argument("--eps", required=True,
                    help="budget(s), comma-separated, e.g. 0.1,0.2,0.3")
    ev.add_argument("--norm", default="linf", choices=["linf", "l2"])
    ev.add_argument("--attacks", default="standard",
                    help="'standard' or comma-separated names: "
                    "fgsm,pgd,apgd-ce,apgd-dlr,apgd-t,fab,fab-t,deepfool,"
                    "square")
    ev.add_argument("--eot", type=int, default=None,
                    help="EOT samples per gradient for randomised models")
    ev.add_argument("--n", type=int, default=1000,
                    help="number of examples (the first n)")
    ev.add_argument("--batch-size", type=int, default=None,
                    help="examples per chunk (default 500)")
    ev.add_argument("--checkpoint", default=None,
                    help="save progress here after every chunk; run the "
                    "same command again to resume (the file is kept)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", default=None, help="write the report here")
    ev.add_argument("--plot", default=None, help="write a PNG curve here")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--trust-model", action="store_true",
                    help="load a SavedModel without scanning its ops (only "
                    "for a model whose source you trust: its ops run as "
                    "written)")


def _check_evaluate(args):
    if args.n < 1:
        raise UsageError(f"--n must be >= 1. Received: --n {args.n}")
    if args.eot is not None and args.eot < 1:
        raise UsageError(f"--eot must be >= 1. Received: --eot {args.eot}")
    for flag, out in (("--json", args.json), ("--plot", args.plot),
                      ("--checkpoint", args.checkpoint)):
        _check_output(flag, out)  # before the run, not after it
    if args.data.startswith("tfds:"):
        parse_tfds(args.data)


def _parse_eps(text):
    """`--eps` as a list of floats (`keras_adv.validation.parse_eps`, which
    loads TensorFlow: the flag is parsed once the run starts)."""
    from keras_adv.validation import parse_eps

    try:
        return parse_eps(text, name="--eps")[0]
    except ValueError as e:
        raise UsageError(str(e)) from None


def _evaluate(args):
    _check_evaluate(args)  # again, for callers of run alone
    eps = _parse_eps(args.eps)
    from keras_adv.evaluation.suite import parse_attacks

    parse_attacks(args.attacks)  # unknown names fail before loading anything
    if args.data.startswith("tfds:"):
        x, y = _stream_tfds(args.data), None
        probe = next(iter(x.take(1)))[0].numpy()
    else:
        x, y = load_data(args.data, args.n)
        probe = x
    model, from_logits = _load_model(args.path, probe, args.trust_model)
    from keras_adv.evaluation import MaskingWarning, evaluate_robustness

    with warnings.catch_warnings():
        # The table below lists every MaskingWarning; do not print them twice.
        warnings.simplefilter("ignore", MaskingWarning)
        report = evaluate_robustness(
            model, x, y, eps=eps, norm=args.norm, attacks=args.attacks,
            eot_samples=args.eot, batch_size=args.batch_size, seed=args.seed,
            from_logits=from_logits,
            progress=False if args.no_progress else None,
            num_examples=args.n, checkpoint=args.checkpoint,
        )
    print(report.table())
    _write_outputs(report, args.json, args.plot)
    return 0


def _load_model(path, x, trust_model):
    from keras_adv.models import loading

    if trust_model:
        sys.stderr.write(
            "keras-adv: warning: --trust-model: a SavedModel is loaded without "
            "the op scan; its ops run as written\n")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="trust_model=True",
                                category=UserWarning)
        model = loading.load_model(path, trust_model=trust_model)
    return model, loading.probe_outputs(model, x)


def _write_outputs(report, json_path, plot_path):
    outputs = [p for p in (json_path, plot_path) if p]
    fresh = [p for p in outputs if not os.path.exists(p)]
    try:
        if json_path:
            report.to_json(json_path)
        if plot_path:
            report.plot(plot_path)
    except BaseException:
        for path in fresh:  # a failed command leaves no partial output
            if os.path.isfile(path):
                os.remove(path)
        raise
    for path in outputs:
        print(f"wrote {path}")


EVALUATE = types.SimpleNamespace(add_parser=_add_evaluate_parser,
                                 check=_check_evaluate, run=_evaluate)


def _check_output(flag, path):
    """Raises `UsageError` unless `path` (if given) can be written."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(
            f"{flag} must be a file path, not a directory. Received: "
            f"{flag} {path}")
    if not os.path.isdir(folder):
        raise UsageError(
            f"{flag} must be in an existing directory. Received: {flag} "
            f"{path} ({folder} does not exist)")


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


def _stream_tfds(spec):
    """The tfds split of `--data tfds:...` as a stream of batches."""
    from keras_adv import datasets

    name, split = parse_tfds(spec)
    try:
        return datasets.stream_tfds(name, split)
    except (ValueError, datasets.DatasetUnavailableError) as e:
        raise UsageError(f"--data must name a tensorflow-datasets split that "
                         f"can be loaded. Received: --data {spec} ({e})"
                         ) from None


def load_data(spec, n=None):
    """The first `n` examples (all when `n` is None) of `--data`: `mnist5k`
    (its embedded test split) or an `.npz` file holding `x` and `y` (or
    `x_test` and `y_test`), as float32 images and labels. Shared by every
    subcommand.

    Raises:
        UsageError: a missing or unreadable file, missing arrays, or x and y
            of different lengths (a `ValueError`).

    Example: `x, y = load_data("mnist5k", 100)`.
    """
    import numpy as np

    if spec == "mnist5k":
        from keras_adv import datasets

        _, (x, y) = datasets.load("mnist5k")
    else:
        if not os.path.isfile(spec):
            raise UsageError("--data must be mnist5k or an existing .npz file. "
                             f"Received: --data {spec} (data file not found)")
        try:
            with np.load(spec, allow_pickle=False) as data:
                keys = set(data.files)
                xk = next((k for k in ("x", "x_test") if k in keys), None)
                yk = next((k for k in ("y", "y_test") if k in keys), None)
                if xk is None or yk is None:
                    raise UsageError(
                        f"--data must hold arrays 'x' and 'y'. Received: "
                        f"{spec} with {sorted(keys)}")
                x, y = data[xk], data[yk]
        except (OSError, EOFError, ValueError) as e:
            if isinstance(e, UsageError):
                raise
            raise UsageError(f"--data must be an .npz file. Received: --data "
                             f"{spec} (cannot read it: {e})") from None
        if len(x) != len(y):
            raise UsageError(
                f"--data must hold one label per example. Received: {spec} "
                f"with x of length {len(x)} and y of length {len(y)}")
    return np.asarray(x, np.float32)[:n], np.asarray(y)[:n]

if __name__ == "__main__":
    # `python -m keras_adv.cli`: run the imported module, the one COMMANDS
    # resolves to, so that its UsageError is the one main catches.
    from keras_adv.cli import main as _main

    sys.exit(_main())
