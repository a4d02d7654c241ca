"""`keras-adv evaluate`: worst-case robust accuracy of a saved model.

    keras-adv evaluate MODEL --eps 0.1,0.2,0.3 [--data mnist5k]
        [--norm linf|l2] [--attacks standard|pgd,...] [--eot N]
        [--num-examples 1000] [--batch-size 500] [--checkpoint run.ckpt]
        [--seed 0] [--json out.json] [--plot out.png] [--trust-model]
        [--no-progress]

The model may return logits or probabilities (read by
`keras_adv.models.loading.probe_outputs`). Progress goes to stderr: a bar
on a terminal, plain lines otherwise (at most one every 5 s, at least one
every 10 s while an attack runs, naming it). An eps larger than the data's
range is a warning line.
"""

from keras_adv.commands import common, paths

NAME = "evaluate"
ATTACK_NAMES = common.ATTACK_NAMES
# This command's own flags and their checks (`common.check_shared`).
FLAGS = {"--eot": common.check_count}


def add_parser(subparsers):
    """Adds `evaluate` to an argparse subparsers object; returns its parser.

    Example: `add_parser(parser.add_subparsers(dest="command"))`.
    """
    p = common.command_parser(
        subparsers, NAME, help="worst-case robust accuracy of a saved model",
        description="Runs an attack suite on a saved model and prints the "
        "robust accuracy per eps, with gradient-masking warnings.")
    common.add_attack_options(p)
    p.add_argument("--eot", type=int, default=None,
                   help="EOT samples per gradient for randomised models "
                   "(default: one pass)")
    p.add_argument("--checkpoint", default=None,
                   help="save progress here after every chunk; run the "
                   "same command again to resume (the file is kept)")
    common.add_shared_options(p, num_examples=1000, batch_size=500)
    return p


def check(args):
    """Checks every flag without TensorFlow; raises `common.UsageError`.

    Example: `check(parser.parse_args([...]))`.
    """
    common.check_shared(args, FLAGS)
    common.check_attack_options(args)
    if args.plot:
        common.check_modules(NAME, ["matplotlib"])
    paths.check_io(args, reads={"MODEL": args.model, "--data": args.data},
                   writes={"--json": args.json, "--plot": args.plot,
                           "--checkpoint": args.checkpoint})


def run(args):
    """Evaluates, prints the table, writes `--json` and `--plot`; returns 0.

    Example: `run(parser.parse_args(["evaluate", "m.keras", "--eps",
    "0.1"]))`.
    """
    with common.stages(NAME, args) as stages, common.warning_lines(NAME):
        report = _evaluate(args, stages)
    print(report.table())
    common.write_outputs(report, args.json, args.plot)
    return 0


def _evaluate(args, stages):
    import warnings

    eps = common.parse_floats("--eps", args.eps)
    if args.data.startswith("tfds:"):
        name = common.data_name(args.data)
        stages(f"loading the data ({name})")
        x, y = common.stream_tfds(args.data), None
        probe = next(iter(x.take(1)))[0].numpy()
        stages(f"data: {name} (a stream; up to {args.num_examples} examples)")
        stages("loading the model")
        model = common.load_model(NAME, args.model, args.trust_model)
    else:
        x, y, model = common.load_inputs(NAME, args, stages)
        probe = x
    from keras_adv.evaluation import MaskingWarning, evaluate_robustness
    from keras_adv.models import loading

    from_logits = loading.probe_outputs(model, probe)
    stages(f"attacking ({args.attacks}, eps {args.eps})")
    with warnings.catch_warnings():
        # The table below lists every MaskingWarning; do not print them twice.
        warnings.simplefilter("ignore", MaskingWarning)
        return evaluate_robustness(
            model, x, y, eps=eps, norm=args.norm, attacks=args.attacks,
            eot_samples=args.eot, batch_size=args.batch_size, seed=args.seed,
            from_logits=from_logits, progress=not args.no_progress,
            num_examples=args.num_examples, checkpoint=args.checkpoint)
