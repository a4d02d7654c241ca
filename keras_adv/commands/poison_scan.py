"""`keras-adv poison-scan`: find poisoned rows in a training set.

    keras-adv poison-scan MODEL --data FILE.npz|mnist5k:train
        --expected-fraction F [--method both|spectral|clustering]
        [--layer NAME] [--remove-factor 1.5] [--size-threshold 0.35]
        [--components 10] [--num-examples N] [--batch-size 256]
        [--json out.json] [--trust-model] [--no-progress]

MODEL is a model trained on the data. Prints the rows that spectral
signatures and activation clustering flag, per class
(`keras_adv.poisoning.scan_training_set`, a `PoisonScanReport`). A
SavedModel's inner layers are not reachable through its serving signature:
it is scanned on its output scores (`keras_adv.models.loading.keras_view`),
a weaker signal than a `.keras` file's penultimate layer.
"""

from keras_adv.commands import common

NAME = "poison-scan"
METHODS = ("both", "spectral", "clustering")


def add_parser(subparsers):
    """Adds `poison-scan` to an argparse subparsers object; returns its
    parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = subparsers.add_parser(
        NAME, help="flag poisoned rows of a training set",
        description="Runs spectral signatures (Tran et al. 2018) and "
        "activation clustering (Chen et al. 2018) on a model trained on the "
        "data and lists the flagged rows per class.")
    common.add_model_argument(p)
    p.add_argument("--expected-fraction", type=float, default=None,
                   help="largest expected poisoned share within one class "
                   "(required unless --method clustering)")
    p.add_argument("--method", default="both", choices=METHODS)
    p.add_argument("--layer", default=None,
                   help="layer name (default: the input of the last layer)")
    p.add_argument("--remove-factor", type=float, default=1.5)
    p.add_argument("--size-threshold", type=float, default=0.35)
    p.add_argument("--components", type=int, default=10,
                   help="dimensions kept before clustering")
    common.add_shared_options(p, data=None, batch_size=256, plot=False)
    return p


def check(args):
    """Checks every flag without TensorFlow; raises `common.UsageError`.

    Example: `check(parser.parse_args(["poison-scan", "m.keras", "--data",
    "train.npz", "--expected-fraction", "0.35"]))`.
    """
    common.check_shared(args)
    f = args.expected_fraction
    if f is None and args.method != "clustering":
        raise common.UsageError(
            "--expected-fraction is required unless --method clustering. "
            f"Received: --method {args.method} without --expected-fraction")
    if f is not None and not 0.0 <= f <= 1.0:
        raise common.UsageError("--expected-fraction must be in [0, 1]. "
                                f"Received: --expected-fraction {f}")
    if not args.remove_factor > 0:
        raise common.UsageError("--remove-factor must be > 0. Received: "
                                f"--remove-factor {args.remove_factor}")
    if not 0 < args.size_threshold < 1:
        raise common.UsageError("--size-threshold must be in (0, 1). "
                                f"Received: --size-threshold "
                                f"{args.size_threshold}")
    common.check_count("--components", args.components)


def run(args):
    """Scans, prints the flagged rows, writes `--json`; returns 0.

    Example: `run(parser.parse_args(["poison-scan", "m.keras", "--data",
    "train.npz", "--expected-fraction", "0.35"]))`.
    """
    stages = common.Stages(NAME, args)
    stages("loading the data")
    x, y = common.load_data(args.data, args.num_examples)
    stages("loading the model")
    model = common.load_model(NAME, args.model, args.trust_model)
    from keras_adv.models.loading import keras_view
    from keras_adv.poisoning import scan_training_set

    model = keras_view(model)

    stages(f"scanning {len(x)} rows ({args.method})")
    report = scan_training_set(
        model, x, y, method=args.method,
        expected_fraction=args.expected_fraction, layer=args.layer,
        remove_factor=args.remove_factor, size_threshold=args.size_threshold,
        n_components=args.components, seed=args.seed,
        batch_size=args.batch_size)
    print(report.table())
    common.write_outputs(report, args.json)
    return 0
