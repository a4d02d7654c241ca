"""The main job: an undefended and a defended CNN, evaluated and exported.

On the embedded mnist5k data (no download) this script
1. trains `small_cnn` normally;
2. trains the same architecture with adversarial training (PGD-AT or TRADES,
   with a linear eps warm-up) inside `model.fit`;
3. evaluates both with `keras_adv.evaluate_robustness`: worst case per
   example over APGD-CE, targeted APGD-DLR and Square, at several eps, with
   the gradient-masking checks;
4. writes the report to `--out`: `report.txt` (table), `report.json`,
   `robustness.png` (accuracy against eps), one plot per model;
5. exports the defended model as a SavedModel (`--out/defended_savedmodel`)
   and saves both models as `.keras` files.

    python3 dev.py demo                     # about 2 minutes on 2 idle CPU cores
    python3 dev.py demo --quick             # a one-minute smoke run
    python3 dev.py demo --full_suite        # AutoAttack budgets (slower)
    python3 dev.py demo --dataset mnist     # tensorflow-datasets (network)

The default attack budgets are reduced from AutoAttack's (APGD 50 steps,
APGD-T against the 3 most likely other classes, Square 1000 queries) to fit
the time budget, and FAB-T is left out; `--full_suite` runs the standard
suite at AutoAttack's budgets (APGD-CE and APGD-T 100 steps, 9 targets,
FAB-T, Square 5000 queries).
"""

import os
import sys
import time
import warnings

from absl import app, flags
from common import compile_classifier, define_flags

flags.DEFINE_enum("defense", "pgd", ["pgd", "trades"], "Defended model's training.")
flags.DEFINE_integer("epochs", 3, "Epochs of the undefended model.")
flags.DEFINE_integer("at_epochs", 8, "Epochs of adversarial training.")
flags.DEFINE_integer("at_steps", 10, "Attack steps inside adversarial training.")
flags.DEFINE_float("eps", 0.3, "Training eps (L-inf); reached after warm-up.")
flags.DEFINE_integer("warmup", 3, "Epochs of linear eps warm-up.")
flags.DEFINE_list("eval_eps", ["0.1", "0.2", "0.3"], "Evaluation budgets.")
flags.DEFINE_bool("full_suite", False, "AutoAttack's full budgets.")
define_flags(out="out", num_examples=300, dataset=True)
FLAGS = flags.FLAGS


def suite():
    """The attack list handed to evaluate_robustness."""
    if FLAGS.full_suite:
        return "standard"
    if FLAGS.quick:
        return [("apgd-ce", {"steps": 10}), ("apgd-t", {"steps": 10,
                "target_classes": 1}), ("square", {"queries": 100})]
    return [("apgd-ce", {"steps": 50}),
            ("apgd-t", {"steps": 50, "target_classes": 3}),
            ("square", {"queries": 1000})]


