"""What Keras' `mixed_bfloat16` policy does to speed on this CPU, vs float32.

Two workloads, each built once under `float32` and once under
`mixed_bfloat16` (the global policy is set before building each model and
restored to `float32` afterwards), timed round-robin in one process
(`benchmarks.common.interleaved_timing`, median of repeats) and printed as
the ratio bf16 speed / fp32 speed:

(a) Attack: `keras_adv.attacks.pgd`, L-inf, on `small_cnn` trained 3 epochs
    on mnist5k in float32; the bf16 model gets the same weights. Correctness:
    the adversarial examples are finite and inside the eps-ball, and the
    attack success rate (test points misclassified after the attack) under
    bf16 is compared with float32 at the timing eps and at a smaller eps,
    where the rate is not saturated.
(b) Adversarial training: `AdversarialModel` with `PGDTraining`,
    `train_on_batch` over a fixed number of mnist5k batches (examples/second),
    the same initial weights under both policies. Correctness: every loss is
    finite.

Then oneDNN evidence: the same small workload runs in a subprocess under each
policy with `ONEDNN_VERBOSE=1`, and the executed oneDNN primitives are
counted by implementation; AMX kernels carry "amx" in their name
(`brg_conv_fwd:avx10_1_512_amx` in oneDNN 3.7, `avx512_core_amx` in older
releases). Also printed: `TF_ENABLE_ONEDNN_OPTS` and whether TensorFlow
reports oneDNN as enabled.

    python3 dev.py bench bfloat16
    python3 dev.py bench bfloat16 --quick    # a smoke run of a few seconds
"""

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

from absl import app, flags

from examples.common import compile_classifier, define_flags

flags.DEFINE_integer("batch", 256, "Examples per attack call.")
flags.DEFINE_integer("steps", 20, "PGD steps of the timed attack.")
flags.DEFINE_float("eps", 0.3, "L-inf budget of the attack and the defense.")
flags.DEFINE_list("check_eps", ["0.1"],
                  "Extra budgets of the success-rate check (besides --eps).")
flags.DEFINE_integer("train_batch", 128, "Training batch size.")
flags.DEFINE_integer("train_batches", 16, "Training batches per timed run.")
flags.DEFINE_integer("train_steps", 5, "PGDTraining steps K.")
flags.DEFINE_float("train_eps", 0.1,
                   "PGDTraining eps (PGD-AT at 0.3 without warm-up stays at "
                   "chance, which would make the loss comparison empty).")
flags.DEFINE_integer("epochs", 3, "Float32 training epochs of the attacked CNN.")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per policy.")
flags.DEFINE_bool("skip_probe", False, "Skip the ONEDNN_VERBOSE subprocesses.")
flags.DEFINE_list("probe_policies", ["float32", "mixed_bfloat16"],
                  "Policies run under ONEDNN_VERBOSE=1 (--quick: bf16 only).")
flags.DEFINE_bool("skip_ablation", False,
                  "Skip the rerun in a subprocess with AMX disabled "
                  "(ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16).")
flags.DEFINE_string("probe", None,
                    "Internal: run the small oneDNN probe workload under this "
                    "policy and exit (used by the ONEDNN_VERBOSE subprocess).")
define_flags(quick="A smoke run of seconds: tiny sizes, the bf16 oneDNN probe "
                  "only, no AMX-off rerun.")
FLAGS = flags.FLAGS

POLICIES = ("float32", "mixed_bfloat16")
ROOT = Path(__file__).resolve().parents[1]


def apply_quick():
    if FLAGS.quick:
        FLAGS.batch, FLAGS.steps, FLAGS.epochs, FLAGS.repeats = 64, 3, 1, 2
        FLAGS.train_batch, FLAGS.train_batches, FLAGS.train_steps = 32, 2, 2
        FLAGS.probe_policies, FLAGS.skip_ablation = ["mixed_bfloat16"], True


def build(policy, build_fn):
    """`build_fn()` with the global policy set to `policy`; always restores
    float32 afterwards."""
    import keras

    try:
        keras.mixed_precision.set_global_policy(policy)
        return build_fn()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def adversarial_model(policy):
    """A compiled PGD-AT AdversarialModel with the same initial weights under
    every policy (the variables are float32 under both)."""
    import keras

    from keras_adv import defenses, models

    def make():
        keras.utils.set_random_seed(FLAGS.seed)
        model = models.AdversarialModel(
            models.small_cnn(seed=FLAGS.seed),
            defense=defenses.PGDTraining(eps=FLAGS.train_eps,
                                         steps=FLAGS.train_steps))
        return compile_classifier(model)

    return build(policy, make)


