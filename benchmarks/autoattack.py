"""The standard suite against the reference AutoAttack, on the same weights.

For an undefended, an L-inf PGD-trained and an L2 PGD-trained small_cnn on
mnist5k (trained here), the Keras weights are copied into the equivalent
PyTorch module (the logits must agree to 1e-4) and, for each cell (norm,
eps), on the same test images:

- keras_adv: `evaluate_robustness(attacks="standard")`: APGD-CE, APGD-T,
  FAB-T, Square (100 iterations each, 9 targets, 5000 queries);
- AutoAttack at its original budgets, the torchattacks port: APGD-CE,
  APGD-T, FAB-T (multi-targeted) at 100 steps and Square with 5000 queries,
  each on the points still robust (torchattacks' `MultiAttack`; its own
  `AutoAttack` class defaults to 10 steps).

It prints per cell the clean and robust accuracy of each, the examples
that only one of them breaks, the union (robust under both), and the wall
times side by side, alternating which runs first; at the end, what each
stage of each side broke that the stages before it had not, with its
seconds (a stage kept must earn its time). torch and torchattacks
live in this benchmark's own environment, `.venv-autoattack`, which
`python3 dev.py bench autoattack` makes (torch 2.13.0, CPU;
torchattacks 3.5.1 without its unused torchvision dependency).

    python3 dev.py bench autoattack [--num_examples 500] [--cells linf:0.1,l2:1.5]
        [--models undefended,pgd,pgd_l2] [--json out/autoattack.json]

With `--fab_only`, FAB-T alone at L2 (100 steps, the 9 targets in turn,
each on the points not yet fooled, both sides with the same large eps
`--fab_eps` so that the norms found are the minimal ones): per model, the
fooled count and the median L2 norm of each, and the same with the
runner-up class as the only target.

    python3 dev.py bench autoattack --fab_only --models pgd --num_examples 200
"""

import functools
import os
import tempfile
import time

from absl import app, flags

from examples.common import define_flags
from keras_adv.commands.common import STANDARD_NAMES

flags.DEFINE_string("cells", "linf:0.1,linf:0.2,linf:0.3,l2:1.5,l2:2.5",
                    "Cells as norm:eps, comma-separated.")
flags.DEFINE_string("models", "undefended,pgd,pgd_l2",
                    "Models: undefended, pgd (L-inf trained), pgd_l2.")
flags.DEFINE_integer("epochs", 8, "PGD training epochs.")
flags.DEFINE_float("train_eps", 0.3, "PGD training budget (L-inf).")
flags.DEFINE_float("train_eps_l2", 2.0, "PGD training budget (L2).")
flags.DEFINE_string("json", None, "Write the rows to this JSON file as "
                    "each cell finishes.")
flags.DEFINE_integer("threads", 2, "Threads for both sides (TensorFlow "
                     "intra-op and torch).")
flags.DEFINE_boolean("fab_only", False,
                     "Only FAB-T at L2, minimal norms (see the docstring).")
flags.DEFINE_float("fab_eps", 10.0, "The L2 eps of --fab_only.")
define_flags(quick=None, num_examples=500)
FLAGS = flags.FLAGS


def keras_models():
    """The undefended, the L-inf PGD-trained and the L2 PGD-trained
    small_cnn (each an `AdversarialModel` through `train_small_cnn`, eps
    warmed up over the first 3 epochs), with the test data."""
    from benchmarks.common import mnist5k, train_small_cnn
    from keras_adv import defenses

    (x_train, y_train), test = mnist5k()
    nets = {}
    for name in FLAGS.models.split(","):
        if name == "undefended":
            nets[name] = train_small_cnn(x_train, y_train, epochs=3,
                                         seed=FLAGS.seed)
            continue
        norm, eps = (("linf", FLAGS.train_eps) if name == "pgd"
                     else ("l2", FLAGS.train_eps_l2))
        defense = defenses.PGDTraining(eps=eps, norm=norm, steps=10,
                                       step_size=eps / 4, warmup_epochs=3)
        nets[name] = train_small_cnn(x_train, y_train, epochs=FLAGS.epochs,
                                     seed=FLAGS.seed, defense=defense).base
    return nets, test