def plot_comparison(reports, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, report in reports.items():
        eps = [0.0] + list(report.eps)
        acc = [report.clean_accuracy] + list(report.robust_accuracy_curve)
        ax.plot(eps, acc, marker="o", label=f"{name} (worst case)")
    ax.set_xlabel(f"eps ({reports['undefended'].norm})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Robust accuracy against eps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.epochs, FLAGS.at_epochs, FLAGS.at_steps = 1, 2, 3
        FLAGS.warmup, FLAGS.num_examples = 1, 64
    import json

    import keras
    import numpy as np

    import keras_adv

    # The report tables list the gradient-masking warnings; print them once.
    warnings.simplefilter("ignore", keras_adv.evaluation.MaskingWarning)

    start = time.perf_counter()

    def stage(text):
        print(f"[{time.perf_counter() - start:6.0f}s] {text}", flush=True)

    os.makedirs(FLAGS.out, exist_ok=True)
    keras.utils.set_random_seed(FLAGS.seed)
    stage(f"loading {FLAGS.dataset}")
    (x_train, y_train), (x_test, y_test) = keras_adv.datasets.load(FLAGS.dataset)
    x_eval, y_eval = x_test[: FLAGS.num_examples], y_test[: FLAGS.num_examples]
    classes = int(y_train.max()) + 1

    def cnn(seed):
        return keras_adv.models.small_cnn(input_shape=x_train.shape[1:],
                                          num_classes=classes, seed=seed)

    stage(f"training the undefended CNN ({FLAGS.epochs} epochs, "
          f"{len(x_train)} images)")
    undefended = compile_classifier(cnn(FLAGS.seed))
    undefended.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64,
                   verbose=2)

    if FLAGS.defense == "pgd":
        defense = keras_adv.defenses.PGDTraining(
            eps=FLAGS.eps, steps=FLAGS.at_steps, warmup_epochs=FLAGS.warmup)
    else:
        defense = keras_adv.defenses.TRADES(
            eps=FLAGS.eps, steps=FLAGS.at_steps, beta=6.0,
            warmup_epochs=FLAGS.warmup)
    stage(f"adversarial training with {defense} ({FLAGS.at_epochs} epochs)")
    defended = compile_classifier(keras_adv.models.AdversarialModel(
        cnn(FLAGS.seed + 1), defense=defense))
    defended.fit(x_train, y_train, epochs=FLAGS.at_epochs, batch_size=64,
                 verbose=2)

    eps = [float(e) for e in FLAGS.eval_eps]
    reports = {}
    for name, model in (("undefended", undefended), ("defended", defended)):
        stage(f"evaluating the {name} model on {len(x_eval)} test images, "
              f"eps {eps}")
        reports[name] = keras_adv.evaluate_robustness(
            model, x_eval, y_eval, eps=eps, attacks=suite(), seed=FLAGS.seed)

    stage("writing the report")
    lines = []
    for name, report in reports.items():
        lines.append(f"== {name} ==")
        lines.append(report.table())
        lines.append("")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(FLAGS.out, "report.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(FLAGS.out, "report.json"), "w") as f:
        json.dump({k: r.to_dict() for k, r in reports.items()}, f, indent=2)
    plot_comparison(reports, os.path.join(FLAGS.out, "robustness.png"))
    for name, report in reports.items():
        report.plot(os.path.join(FLAGS.out, f"{name}_attacks.png"))

    stage("saving and exporting")
    undefended.save(os.path.join(FLAGS.out, "undefended.keras"))
    defended.save(os.path.join(FLAGS.out, "defended.keras"))
    defended.export(os.path.join(FLAGS.out, "defended_savedmodel"),
                    verbose=False)
    stage("auditing the defended model (out/audit/report.html)")
    audit = keras_adv.audit(
        defended, x_eval, y_eval, eps=eps, evasion=reports["defended"],
        sigma=0.25, n=200 if FLAGS.quick else 1000, x_train=x_train,
        y_train=y_train, seed=FLAGS.seed,
        describe={"data": f"{FLAGS.dataset} (test)",
                  "train_data": f"{FLAGS.dataset} (training)",
                  "source": f"examples/demo.py ({type(defense).__name__})",
                  "command": " ".join(["python3 dev.py demo",
                                       *sys.argv[1:]]).strip()})
    os.makedirs(os.path.join(FLAGS.out, "audit"), exist_ok=True)
    audit.to_json(os.path.join(FLAGS.out, "audit", "report.json"))
    audit.to_html(os.path.join(FLAGS.out, "audit", "report.html"))
    gain = (np.array(reports["defended"].robust_accuracy_curve)
            - np.array(reports["undefended"].robust_accuracy_curve))
    stage("done; robust accuracy gained by the defense per eps: "
          + ", ".join(f"{e:g}: {g:+.3f}" for e, g in zip(eps, gain))
          + f"\n         outputs in {os.path.abspath(FLAGS.out)}/")


if __name__ == "__main__":
    app.run(main)