class Recorder:
    """Wraps callables to keep every timing (interleaved_timing returns only
    medians), so the spread of the per-round ratio can be printed."""

    def __init__(self):
        self.times = collections.defaultdict(list)

    def wrap(self, name, fn):
        import time

        def timed():
            start = time.perf_counter()
            out = fn()
            self.times[name].append(time.perf_counter() - start)
            return out

        return timed

    def round_ratios(self, fp32, bf16):
        """bf16 speed / fp32 speed in each timed round (warm-up dropped)."""
        a, b = self.times[fp32][1:], self.times[bf16][1:]
        return [x / y for x, y in zip(a, b)]


def spread(ratios):
    return f"per-round {min(ratios):.2f}x to {max(ratios):.2f}x"


def timed_speeds(fns, examples, rec):
    """Times `fns` (one per policy) interleaved, prints examples/second per
    policy and the bf16/fp32 ratio with its per-round spread; returns the
    ratio."""
    from benchmarks.common import interleaved_timing

    times = interleaved_timing(fns, FLAGS.repeats)
    for p in POLICIES:
        print(f"   {p:16s} {examples / times[p]:9.1f} ex/s")
    ratio = times["float32"] / times["mixed_bfloat16"]
    print(f"   bf16 / fp32 speed: {ratio:.2f}x "
          f"({spread(rec.round_ratios('float32', 'mixed_bfloat16'))})")
    return ratio


def part_attack(x, y, weights):
    """(a) PGD throughput and success rate under both policies."""
    import numpy as np

    from keras_adv import attacks, models

    nets = {p: build(p, lambda: models.small_cnn(seed=FLAGS.seed))
            for p in POLICIES}
    for net in nets.values():
        net.set_weights(weights)
    kw = dict(eps=FLAGS.eps, steps=FLAGS.steps, seed=FLAGS.seed)
    rec = Recorder()
    fns = {p: rec.wrap(p, (lambda n: lambda: attacks.pgd(n, x, y, **kw).numpy())(
        nets[p])) for p in POLICIES}
    print(f"(a) PGD-{FLAGS.steps} L-inf eps={FLAGS.eps} (step 2.5*eps/steps, "
          f"random start), batch {len(x)} of mnist5k test images, small_cnn "
          f"trained {FLAGS.epochs} epochs in float32 (bf16 model: same "
          f"weights); median of {FLAGS.repeats} interleaved runs")
    ratio = timed_speeds(fns, len(x), rec)

    print("   correctness (same examples, seed and weights):")
    ok = True
    clean = {p: float(np.mean(np.argmax(nets[p].predict(x, verbose=0), 1) == y))
             for p in POLICIES}
    print(f"   clean accuracy     fp32 {clean['float32']:.3f}   "
          f"bf16 {clean['mixed_bfloat16']:.3f}")
    for eps in dict.fromkeys([FLAGS.eps] + [float(e) for e in FLAGS.check_eps]):
        rate, finite, inside = {}, {}, {}
        for p in POLICIES:
            adv = attacks.pgd(nets[p], x, y, eps=eps, steps=FLAGS.steps,
                              seed=FLAGS.seed).numpy()
            finite[p] = bool(np.isfinite(adv).all())
            inside[p] = bool(np.abs(adv - x).max() <= eps + 1e-6)
            pred = np.argmax(nets[p].predict(adv, verbose=0), 1)
            rate[p] = float(np.mean(pred != y))
        diff = 100 * (rate["mixed_bfloat16"] - rate["float32"])
        good = all(finite.values()) and all(inside.values()) and abs(diff) <= 5
        ok &= good
        print(f"   eps={eps:<4g} success  fp32 {rate['float32']:.3f}   "
              f"bf16 {rate['mixed_bfloat16']:.3f}   ({diff:+.1f} points; "
              f"finite {finite['mixed_bfloat16']}, in eps-ball "
              f"{inside['mixed_bfloat16']}) -> {'ok' if good else 'CHECK'}")
    return ratio, ok