def torch_twin(model):
    """The PyTorch module computing `small_cnn`'s logits from NCHW images
    (Keras' 'same' padding at stride 2 pads one pixel at the bottom and
    right; Flatten reads NHWC)."""
    import torch
    import torch.nn.functional as F

    conv1, conv2, dense1, dense2 = [
        layer for layer in model.layers if layer.get_weights()]

    def t(a):
        return torch.tensor(a, dtype=torch.float32)

    k1, b1 = conv1.get_weights()
    k2, b2 = conv2.get_weights()
    w3, b3 = dense1.get_weights()
    w4, b4 = dense2.get_weights()

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.k1 = torch.nn.Parameter(t(k1).permute(3, 2, 0, 1))
            self.b1 = torch.nn.Parameter(t(b1))
            self.k2 = torch.nn.Parameter(t(k2).permute(3, 2, 0, 1))
            self.b2 = torch.nn.Parameter(t(b2))
            self.w3 = torch.nn.Parameter(t(w3).T)
            self.b3 = torch.nn.Parameter(t(b3))
            self.w4 = torch.nn.Parameter(t(w4).T)
            self.b4 = torch.nn.Parameter(t(b4))

        def forward(self, x):
            h = F.relu(F.conv2d(F.pad(x, (0, 1, 0, 1)), self.k1, self.b1,
                                stride=2))
            h = F.relu(F.conv2d(F.pad(h, (0, 1, 0, 1)), self.k2, self.b2,
                                stride=2))
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
            h = F.relu(F.linear(h, self.w3, self.b3))
            return F.linear(h, self.w4, self.b4)

    return Twin().eval()


def run_keras_adv(model, x, y, norm, eps):
    """Per example the stage that broke it (-1: robust; `len(STANDARD)`:
    misclassified clean), the seconds and the report of the standard
    suite."""
    import warnings

    from keras_adv.evaluation import checkpoint, evaluate_robustness

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.ckpt")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = evaluate_robustness(
                model, x, y, eps=eps, norm=norm, seed=FLAGS.seed,
                progress=False, metrics=False, checkpoint=path)
        seconds = time.perf_counter() - start
        _, robust, _ = checkpoint.load(path)
    return _stages(robust), seconds, report


def _stages(robust):
    """The stage that broke each example, from the cumulative robust flags
    (column 0 clean, then one per stage): -1 for robust throughout, the
    number of stages for an example misclassified clean."""
    import numpy as np

    robust = robust.astype(bool)
    broken = ~robust[:, 1:]
    stage = np.where(broken.any(1), broken.argmax(1), -1)
    return np.where(robust[:, 0], stage, broken.shape[1])


# The standard suite's stages, in its order, which is also AutoAttack's.
STAGES = STANDARD_NAMES


def run_autoattack(twin, x, y, norm, eps):
    """Per example the stage that broke it (as `run_keras_adv`), and the
    seconds per stage, of AutoAttack at its original budgets
    (torchattacks), each stage on the points still robust."""
    import numpy as np
    import torch
    import torchattacks

    common = dict(norm="Linf" if norm == "linf" else "L2", eps=eps,
                  seed=FLAGS.seed)
    attacks = [
        torchattacks.APGD(twin, loss="ce", steps=100, n_restarts=1, **common),
        torchattacks.APGDT(twin, steps=100, n_restarts=1, n_classes=10,
                           **common),
        torchattacks.FAB(twin, steps=100, n_restarts=1, multi_targeted=True,
                         n_classes=10, **common),
        torchattacks.Square(twin, n_queries=5000, n_restarts=1, **common),
    ]
    images = torch.tensor(np.transpose(x, (0, 3, 1, 2)))
    labels = torch.tensor(y, dtype=torch.long)
    with torch.no_grad():
        correct = twin(images).argmax(1).numpy() == y
    stage = np.where(correct, -1, len(attacks))
    seconds = {}
    for k, (name, attack) in enumerate(zip(STAGES, attacks)):
        idx = np.flatnonzero(stage == -1)
        start = time.perf_counter()
        if len(idx):
            adv = attack(images[idx], labels[idx]).detach()
            with torch.no_grad():
                pred = twin(adv).argmax(1).numpy()
            delta = (adv - images[idx]).reshape(len(idx), -1)
            size = (delta.abs().amax(1) if norm == "linf"
                    else delta.norm(dim=1)).numpy()
            fooled = (pred != y[idx]) & (size <= eps + 1e-5)
            stage[idx[fooled]] = k
        seconds[name] = time.perf_counter() - start
    return stage, seconds


