"""The audit's wall time against the three runs it replaces, side by side.

    python3 dev.py bench audit            # a few minutes on 2 CPU cores
    python3 dev.py bench audit --quick    # a smoke run

On a PGD-trained small CNN (mnist5k), alternating in one process:

Part 1, functions: (a) `evaluate_robustness` + `evaluate_certified` +
`poisoning.scan_training_set`, and (b) `keras_adv.audit` with the same
settings plus its example grid, figures and page (`to_html`).

Part 2, commands: (a) `keras-adv evaluate` + `keras-adv certify` +
`keras-adv poison-scan` on the saved model, and (b) `keras-adv audit` with
the same flags, each a fresh process (as a user runs them).

Prints the median seconds and the ratio (b) / (a) of each part.
"""

from absl import app, flags

from examples.common import define_flags

flags.DEFINE_integer("repeats", 1, "Timed rounds (after one warm-up).")
define_flags(num_examples=300)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tempfile

    import keras_adv
    from benchmarks.common import interleaved_timing, machine, mnist5k, train_small_cnn

    quick = FLAGS.quick
    (x_train, y_train), (x_test, y_test) = mnist5k()
    model = train_small_cnn(
        x_train, y_train, epochs=1 if quick else 4, seed=FLAGS.seed,
        defense=keras_adv.defenses.PGDTraining(eps=0.3, steps=5,
                                               warmup_epochs=1))
    n = 32 if quick else FLAGS.num_examples
    x, y = x_test[:n], y_test[:n]
    xt, yt = (x_train[:500], y_train[:500]) if quick else (x_train, y_train)
    eps = [0.1, 0.2, 0.3]
    # The demo's suite (AutoAttack's, at reduced budgets).
    attacks = ([("apgd-ce", {"steps": 10})] if quick else
               [("apgd-ce", {"steps": 50}),
                ("apgd-t", {"steps": 50, "target_classes": 3}),
                ("square", {"queries": 1000})])
    noise = 200 if quick else 1000
    out = tempfile.mkdtemp()

    def separate():
        keras_adv.evaluate_robustness(model, x, y, eps=eps, attacks=attacks,
                                      seed=FLAGS.seed, progress=False)
        keras_adv.certification.evaluate_certified(
            model, x, y, sigma=0.25, n=noise, seed=FLAGS.seed)
        keras_adv.poisoning.scan_training_set(
            model.base, xt, yt, seed=FLAGS.seed)

    def audit():
        report = keras_adv.audit(model, x, y, eps=eps, attacks=attacks,
                                 sigma=0.25, n=noise, x_train=xt, y_train=yt,
                                 seed=FLAGS.seed)
        report.to_html(f"{out}/report.html")
        report.to_json(f"{out}/report.json")

    print(machine())
    print(f"{n} test images, eps {eps}, attacks "
          f"{', '.join(a for a, _ in attacks)}, "
          f"sigma 0.25 with n = {noise}, {len(xt)} training images scanned")
    times = interleaved_timing({"three separate runs": separate,
                                "audit (with page)": audit},
                               repeats=FLAGS.repeats)
    for name, seconds in times.items():
        print(f"{name:22s} {seconds:8.1f} s")
    ratio = times["audit (with page)"] / times["three separate runs"]
    print(f"audit / separate runs: {ratio:.2f}x")
    commands(model, out, quick)


def commands(model, out, quick):
    """Part 2: the three commands against `keras-adv audit`, each run in
    a fresh process."""
    import subprocess
    import sys

    from benchmarks.common import interleaved_timing

    path = f"{out}/model.keras"
    model.base.save(path)
    shared = ["--num-examples", "32" if quick else "100", "--seed",
              str(FLAGS.seed), "--no-progress"]
    eps = ["--eps", "0.1,0.2,0.3", "--attacks", "apgd-ce"]
    sigma = ["--sigma", "0.25", "--n", "200" if quick else "1000"]

    def cli(*args):
        subprocess.run([sys.executable, "-m", "keras_adv.cli", *args],
                       check=True, capture_output=True)

    def separate():
        cli("evaluate", path, *shared, *eps)
        cli("certify", path, *shared, *sigma)
        cli("poison-scan", path, "--data", "mnist5k:train", *shared[2:])

    def audit():
        cli("audit", path, *shared, *eps, *sigma, "--train-data",
            "mnist5k:train", "--out", f"{out}/cli_audit", "--overwrite")

    print("\nPart 2: the commands (fresh processes), "
          + " ".join(shared + eps + sigma))
    times = interleaved_timing({"three commands": separate,
                                "keras-adv audit": audit},
                               repeats=FLAGS.repeats)
    for name, seconds in times.items():
        print(f"{name:22s} {seconds:8.1f} s")
    ratio = times["keras-adv audit"] / times["three commands"]
    print(f"audit / three commands: {ratio:.2f}x")


if __name__ == "__main__":
    app.run(main)
