"""`keras-adv certify`: certified accuracy of a saved model by randomized
smoothing.

    keras-adv certify MODEL --sigma 0.25 [--data mnist5k] [--n 10000]
        [--n0 100] [--alpha 0.001] [--num-examples 500] [--batch-size 1000]
        [--radii 0,0.25,0.5,0.75,1] [--seed 0] [--json out.json]
        [--plot out.png] [--trust-model] [--no-progress]

`--n` and `--n0` are the Monte-Carlo counts of Cohen et al. (the paper's
names), the only counts so named; examples are `--num-examples`.
"""

from keras_adv.commands import common, paths

NAME = "certify"
# This command's own flags and their checks (`common.check_shared`).
FLAGS = {"--sigma": common.check_positive, "--alpha": common.check_level,
         "--n": common.check_count, "--n0": common.check_count,
         "--radii": common.parse_floats}


def add_parser(subparsers):
    """Adds `certify` to an argparse subparsers object; returns its parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = common.command_parser(
        subparsers, NAME, help="certified accuracy by randomized smoothing",
        description="Certifies a saved model's Gaussian-smoothed classifier "
        "(Cohen et al. 2019) and prints the certified accuracy per L2 "
        "radius.")
    p.add_argument("--sigma", type=float, required=True,
                   help="noise standard deviation of the smoothing")
    p.add_argument("--n", type=int, default=10_000,
                   help="certification noise samples per example")
    p.add_argument("--n0", type=int, default=100,
                   help="selection noise samples per example")
    p.add_argument("--alpha", type=float, default=0.001,
                   help="failure probability of each certificate")
    p.add_argument("--radii", default="0,0.25,0.5,0.75,1",
                   help="comma-separated L2 radii to report")
    common.add_shared_options(p, num_examples=500, batch_size=1000)
    return p


def check(args):
    """Checks every flag without TensorFlow; raises `common.UsageError`.

    Example: `check(parser.parse_args(["certify", "m.keras", "--sigma",
    "0.25"]))`.
    """
    common.check_shared(args, FLAGS)
    if args.plot:
        common.check_modules(NAME, ["matplotlib"])
    paths.check_io(args, reads={"MODEL": args.model, "--data": args.data},
                   writes={"--json": args.json, "--plot": args.plot})


def run(args):
    """Certifies, prints the table, writes `--json` and `--plot`; returns 0.

    Example: `run(parser.parse_args(["certify", "m.keras", "--sigma",
    "0.25"]))`.
    """
    with common.stages(NAME, args) as stages, common.warning_lines(NAME):
        x, y, model = common.load_inputs(NAME, args, stages)
        from keras_adv.certification import evaluate_certified

        stages(f"certifying {len(x)} examples ({args.n0} + {args.n} noise "
               f"samples each)")
        report = evaluate_certified(
            model, x, y, sigma=args.sigma,
            radii=common.parse_floats("--radii", args.radii), n0=args.n0,
            n=args.n, alpha=args.alpha, batch_size=args.batch_size,
            seed=args.seed)
    print(report.table())
    common.write_outputs(report, args.json, args.plot)
    return 0
