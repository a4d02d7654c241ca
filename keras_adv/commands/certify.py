"""`keras-adv certify`: certified accuracy of a saved model by randomized
smoothing.

    keras-adv certify MODEL --data mnist5k|FILE.npz --sigma 0.25
        [--n 10000] [--n0 100] [--alpha 0.001] [--num-examples 500]
        [--batch-size 1000] [--radii 0,0.25,0.5,0.75,1] [--seed 0]
        [--json out.json] [--plot out.png]

MODEL is a `.keras` file, loaded with `safe_mode=True`. The module imports
neither TensorFlow nor Keras until `run` needs them, so that building the
command line stays fast. On bad input `run` prints one line to stderr and
returns 2.
"""

import math
import os
import sys

from keras_adv.cli import load_data

NAME = "certify"


def add_parser(subparsers):
    """Adds the `certify` command to an `argparse` subparsers object and
    returns its parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = subparsers.add_parser(
        NAME, help="certified accuracy by randomized smoothing",
        description="Certifies a saved model's Gaussian-smoothed classifier "
        "(Cohen et al. 2019) and prints the certified accuracy per L2 "
        "radius.")
    p.add_argument("model", help="a .keras file")
    p.add_argument("--data", default="mnist5k",
                   help="'mnist5k' (embedded test split) or an .npz file "
                   "with arrays x and y")
    p.add_argument("--sigma", type=float, required=True,
                   help="noise standard deviation of the smoothing")
    p.add_argument("--n", type=int, default=10_000,
                   help="certification samples per example")
    p.add_argument("--n0", type=int, default=100,
                   help="selection samples per example")
    p.add_argument("--alpha", type=float, default=0.001,
                   help="failure probability of each certificate")
    p.add_argument("--num-examples", type=int, default=500,
                   help="certify the first N examples")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="noisy inputs per forward pass")
    p.add_argument("--radii", default="0,0.25,0.5,0.75,1",
                   help="comma-separated L2 radii to report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--plot", default=None,
                   help="write the certified-accuracy curve here (PNG)")
    p.set_defaults(run=run)
    return p


class _BadInput(Exception):
    """A bad command-line value (one line, exit status 2)."""


def run(args):
    """Runs `keras-adv certify` with parsed `args`; returns the exit status
    (0, or 2 after one line on stderr for bad input).

    Example: `run(parser.parse_args(["certify", "m.keras", "--sigma",
    "0.25"]))`.
    """
    try:
        radii = _check_args(args)
        _check_model_path(args.model)
        x, y = load_data(args.data, args.num_examples)
        model = _load_model(args.model)
        from keras_adv.certification import evaluate_certified

        report = evaluate_certified(
            model, x, y, sigma=args.sigma, radii=radii, n0=args.n0, n=args.n,
            alpha=args.alpha, batch_size=args.batch_size, seed=args.seed)
    except (_BadInput, ValueError, OSError) as e:
        first = str(e).strip().split("\n")[0] or type(e).__name__
        sys.stderr.write(f"keras-adv certify: error: {first}\n")
        return 2
    print(report.table())
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def _check_args(args):
    """Checks the numbers and output paths before any work; returns the
    radii."""
    if not (math.isfinite(args.sigma) and args.sigma > 0):
        raise _BadInput(f"--sigma must be a finite number > 0. Received: "
                        f"--sigma {args.sigma}")
    if not (0 < args.alpha < 1):
        raise _BadInput(f"--alpha must be in (0, 1). Received: --alpha "
                        f"{args.alpha}")
    for flag, value in (("--n", args.n), ("--n0", args.n0),
                        ("--num-examples", args.num_examples),
                        ("--batch-size", args.batch_size)):
        if value < 1:
            raise _BadInput(f"{flag} must be >= 1. Received: {flag} {value}")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path and (os.path.isdir(path) or not os.path.isdir(
                os.path.dirname(os.path.abspath(path)))):
            raise _BadInput(f"{flag} must be a file in an existing directory. "
                            f"Received: {flag} {path}")
    try:
        radii = [float(r) for r in args.radii.split(",")]
    except ValueError:
        radii = [math.nan]
    if not all(math.isfinite(r) and r >= 0 for r in radii):
        raise _BadInput("--radii must be comma-separated finite numbers >= 0. "
                        f"Received: --radii {args.radii}")
    return radii


def _check_model_path(path):
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise _BadInput(f"MODEL must be an existing .keras file. Received: "
                        f"{path}")


def _load_model(path):
    """A `.keras` file, loaded by `keras_adv.models.load_model` (safe mode:
    no code runs)."""
    from keras_adv.models import load_model

    return load_model(path)
