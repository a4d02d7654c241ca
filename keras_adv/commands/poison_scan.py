"""`keras-adv poison-scan`: find poisoned rows in a training set.

    keras-adv poison-scan MODEL --data FILE.npz --expected-fraction F
        [--method both|spectral|clustering] [--layer NAME]
        [--remove-factor 1.5] [--size-threshold 0.35] [--components 10]
        [--json out.json]

MODEL is a `.keras` file trained on the data; FILE.npz holds arrays `x`
(images `(n, H, W, C)`) and `y` (labels). Prints the flagged indices per
class for spectral signatures and activation clustering and writes them to
JSON. Nothing here imports TensorFlow until `run` is called. On bad input the
command prints one line to stderr and returns 2.
"""

import json
import os
import sys

from keras_adv.cli import load_data

METHODS = ("both", "spectral", "clustering")


def add_parser(subparsers):
    """Adds the `poison-scan` command to an argparse `subparsers` object.

    Example:

    >>> parser = argparse.ArgumentParser()  # doctest: +SKIP
    >>> add_parser(parser.add_subparsers(dest="command"))  # doctest: +SKIP
    """
    p = subparsers.add_parser(
        "poison-scan", help="flag poisoned rows of a training set",
        description="Runs spectral signatures (Tran et al. 2018) and "
        "activation clustering (Chen et al. 2018) on a model trained on the "
        "data and lists the flagged rows per class.")
    p.add_argument("model", help="a .keras file trained on the data")
    p.add_argument("--data", required=True,
                   help="an .npz file with arrays x and y (the training set)")
    p.add_argument("--expected-fraction", type=float, required=True,
                   help="largest expected poisoned share within one class")
    p.add_argument("--method", default="both", choices=METHODS)
    p.add_argument("--layer", default=None,
                   help="layer name (default: the input of the last layer)")
    p.add_argument("--remove-factor", type=float, default=1.5)
    p.add_argument("--size-threshold", type=float, default=0.35)
    p.add_argument("--components", type=int, default=10,
                   help="dimensions kept before clustering")
    p.add_argument("--json", default=None, help="write the flagged indices here")
    p.set_defaults(run=run)
    return p


def run(args):
    """Runs `poison-scan` for parsed `args`; returns the exit status (0, or 2
    after one line on stderr for bad input).

    Example: `run(parser.parse_args(["poison-scan", "m.keras", "--data",
    "train.npz", "--expected-fraction", "0.35"]))`.
    """
    try:
        _check_args(args)
        x, y = load_data(args.data)
        model = _load_model(args.model)
        result = scan(model, x, y, args)
    except (ValueError, OSError) as e:
        first = str(e).strip().split("\n")[0] or "failed"
        sys.stderr.write(f"keras-adv poison-scan: error: {first}\n")
        return 2
    print(_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


def scan(model, x, y, args):
    """The flagged rows, as a JSON-ready dict per method."""
    import numpy as np

    from keras_adv import poisoning

    labels = np.argmax(y, axis=1) if y.ndim == 2 and y.shape[1] > 1 else (
        np.asarray(y).reshape(len(y)))
    found = {}
    if args.method in ("both", "spectral"):
        found["spectral_signature"] = poisoning.spectral_signature(
            model, x, y, expected_fraction=args.expected_fraction,
            layer=args.layer, remove_factor=args.remove_factor)
    if args.method in ("both", "clustering"):
        found["activation_clustering"] = poisoning.activation_clustering(
            model, x, y, layer=args.layer, size_threshold=args.size_threshold,
            n_components=args.components)
    out = {"num_examples": int(len(x)), "methods": {}}
    for name, idx in found.items():
        per_class = {str(int(c)): [int(i) for i in idx[labels[idx] == c]]
                     for c in np.unique(labels)}
        out["methods"][name] = {"flagged": [int(i) for i in idx],
                                "per_class": per_class}
    return out


def _check_args(args):
    f = args.expected_fraction
    if not 0.0 <= f <= 1.0:
        raise ValueError("--expected-fraction must be in [0, 1]. Received: "
                         f"--expected-fraction {f}")
    if not os.path.isfile(args.model):
        raise ValueError(f"MODEL must be an existing .keras file. Received: "
                         f"{args.model}")
    if not args.model.endswith(".keras"):
        raise ValueError(f"MODEL must be a .keras file. Received: {args.model}")
    if not os.path.isfile(args.data):
        raise ValueError(f"--data must be an existing .npz file. Received: "
                         f"--data {args.data}")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json) or not os.path.isdir(folder):
            raise ValueError("--json must be a file in an existing directory. "
                             f"Received: --json {args.json}")


def _load_model(path):
    from keras_adv.models import load_model  # safe mode: no code runs

    try:
        return load_model(path)
    except Exception as e:  # noqa: BLE001 - reported in one line
        raise ValueError(f"MODEL could not be loaded. Received: {path} "
                         f"({type(e).__name__}: {e})") from None


def _table(result):
    lines = [f"poison-scan: {result['num_examples']} examples"]
    for name, found in result["methods"].items():
        lines.append(f"{name}: {len(found['flagged'])} flagged")
        for c, idx in found["per_class"].items():
            head = ", ".join(str(i) for i in idx[:10])
            more = f", ... ({len(idx)} in all)" if len(idx) > 10 else ""
            lines.append(f"  class {c}: {head}{more}" if idx else
                         f"  class {c}: none")
    return "\n".join(lines)