def fab_minimal(model, twin, x, y, targets):
    """FAB-T at L2 on both sides, `targets` classes in turn: per side the
    fooled count, the median L2 norm of the fooled points and the seconds.
    """
    import numpy as np
    import torch
    import torchattacks

    from keras_adv.attacks import fab

    start = time.perf_counter()
    ours = fab(model, x, y, norm="l2", eps=FLAGS.fab_eps, steps=100,
               targeted=True, target_classes=targets, seed=FLAGS.seed).numpy()
    ours_s = time.perf_counter() - start
    attack = torchattacks.FAB(twin, norm="L2", eps=FLAGS.fab_eps, steps=100,
                              n_restarts=1, multi_targeted=True, n_classes=10,
                              seed=FLAGS.seed)
    attack.n_target_classes = targets
    start = time.perf_counter()
    ref = attack(torch.tensor(np.transpose(x, (0, 3, 1, 2))),
                 torch.tensor(y, dtype=torch.long))
    ref_s = time.perf_counter() - start
    ref = np.transpose(ref.detach().numpy(), (0, 2, 3, 1))
    out = {}
    for name, adv, seconds in (("keras_adv", ours, ours_s),
                               ("reference", ref, ref_s)):
        fooled = np.argmax(model.predict(adv, verbose=0), -1) != y
        size = np.linalg.norm((adv - x).reshape(len(x), -1), axis=1)
        out[name] = (int(fooled.sum()), float(np.median(size[fooled])),
                     seconds)
    return out


def main_fab(nets, x, y):
    """--fab_only: FAB-T at L2, ours against torchattacks' FAB."""
    import numpy as np
    import torch

    for name in FLAGS.models.split(","):
        model = nets[name]
        twin = torch_twin(model)
        keep = np.argmax(model.predict(x, verbose=0), -1) == y
        xs, ys = x[keep], y[keep]
        print(f"{name}: {len(xs)} correctly classified of {len(x)}")
        torch.manual_seed(FLAGS.seed)
        for targets in (9, 1):
            out = fab_minimal(model, twin, xs, ys, targets)
            (kf, kn, ks), (rf, rn, rs) = out["keras_adv"], out["reference"]
            print(f"{name} FAB-T L2 {targets} target(s): fooled keras_adv "
                  f"{kf} reference {rf}; median L2 norm keras_adv {kn:.3f} "
                  f"reference {rn:.3f} (ratio {kn / rn:.3f}); "
                  f"{ks:.0f} s vs {rs:.0f} s", flush=True)


def main(_):
    import json

    import numpy as np
    import tensorflow as tf
    import torch

    from benchmarks.common import machine

    torch.manual_seed(FLAGS.seed)
    torch.set_num_threads(FLAGS.threads)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    print(machine(), f"torch {torch.__version__}, {FLAGS.threads} threads "
          "each side")
    nets, (x_test, y_test) = keras_models()
    x, y = x_test[:FLAGS.num_examples], y_test[:FLAGS.num_examples]
    if FLAGS.fab_only:
        return main_fab(nets, x, y)
    rows = []
    for name in FLAGS.models.split(","):
        model = nets[name]
        twin = torch_twin(model)
        with torch.no_grad():
            twin_logits = twin(torch.tensor(np.transpose(x, (0, 3, 1, 2))))
        gap = float(np.abs(model.predict(x, verbose=0)
                           - twin_logits.numpy()).max())
        print(f"{name}: largest logit difference Keras vs PyTorch {gap:.2e}")
        assert gap < 1e-4, gap
        for cell in FLAGS.cells.split(","):
            norm, eps = cell.split(":")
            rows.append(_cell(name, model, twin, x, y, norm, float(eps),
                              reverse=(len(rows) % 2 == 1)))
            print(_line(rows[-1]), flush=True)
            if FLAGS.json:
                with open(FLAGS.json, "w") as f:
                    json.dump(rows, f, indent=1)
    _summary(rows)


