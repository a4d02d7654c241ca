"""The `keras-adv` command line.

    keras-adv evaluate PATH --data mnist5k|FILE.npz --eps 0.1,0.2,0.3
        [--norm linf|l2] [--attacks standard|pgd,apgd-ce,...] [--eot N]
        [--n 1000] [--json out.json] [--plot out.png]

PATH is a `.keras` file or a SavedModel directory (for example one written by
`model.export`). The model may return logits or probabilities. On bad input
the command prints one line to stderr and exits with status 2.
"""

import argparse
import os
import sys
import warnings
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UsageError(Exception):
    """Bad input on the command line (reported in one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    """The argument parser of `keras-adv`. Example:
    `build_parser().parse_args(["evaluate", "m.keras", "--eps", "0.1"])`."""
    parser = _Parser(prog="keras-adv",
                     description="Adversarial robustness tools for Keras.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    ev = sub.add_parser(
        "evaluate", help="worst-case robust accuracy of a saved model",
        description="Runs an attack suite on a saved model and prints the "
        "robust accuracy per eps, with gradient-masking warnings.")
    ev.add_argument("path", help="a .keras file or a SavedModel directory")
    ev.add_argument("--data", default="mnist5k",
                    help="'mnist5k' (embedded test split) or an .npz file "
                    "with arrays x and y")
    ev.add_argument("--eps", required=True,
                    help="budget(s), comma-separated, e.g. 0.1,0.2,0.3")
    ev.add_argument("--norm", default="linf", choices=["linf", "l2"])
    ev.add_argument("--attacks", default="standard",
                    help="'standard' or comma-separated names: "
                    "fgsm,pgd,apgd-ce,apgd-dlr,apgd-t,deepfool,square")
    ev.add_argument("--eot", type=int, default=None,
                    help="EOT samples per gradient for randomised models")
    ev.add_argument("--n", type=int, default=1000,
                    help="number of examples (the first n)")
    ev.add_argument("--batch-size", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", default=None, help="write the report here")
    ev.add_argument("--plot", default=None, help="write a PNG curve here")
    ev.add_argument("--no-progress", action="store_true")
    return parser


def main(argv=None):
    """Entry point of `keras-adv`; returns the exit status.

    Example: `main(["evaluate", "model.keras", "--eps", "0.1", "--n", "100"])`.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command != "evaluate":
            raise UsageError("choose a command: evaluate")
        return _evaluate(args)
    except UsageError as e:
        _fail(str(e), 2)
    except (ValueError, OSError) as e:
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


def _parse_eps(text):
    """`--eps` as a list of floats (`keras_adv.validation.parse_eps`)."""
    from keras_adv.validation import parse_eps  # lazy: imports TensorFlow

    try:
        return parse_eps(text, name="--eps")[0]
    except ValueError as e:
        raise UsageError(str(e)) from None


def _evaluate(args):
    eps = _parse_eps(args.eps)
    if args.n < 1:
        raise UsageError(f"--n must be >= 1. Received: --n {args.n}")
    if args.eot is not None and args.eot < 1:
        raise UsageError(f"--eot must be >= 1. Received: --eot {args.eot}")
    from keras_adv.evaluation.suite import parse_attacks

    parse_attacks(args.attacks)  # unknown names fail before loading anything
    for flag, out in (("--json", args.json), ("--plot", args.plot)):
        _check_output(flag, out)  # before the run, not after it
    x, y = _load_data(args.data, args.n)
    model, from_logits = load_model(args.path, x)
    from keras_adv.evaluation import MaskingWarning, evaluate_robustness

    with warnings.catch_warnings():
        # The table below lists every MaskingWarning; do not print them twice.
        warnings.simplefilter("ignore", MaskingWarning)
        report = evaluate_robustness(
            model, x, y, eps=eps, norm=args.norm, attacks=args.attacks,
            eot_samples=args.eot, batch_size=args.batch_size, seed=args.seed,
            from_logits=from_logits,
            progress=False if args.no_progress else None,
        )
    print(report.table())
    outputs = [p for p in (args.json, args.plot) if p]
    fresh = [p for p in outputs if not os.path.exists(p)]
    try:
        if args.json:
            report.to_json(args.json)
        if args.plot:
            report.plot(args.plot)
    except BaseException:
        for path in fresh:  # a failed command leaves no partial output
            if os.path.isfile(path):
                os.remove(path)
        raise
    for path in outputs:
        print(f"wrote {path}")
    return 0


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