def part_training(x_train, y_train, x_test, y_test):
    """(b) AdversarialModel + PGDTraining train_step throughput."""
    import numpy as np
    import tensorflow as tf


    n, b = FLAGS.train_batches, FLAGS.train_batch
    batches = [(tf.constant(x_train[i * b:(i + 1) * b]),
                tf.constant(y_train[i * b:(i + 1) * b])) for i in range(n)]
    models_ = {p: adversarial_model(p) for p in POLICIES}
    losses = {p: [] for p in POLICIES}

    def epoch(p):
        model = models_[p]
        for xb, yb in batches:
            logs = model.train_on_batch(xb, yb, return_dict=True)
            losses[p].append(float(logs["loss"]))

    for p in POLICIES:  # the warm-up batch: tracing is not timed
        models_[p].train_on_batch(*batches[0])
    rec = Recorder()
    fns = {p: rec.wrap(p, (lambda q: lambda: epoch(q))(p)) for p in POLICIES}
    print(f"\n(b) AdversarialModel + PGDTraining(eps={FLAGS.train_eps}, "
          f"steps={FLAGS.train_steps}), train_on_batch over {n} batches of "
          f"{b} mnist5k training images, Adam 1e-3, same initial weights; "
          f"after one warm-up batch, median of {FLAGS.repeats} interleaved "
          "runs")
    ratio = timed_speeds(fns, n * b, rec)
    ok = all(np.isfinite(v).all() for v in losses.values())
    acc = {p: float(np.mean(np.argmax(models_[p].predict(x_test, verbose=0), 1)
                            == y_test)) for p in POLICIES}
    print(f"   correctness: {len(losses['float32']) + 1} train steps per "
          f"policy, all losses finite: {ok}")
    print(f"   mean loss, first {n} steps: fp32 {np.mean(losses['float32'][:n]):.3f}"
          f", bf16 {np.mean(losses['mixed_bfloat16'][:n]):.3f}; last {n} steps: "
          f"fp32 {np.mean(losses['float32'][-n:]):.3f}, bf16 "
          f"{np.mean(losses['mixed_bfloat16'][-n:]):.3f}")
    print(f"   clean test accuracy after training ({len(x_test)} images): "
          f"fp32 {acc['float32']:.3f}, bf16 {acc['mixed_bfloat16']:.3f}")
    return ratio, ok


# ----------------------------------------------------------------------
# oneDNN evidence
# ----------------------------------------------------------------------

def probe_workload(policy):
    """A small attack and one adversarial-training step under `policy`
    (run in a subprocess with ONEDNN_VERBOSE=1)."""
    import numpy as np

    from keras_adv import attacks, models

    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    net = build(policy, lambda: models.small_cnn(seed=0))
    attacks.pgd(net, x, y, eps=0.3, steps=2, seed=0).numpy()
    model = adversarial_model(policy)
    model.train_on_batch(x, y)


