"""The `keras-adv` command line: builds the parser and dispatches.

    keras-adv evaluate MODEL --eps 0.1,0.2 [shared options]
    keras-adv certify MODEL --sigma 0.25 [shared options]
    keras-adv poison-scan MODEL --data FILE.npz --expected-fraction 0.35
    keras-adv audit MODEL --eps 0.1,0.2 --out DIR [--sigma 0.25]
        [--train-data mnist5k:train]

Each subcommand is a module of `keras_adv.commands` (listed in `COMMANDS`)
with `add_parser(subparsers)`, `check(args)` and `run(args) -> int`; the
options they share (`--data`, `--num-examples`, `--batch-size`, `--seed`,
`--json`, `--plot`, `--trust-model`, `--no-progress`) and the loading of
data and models come from `keras_adv.commands.common`. MODEL is a `.keras`
file or a SavedModel directory, loaded by `keras_adv.models.load_model`
(`.keras` in Keras safe mode; a SavedModel after a scan of its ops).

`main` parses, calls the command's `check` (every flag value and input
file, before TensorFlow is imported, so a bad value fails in well under a
second), says `loading TensorFlow` (about 10 s; a stage line of
`commands.common.stages`, the one `keras_adv.progress.Progress`), quiets
TensorFlow's start-up logging (`quiet_tensorflow`) and calls `run`.
`--help` shows every default (`HelpFormatter`). On
`UsageError`, `ValueError` or `OSError` it prints one line,
`keras-adv <command>: error: ...`, to stderr, writes nothing and exits 2;
any other error is one line and exit 1.
"""

import argparse
import importlib
import os
import re
import sys
import tempfile
import time

from keras_adv.commands.common import HelpFormatter, UsageError, stages

COMMANDS = {
    "evaluate": "keras_adv.commands.evaluate",
    "certify": "keras_adv.commands.certify",
    "poison-scan": "keras_adv.commands.poison_scan",
    "audit": "keras_adv.commands.audit",
}
__all__ = ["COMMANDS", "UsageError", "build_parser", "main",
           "quiet_tensorflow"]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)  # the defaults
        super().__init__(*args, **kwargs)

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
    return importlib.import_module(COMMANDS[name])


def main(argv=None):
    """Entry point of `keras-adv`; returns the exit status.

    Example: `main(["evaluate", "model.keras", "--eps", "0.1",
    "--num-examples", "100"])`.
    """
    started = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    prefix = f"keras-adv {first}" if first in COMMANDS else "keras-adv"
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError(f"choose a command: {', '.join(COMMANDS)}")
        command = _command(args.command)
        args.argv, args.started = argv, started
        command.check(args)
        if "tensorflow" not in sys.modules and not getattr(
                args, "no_progress", False):
            stages(args.command, args)("loading TensorFlow")  # ~10 s
        quiet_tensorflow()
        return command.run(args)
    except (UsageError, ValueError, OSError) as e:
        _fail(prefix, str(e), 2)
    except KeyboardInterrupt:
        _fail(prefix, "interrupted", 130)
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        _fail(prefix, f"{type(e).__name__}: {e}", 1)
    return 2


def _fail(prefix, message, status):
    first = str(message).strip().split("\n")[0] or "failed"
    sys.stderr.write(f"{prefix}: error: {first}\n")
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


if __name__ == "__main__":
    sys.exit(main())