def _load_data(spec, n):
    import numpy as np

    if spec == "mnist5k":
        from keras_adv import datasets

        _, (x, y) = datasets.load("mnist5k")
    else:
        if not os.path.isfile(spec):
            raise UsageError(f"data file not found: {spec}")
        try:
            with np.load(spec) as data:
                keys = set(data.files)
                xk = next((k for k in ("x", "x_test") if k in keys), None)
                yk = next((k for k in ("y", "y_test") if k in keys), None)
                if xk is None or yk is None:
                    raise UsageError(
                        f"{spec} must hold arrays 'x' and 'y'. Found: "
                        f"{sorted(keys)}")
                x, y = data[xk], data[yk]
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read {spec} as .npz: {e}") from None
        if len(x) != len(y):
            raise UsageError(
                f"{spec}: x has {len(x)} examples but y has {len(y)}")
    x = np.asarray(x, np.float32)[:n]
    return x, np.asarray(y)[:n]


def load_model(path, x):
    """Loads a `.keras` file or a SavedModel directory as a callable and
    decides whether its outputs are probabilities.

    Returns `(model, from_logits)`; `from_logits` is `None` for Keras models
    (softmax is detected from the graph) and `False` for a SavedModel whose
    outputs on `x` are non-negative rows summing to one.

    Example: `model, from_logits = load_model("model.keras", x[:10])`.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    if not os.path.exists(path):
        raise UsageError(f"model not found: {path}")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"{path} is a directory but not a SavedModel")
        model = _saved_model(path)
        expected = model.input_shape
    else:
        if path.endswith(".keras") and not zipfile.is_zipfile(path):
            raise UsageError(
                f"cannot load model {path}: not a .keras archive (a zip "
                "file); it is corrupt or of another format")
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as e:  # Keras raises many types for bad files
            raise UsageError(f"cannot load model {path}: {e}") from None
        expected = tuple(model.input_shape[1:]) if hasattr(
            model, "input_shape") and not isinstance(model.input_shape, list) \
            else None
    if expected is not None and not _shape_fits(expected, x.shape[1:]):
        raise UsageError(
            f"data shape {tuple(x.shape[1:])} does not match the model input "
            f"{expected}")
    try:
        out = model(tf.constant(x[:8]))
    except Exception as e:  # shape or dtype errors from any model type
        raise UsageError(
            f"model cannot run on data of shape {tuple(x.shape[1:])}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if isinstance(out, (list, tuple)) or getattr(out, "shape", None) is None \
            or len(out.shape) != 2:
        raise UsageError(
            "the model must return one tensor of shape (batch, classes)")
    if not isinstance(model, _SavedModelCallable):
        return model, None
    p = np.asarray(out)
    probs = bool(p.min() >= 0 and np.allclose(p.sum(-1), 1.0, atol=1e-3))
    return model, (False if probs else None)


def _shape_fits(expected, got):
    return len(expected) == len(got) and all(
        e is None or e == g for e, g in zip(expected, got))


def _saved_model(path):
    """A SavedModel directory as a callable returning one tensor."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - any load failure is bad input
        raise UsageError(f"cannot load SavedModel {path}: {e}") from None
    sigs = getattr(loaded, "signatures", {})
    fn = None
    for key in ("serve", "serving_default"):
        if key in sigs:
            fn = sigs[key]
            break
    if fn is None and hasattr(loaded, "serve"):
        fn = loaded.serve
    if fn is None and sigs:
        fn = next(iter(sigs.values()))
    if fn is None:
        raise UsageError(f"{path} has no serving signature")
    spec = fn.structured_input_signature[1] if hasattr(
        fn, "structured_input_signature") else {}
    return _SavedModelCallable(loaded, fn, spec if isinstance(spec, dict)
                               else {})


class _SavedModelCallable:
    """Calls a serving signature with one input and returns one output."""

    def __init__(self, loaded, fn, spec):
        self._loaded = loaded  # keeps the variables alive
        self._fn = fn
        self._names = list(spec)
        self.input_shape = None
        if len(spec) == 1:
            shape = next(iter(spec.values())).shape
            if shape.rank is not None:
                self.input_shape = tuple(shape.as_list()[1:])

    def __call__(self, x):
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
        if len(self._names) == 1:
            out = self._fn(**{self._names[0]: x})
        else:
            out = self._fn(x)
        if isinstance(out, dict):
            if len(out) != 1:
                raise UsageError(
                    "the SavedModel must have a single output; found "
                    f"{sorted(out)}")
            out = next(iter(out.values()))
        return out


if __name__ == "__main__":
    sys.exit(main())