def onednn_probe(policy):
    """Runs probe_workload in a subprocess with ONEDNN_VERBOSE=1; returns
    (counter of (kind, implementation, src dtype) -> executions, info lines,
    return code)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(
                   [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")]
                                  if p]))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bfloat16", "--probe", policy,
         f"--train_steps={min(FLAGS.train_steps, 2)}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    counts = collections.Counter()
    info = []
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if not line.startswith(("onednn_verbose", "dnnl_verbose")):
            continue
        fields = line.split(",")
        if "exec" in fields:
            i = fields.index("exec")
            # exec,cpu,<kind>,<implementation>,<prop_kind>,<memory descs>,...
            kind, impl = fields[i + 2], fields[i + 3] or "-"
            src = re.search(r"src(?::|_)([a-z0-9]+)", fields[i + 5]
                            if len(fields) > i + 5 else "")
            counts[(kind, impl, src.group(1) if src else "?")] += 1
        elif "info" in fields and ("isa:" in line or "oneDNN v" in line):
            info.append(",".join(fields[fields.index("info") + 1:]))
    return counts, info, done.returncode


def part_onednn():
    """Prints the oneDNN setting and what oneDNN executed under each policy;
    returns {policy: amx executions} (None where the probe was skipped)."""
    import tensorflow as tf

    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    try:
        from tensorflow.python.util import _pywrap_util_port

        enabled = _pywrap_util_port.IsMklEnabled()
    except Exception as e:  # private API; may move
        enabled = f"unknown ({type(e).__name__})"
    print(f"\n(c) oneDNN: TF_ENABLE_ONEDNN_OPTS="
          f"{setting if setting is not None else 'unset (default: on for x86 Linux)'}"
          f"; TensorFlow {tf.__version__} reports oneDNN enabled: {enabled}")
    if FLAGS.skip_probe:
        print("   (ONEDNN_VERBOSE probe skipped)")
        return {}
    amx = {}
    for policy in FLAGS.probe_policies:
        counts, info, rc = onednn_probe(policy)
        total = sum(counts.values())
        amx[policy] = sum(c for (_, impl, _), c in counts.items()
                          if "amx" in impl.lower())
        print(f"   ONEDNN_VERBOSE=1, {policy} (PGD-2 on 64 random images, then "
              f"one PGD-AT train step): {total} oneDNN primitive executions, "
              f"{amx[policy]} with an AMX kernel"
              + (f" [probe exit code {rc}]" if rc else ""))
        for line in info:
            print(f"      {line}")
        for (kind, impl, src), c in sorted(counts.items(),
                                           key=lambda kv: (-kv[1], kv[0])):
            print(f"      {c:4d}  {kind:14s} {impl:34s} src {src}")
    return amx


def part_ablation():
    """Reruns (a) and (b) in a subprocess whose oneDNN may not use AMX
    (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16: AVX512-BF16 dot products only), to
    separate AMX's share of the bf16 speed-up from the rest (half the bytes
    moved, AVX512-BF16). The ratio there is again measured side by side."""
    isa = "AVX512_CORE_BF16"
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(
                   [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")]
                                  if p]))
    args = [a for a in sys.argv[1:]
            if not a.startswith(("--skip_ablation", "--probe_policies"))]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bfloat16", *args, "--skip_ablation",
         "--probe_policies=mixed_bfloat16"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    print(f"\n(d) The same (a) and (b) in a subprocess with "
          f"ONEDNN_MAX_CPU_ISA={isa} (oneDNN may not use AMX there):")
    if done.returncode:
        print(f"   failed (exit code {done.returncode}): {done.stderr[-2000:]}")
        return
    keep = ("(a)", "(b)", "ex/s", "bf16 / fp32", "AMX kernel", "isa:",
            "success", "finite", "accuracy")
    for line in done.stdout.splitlines():
        if line.startswith(("(a)", "(b)")):
            print(f"   {line[:60]} ...")
        elif any(k in line for k in keep):
            print(f"   {line.strip()}")


# ----------------------------------------------------------------------

def cpu_facts():
    """CPU model name and the bf16/AMX flags from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags_ = set(info.get("flags", "").split())
    wanted = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
              if f in flags_]
    return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}"
            f" model {info.get('model', '?')}), flags: {' '.join(wanted) or 'none'}")


def main(argv):
    del argv
    if FLAGS.probe:
        probe_workload(FLAGS.probe)
        return
    apply_quick()
    from benchmarks.common import machine, trained_cnn

    print(f"Machine: {machine()}")
    print(f"CPU: {cpu_facts()}\n")
    model, (x_train, y_train), (x_test, y_test) = trained_cnn(
        epochs=FLAGS.epochs, seed=FLAGS.seed)
    attack_ratio, attack_ok = part_attack(
        x_test[:FLAGS.batch], y_test[:FLAGS.batch], model.get_weights())
    train_ratio, train_ok = part_training(x_train, y_train, x_test, y_test)
    amx = part_onednn()
    if not FLAGS.skip_ablation:
        part_ablation()
    print(f"\nSummary: bf16/fp32 speed, attack {attack_ratio:.2f}x, "
          f"adversarial training {train_ratio:.2f}x; bf16 correctness: attack "
          f"{'ok' if attack_ok else 'CHECK'}, training "
          f"{'ok' if train_ok else 'CHECK'}; AMX kernels executed under bf16: "
          + ("not probed" if "mixed_bfloat16" not in amx else
             f"{'yes' if amx['mixed_bfloat16'] else 'no'} "
             f"({amx['mixed_bfloat16']} executions"
             + (f"; under float32: {amx['float32']}" if "float32" in amx
                else "") + ")"))


if __name__ == "__main__":
    app.run(main)