def _cell(name, model, twin, x, y, norm, eps, reverse):
    """Both sides on one cell, in turn (`reverse`: the reference first)."""
    runs = [("keras_adv", functools.partial(run_keras_adv, model, x, y, norm,
                                            eps)),
            ("autoattack", functools.partial(run_autoattack, twin, x, y,
                                             norm, eps))]
    out = {label: fn() for label, fn in (runs[::-1] if reverse else runs)}
    ka, ka_s, report = out["keras_adv"]
    aa, aa_times = out["autoattack"]
    ka_robust, aa_robust = ka == -1, aa == -1

    def by_stage(stages):
        return {STAGES[s]: int((stages == s).sum()) for s in set(stages)}

    return dict(
        model=name, norm=norm, eps=eps, n=len(y),
        clean=report.clean_accuracy, ka=int(ka_robust.sum()),
        aa=int(aa_robust.sum()),
        only_ka=by_stage(ka[~ka_robust & aa_robust]),
        only_aa=by_stage(aa[ka_robust & ~aa_robust]),
        # What each stage earned: the examples it broke that the stages
        # before it had not (a stage that breaks none costs only time).
        ka_broke=by_stage(ka[(ka >= 0) & (ka < len(STAGES))]),
        aa_broke=by_stage(aa[(aa >= 0) & (aa < len(STAGES))]),
        ka_s=ka_s, aa_s=sum(aa_times.values()),
        ka_stages={k: round(v, 1) for k, v in report.timings.items()},
        aa_stages={k: round(v, 1) for k, v in aa_times.items()},
        first="autoattack" if reverse else "keras_adv")


def _summary(rows):
    print("\nmodel       norm  eps   clean  keras_adv  autoattack  excess  "
          "only_ka          only_aa          ka_s    aa_s    speed")
    for row in rows:
        print(_line(row))
    n = rows[0]["n"]
    worst = max(row["ka"] - row["aa"] for row in rows)
    slowest = min(row["aa_s"] / row["ka_s"] for row in rows)
    total = sum(r["aa_s"] for r in rows) / sum(r["ka_s"] for r in rows)
    print(f"\nlargest excess of keras_adv's robust count over AutoAttack's: "
          f"{worst:+d} of {n} ({100 * worst / n:+.1f}%)")
    print(f"speed (AutoAttack seconds / keras_adv seconds): slowest cell "
          f"{slowest:.2f}x, all cells {total:.2f}x")
    print("\nwhat each stage broke (not broken by the stages before it) "
          "and its seconds, over all cells:")
    for side in ("ka", "aa"):
        cells = "  ".join(
            f"{stage} {sum(r[side + '_broke'].get(stage, 0) for r in rows)} "
            f"in {sum(r[side + '_stages'].get(stage, 0) for r in rows):.0f} s"
            for stage in STAGES)
        print(f"  {'keras_adv ' if side == 'ka' else 'AutoAttack'}  {cells}")


def _line(row):
    def names(d):
        return ",".join(f"{k}:{v}" for k, v in sorted(d.items())) or "-"

    return (f"{row['model']:<11} {row['norm']:<5} {row['eps']:<5} "
            f"{row['clean']:.3f}  {row['ka']:<9}  {row['aa']:<10}  "
            f"{row['ka'] - row['aa']:+d}{'':5}{names(row['only_ka']):<16} "
            f"{names(row['only_aa']):<16} {row['ka_s']:<6.1f}  "
            f"{row['aa_s']:<6.1f}  {row['aa_s'] / row['ka_s']:.2f}x")


if __name__ == "__main__":
    app.run(main)
