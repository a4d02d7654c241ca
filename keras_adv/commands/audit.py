"""`keras-adv audit`: the whole threat model of a saved model, as one web
page and its JSON.

    keras-adv audit MODEL --eps 0.1,0.2 --out DIR [--data mnist5k]
        [--train-data mnist5k:train|FILE.npz] [--poison-alpha 0.05]
        [--expected-fraction F] [--norm linf|l2]
        [--sigma 0.25] [--attacks standard|...] [--num-examples 500]
        [--compare OLD.json] [--overwrite] [--seed 0] [--trust-model]
        [--no-progress]

Writes `DIR/report.html` (one self-contained page) and `DIR/report.json`
only once both are made (each through a temporary file, then both renamed),
so a run that fails leaves neither. The page's modules (Jinja2, matplotlib;
scikit-learn for `--train-data`) are checked before any work.
"""

import os
import shlex
import sys

from keras_adv.commands import common, paths

NAME = "audit"
OUTPUTS = ("report.html", "report.json")
# The top-level fields of an AuditReport's JSON (`AuditReport.to_dict`),
# known here without TensorFlow: what `--compare` must hold.
REPORT_FIELDS = ("summary", "evasion", "examples")
# --train-data names training data: these name the test split.
TEST_SPLITS = ("mnist5k", "mnist5k:test")
# This command's own flags and their checks (`common.check_shared`).
FLAGS = {"--sigma": common.check_positive, "--n": common.check_count,
         "--poison-alpha": common.check_level,
         "--expected-fraction": common.check_share}


def add_parser(subparsers):
    """Adds `audit` to an argparse subparsers object; returns its parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = common.command_parser(
        subparsers, NAME,
        help="the whole threat model of a model, as one web page",
        description="Runs the attack suite with the masking checks, an "
        "example grid, randomized-smoothing certification (--sigma) and a "
        "poisoning scan of the training data (--train-data), and writes "
        "DIR/report.html and DIR/report.json.")
    common.add_attack_options(p, example="0.1,0.2")
    p.add_argument("--sigma", type=float, default=None,
                   help="smoothing noise for certification (none: skipped)")
    p.add_argument("--n", type=int, default=1000,
                   help="certification noise samples per example")
    p.add_argument("--train-data", default=None,
                   help="training data for the poisoning scan: "
                   "mnist5k:train, an .npz file or tfds:NAME:SPLIT (none: "
                   "skipped)")
    p.add_argument("--poison-alpha", type=float, default=0.05,
                   help="the poisoning scan's false-alarm level, in (0, 1) "
                   "(certification's alpha stays 0.001)")
    p.add_argument("--expected-fraction", type=float, default=None,
                   help="poisoned share of a suspect class, in [0, 1] "
                   "(default: estimated per class)")
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
    common.check_shared(args, FLAGS)
    common.check_attack_options(args)
    _check_train_data(args.train_data)
    common.check_modules(NAME, ["jinja2", "matplotlib"] + (
        ["sklearn"] if args.train_data is not None else []))
    _check_out(args.out, args.overwrite)
    reads = {"MODEL": args.model, "--data": args.data,
             "--train-data": args.train_data}
    paths.check_io(args, reads=reads, writes={})
    if args.compare is not None:
        paths.check_report_file("--compare", args.compare, REPORT_FIELDS,
                                "an earlier audit's report.json")
    _check_out_apart(args.out, dict(reads, **{"--compare": args.compare}))


def _check_out_apart(out, reads):
    """--out neither holds an input (report.json may be --compare) nor lies
    inside one (a SavedModel directory)."""
    for flag, path in reads.items():
        if not path or not paths.names_a_file(path):
            continue
        if paths.same_or_inside(path, out):
            raise common.UsageError(
                f"--out must not hold a file the command reads. Received: "
                f"--out {out} (it holds {flag} {path})")
        if paths.same_or_inside(out, path):
            raise common.UsageError(
                f"--out must not lie inside a file the command reads. "
                f"Received: --out {out} (inside {flag} {path})")


def _check_train_data(spec):
    if spec is None:
        return
    if spec in TEST_SPLITS or (spec.startswith("tfds:")
                               and spec.count(":") == 1):
        raise common.UsageError(
            "--train-data must name training data (mnist5k:train, an .npz "
            "file or tfds:NAME:SPLIT). Received: --train-data "
            f"{spec} (the test split {common.data_name(spec)})")


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
    with common.stages(NAME, args) as stages, common.warning_lines(NAME):
        report = _audit(args, stages)
        stages("writing the page")
        texts = {"report.json": report.to_json(),
                 "report.html": report.to_html()}
        _write_all(args.out, texts)
    print(report.table())
    for name in OUTPUTS:
        print(f"wrote {os.path.join(args.out, name)}")
    return 0


def _audit(args, stages):
    """Loads, then runs `keras_adv.audit`; returns the `AuditReport`."""
    import warnings

    baseline = _baseline(args.compare)
    name = common.data_name(args.data)
    stages(f"loading the data ({name})")
    x, y = common.load_data(args.data, args.num_examples)
    train = None
    if args.train_data is not None:
        train = common.load_data(args.train_data)
    stages(f"data: {name} ({len(x)} examples)" + (
        "" if train is None else f"; training data: "
        f"{common.data_name(args.train_data)} ({len(train[0])} examples)"))
    stages("loading the model")
    model = common.load_model(NAME, args.model, args.trust_model)
    from keras_adv.auditing import audit
    from keras_adv.evaluation import MaskingWarning
    from keras_adv.models import loading

    from_logits = loading.probe_outputs(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskingWarning)  # on the page
        report = audit(
            model, x, y, eps=common.parse_floats("--eps", args.eps),
            norm=args.norm, attacks=args.attacks, sigma=args.sigma, n=args.n,
            x_train=None if train is None else train[0],
            y_train=None if train is None else train[1],
            poison_alpha=args.poison_alpha,
            expected_fraction=args.expected_fraction, seed=args.seed,
            batch_size=args.batch_size, from_logits=from_logits,
            progress=False if args.no_progress else stages,
            describe={"data": name, "source": args.model,
                      "command": _command(args),
                      "train_data": None if args.train_data is None
                      else common.data_name(args.train_data)})
    report.baseline = baseline
    return report


def _write_all(out, texts):
    """Writes every `{name: text}` into `out`: all to temporary files
    first, then each renamed into place, so that a failure leaves none."""
    os.makedirs(out, exist_ok=True)
    temps = {}
    try:
        for name, text in texts.items():
            temps[name] = os.path.join(out, f".{name}.tmp-{os.getpid()}")
            with open(temps[name], "w", encoding="utf-8") as f:
                f.write(text)
        for name, temp in list(temps.items()):
            os.replace(temp, os.path.join(out, name))
            del temps[name]
    finally:
        for temp in temps.values():
            if os.path.exists(temp):
                os.remove(temp)


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
