"""`keras-adv poison-scan`: is a training set poisoned, and which rows.

    keras-adv poison-scan MODEL --data FILE.npz|mnist5k:train
        [--alpha 0.05] [--expected-fraction F]
        [--method both|spectral|clustering|verdict] [--layer NAME]
        [--remove-factor 1.5] [--size-threshold 0.35] [--components 10]
        [--num-examples N] [--batch-size 256] [--json out.json]
        [--trust-model] [--no-progress]

MODEL is a model trained on the data. Prints one verdict line first (`no
evidence of poisoning at alpha 0.05`, or `poisoned: class 0 (~250 rows,
estimated)`), then the test per class and the rows that spectral
signatures and activation clustering flag
(`keras_adv.poisoning.scan_training_set`, a `PoisonScanReport`; the rows to
remove are its `flagged()`, in the `--json` report). A
SavedModel's inner layers are not reachable through its serving signature:
it is scanned on its output scores (`keras_adv.models.loading.keras_view`),
a weaker signal than a `.keras` file's penultimate layer.
"""

from keras_adv.commands import common, paths

NAME = "poison-scan"
METHODS = ("both", "spectral", "clustering", "verdict")
# This command's own flags and their checks (`common.check_shared`).
FLAGS = {"--alpha": common.check_level,
         "--expected-fraction": common.check_share,
         "--remove-factor": common.check_positive,
         "--size-threshold": common.check_level,
         "--components": common.check_count}


def add_parser(subparsers):
    """Adds `poison-scan` to an argparse subparsers object; returns its
    parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = common.command_parser(
        subparsers, NAME, help="decide whether a training set is poisoned",
        description="Tests each class's representations for a poisoned "
        "sub-population at a stated false-alarm level and names the rows to "
        "remove; spectral signatures (Tran et al. 2018) and activation "
        "clustering (Chen et al. 2018) run beside it.")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="false-alarm level of the whole scan, in (0, 1)")
    p.add_argument("--expected-fraction", type=float, default=None,
                   help="poisoned share of a suspect class (default: "
                   "estimated per class)")
    p.add_argument("--method", default="both", choices=METHODS,
                   help="the detectors run beside the verdict: both, "
                   "spectral, clustering, or none (verdict)")
    p.add_argument("--layer", default=None,
                   help="layer name (default: the input of the last layer)")
    p.add_argument("--remove-factor", type=float, default=1.5,
                   help="spectral signatures: rows flagged per class, as a "
                   "multiple of the expected fraction")
    p.add_argument("--size-threshold", type=float, default=0.35,
                   help="activation clustering: a cluster smaller than this "
                   "share of its class is flagged")
    p.add_argument("--components", type=int, default=10,
                   help="dimensions kept before clustering")
    common.add_shared_options(p, data=None, batch_size=256, plot=False)
    return p


def check(args):
    """Checks every flag without TensorFlow; raises `common.UsageError`.

    Example: `check(parser.parse_args(["poison-scan", "m.keras", "--data",
    "mnist5k:train"]))`.
    """
    common.check_shared(args, FLAGS)
    if args.method in ("both", "clustering"):
        common.check_modules(NAME, ["sklearn"])
    paths.check_io(args, reads={"MODEL": args.model, "--data": args.data},
                   writes={"--json": args.json})


def run(args):
    """Scans, prints the verdict line then the detail, writes `--json`;
    returns 0.

    Example: `run(parser.parse_args(["poison-scan", "m.keras", "--data",
    "mnist5k:train"]))`.
    """
    with common.stages(NAME, args) as stages, common.warning_lines(NAME):
        x, y, model = common.load_inputs(NAME, args, stages)
        from keras_adv.models.loading import keras_view
        from keras_adv.poisoning import scan_training_set

        model = keras_view(model)
        stages(f"scanning {len(x)} rows ({args.method})")
        report = scan_training_set(
            model, x, y, alpha=args.alpha, method=args.method,
            expected_fraction=args.expected_fraction, layer=args.layer,
            remove_factor=args.remove_factor,
            size_threshold=args.size_threshold, n_components=args.components,
            seed=args.seed, batch_size=args.batch_size)
    print(verdict_line(report))
    print(report.table())
    common.write_outputs(report, args.json)
    return 0


def verdict_line(report):
    """The one line the command prints first: `no evidence of poisoning at
    alpha 0.05`, or `poisoned: class 0 (~250 rows, estimated)` (`given`
    when `--expected-fraction` set the share).

    Example: `verdict_line(report)`.
    """
    if not report.poisoned:
        return f"no evidence of poisoning at alpha {report.alpha:g}"
    how = "estimated" if report.expected_fraction is None else "given"
    parts = [f"{c} (~{len(report.classes[str(c)]['flagged'])} rows, {how})"
             for c in report.suspect_classes]
    word = "class" if len(parts) == 1 else "classes"
    return f"poisoned: {word} {', '.join(parts)}"
