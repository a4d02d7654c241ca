"""`keras-adv audit`: the whole threat model of a saved model, as one web
page and its JSON.

    keras-adv audit MODEL --eps 0.1,0.2 --out DIR [--data mnist5k]
        [--train-data mnist5k:train|FILE.npz] [--norm linf|l2]
        [--sigma 0.25] [--attacks standard|...] [--num-examples 500]
        [--compare OLD.json] [--overwrite] [--seed 0] [--trust-model]
        [--no-progress]

Writes `DIR/report.html` (one self-contained page) and `DIR/report.json`,
each through a temporary file and a rename, so a run that fails leaves
neither half-written.
"""

import os
import shlex
import sys

from keras_adv.commands import common

NAME = "audit"
OUTPUTS = ("report.html", "report.json")


def add_parser(subparsers):
    """Adds `audit` to an argparse subparsers object; returns its parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = subparsers.add_parser(
        NAME, help="the whole threat model of a model, as one web page",
        description="Runs the attack suite with the masking checks, an "
        "example grid, randomized-smoothing certification (--sigma) and a "
        "poisoning scan of the training data (--train-data), and writes "
        "DIR/report.html and DIR/report.json.")
    common.add_model_argument(p)
    common.add_attack_options(p, example="0.1,0.2")
    p.add_argument("--sigma", type=float, default=None,
                   help="smoothing noise for certification (none: skipped)")
    p.add_argument("--n", type=int, default=1000,
                   help="certification noise samples per example")
    p.add_argument("--train-data", default=None,
                   help="training data for the poisoning scan: "
                   "mnist5k:train or an .npz file (none: skipped)")
    p.add_argument("--expected-fraction", type=float, default=0.1,
                   help="spectral signatures: expected poisoned share of a "
                   "class")
    p.add_argument("--out", required=True,
                   help="directory for report.html and report.json")
    p.add_argument("--overwrite", action="store_true",
                   help="write into --out even if it holds other files")
    p.add_argument("--compare", default=None,
                   help="an earlier audit's report.json: adds its numbers "
                   "and the differences")
    common.add_shared_options(p, num_examples=500, plot=False, json=False)
    return p


def check(args):
    """Checks every flag without TensorFlow; raises `common.UsageError`.

    Example: `check(parser.parse_args(["audit", "m.keras", "--eps", "0.1",
    "--out", "audit"]))`.
    """
    common.check_shared(args)
    common.check_attack_options(args)
    if args.sigma is not None and not args.sigma > 0:
        raise common.UsageError(f"--sigma must be > 0. Received: --sigma "
                                f"{args.sigma}")
    common.check_count("--n", args.n)
    if not 0 <= args.expected_fraction <= 1:
        raise common.UsageError(
            "--expected-fraction must be in [0, 1]. Received: "
            f"--expected-fraction {args.expected_fraction}")
    if args.train_data is not None:
        common.check_data(args.train_data, "--train-data")
    _check_out(args.out, args.overwrite)
    if args.compare is not None and not os.path.isfile(args.compare):
        raise common.UsageError(
            "--compare must be an earlier audit's report.json. Received: "
            f"--compare {args.compare} (file not found)")


def _check_out(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise common.UsageError(f"--out must be a directory. Received: "
                                f"--out {out} (a file)")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise common.UsageError(f"--out must be in an existing directory. "
                                f"Received: --out {out} ({parent} does not "
                                "exist)")
    others = sorted(set(os.listdir(out)) - set(OUTPUTS)) if os.path.isdir(
        out) else []
    if others and not overwrite:
        raise common.UsageError(
            f"--out must be empty or hold only an earlier audit (or pass "
            f"--overwrite). Received: --out {out} holding {others[0]!r}"
            + (f" and {len(others) - 1} more" if len(others) > 1 else ""))


def run(args):
    """Audits, prints the summary, writes the page and the JSON; returns 0.

    Example: `run(parser.parse_args(["audit", "m.keras", "--eps", "0.1",
    "--out", "audit"]))`.
    """
    stages = common.Stages(NAME, args)
    baseline = _baseline(args.compare)
    stages("loading the data")
    x, y = common.load_data(args.data, args.num_examples)
    train = None
    if args.train_data is not None:
        train = common.load_data(args.train_data)
    stages("loading the model")
    model = common.load_model(NAME, args.model, args.trust_model)
    from keras_adv.auditing import audit
    from keras_adv.evaluation import MaskingWarning
    from keras_adv.models import loading

    from_logits = loading.probe_outputs(model, x)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskingWarning)  # on the page
        report = audit(
            model, x, y, eps=common.parse_floats("--eps", args.eps),
            norm=args.norm, attacks=args.attacks, sigma=args.sigma, n=args.n,
            x_train=None if train is None else train[0],
            y_train=None if train is None else train[1],
            expected_fraction=args.expected_fraction, seed=args.seed,
            batch_size=args.batch_size, from_logits=from_logits,
            progress=not args.no_progress, on_stage=stages,
            data_name=args.data,
            train_data_name=args.train_data, source=args.model,
            command=_command(args))
    report.baseline = baseline
    stages("writing the page")
    os.makedirs(args.out, exist_ok=True)
    report.to_json(os.path.join(args.out, "report.json"))
    report.to_html(os.path.join(args.out, "report.html"))
    print(report.table())
    for name in OUTPUTS:
        print(f"wrote {os.path.join(args.out, name)}")
    return 0


def _baseline(path):
    if path is None:
        return None
    from keras_adv.auditing import AuditReport

    try:
        return AuditReport.from_json(path).headline()
    except (ValueError, KeyError, TypeError) as e:
        raise common.UsageError(
            "--compare must be an earlier audit's report.json. Received: "
            f"--compare {path} ({e})") from None


def _command(args):
    """The command line that reproduces this run (`cli.main` keeps the
    arguments it parsed in `args.argv`)."""
    argv = getattr(args, "argv", None) or sys.argv[1:]
    return "keras-adv " + " ".join(shlex.quote(str(a)) for a in argv)
