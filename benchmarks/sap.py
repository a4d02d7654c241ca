"""SAP with and without EOT, PGD-AT vs SAP + PGD-AT vs the multi-SAP mixture,
and defensive distillation under cross-entropy vs margin PGD, on mnist5k.

    python3 dev.py bench sap            # about 30 minutes on 2 CPU cores
    python3 dev.py bench sap --quick    # a smoke run in a few minutes

Part A. `insert_sap` on an undefended CNN, attacked by PGD without EOT and
with EOT (gradients averaged over `--eot` stochastic passes), and APGD-CE with
EOT. Accuracy of a randomised model is that of one stochastic forward pass
per example, as deployed.

Part B. PGD-AT (`--members` CNNs trained with PGDTraining from different
seeds, eps warm-up); SAP inserted at test time into the first of them; and
the multi-SAP mixture: SAP in each of the k PGD-AT networks, the mixed
strategy solved from the k x k payoff matrix (accuracy of member i on PGD+EOT
examples crafted on member j), every query answered by one member drawn from
it. All randomised models are attacked with EOT, the mixture as a whole.

Part C. Defensive distillation at T = 100 against PGD on cross-entropy and on
the logit margin.
"""

import functools
import time

from absl import app, flags

from examples.common import compile_classifier, define_flags

flags.DEFINE_integer("epochs", 3, "Epochs of clean training.")
flags.DEFINE_integer("at_epochs", 10, "Epochs of PGD adversarial training.")
flags.DEFINE_integer("at_steps", 10, "PGD steps inside adversarial training.")
flags.DEFINE_integer("steps", 20, "PGD / APGD steps of the evaluation attacks.")
flags.DEFINE_integer("eot", 10, "EOT samples per attack step.")
flags.DEFINE_integer("members", 3, "Networks in the multi-SAP mixture.")
flags.DEFINE_float("eps", 0.3, "L-inf budget of Part B and C.")
flags.DEFINE_float("temperature", 100.0, "Distillation temperature.")
define_flags(quick="Tiny settings for a smoke run.", num_examples=200)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.quick:
        FLAGS.num_examples, FLAGS.at_epochs, FLAGS.steps, FLAGS.eot = 64, 2, 10, 4
        FLAGS.members, FLAGS.at_steps = 2, 5
    import keras
    import numpy as np

    import keras_adv
    from benchmarks.common import machine, trained_cnn
    from keras_adv.attacks import pgd
    from keras_adv.defenses.distillation import defensive_distillation
    from keras_adv.defenses.mixture import payoff_matrix, solve_zero_sum
    from keras_adv.defenses.sap import insert_sap
    from keras_adv.models import RandomizedMixture

    apgd = getattr(keras_adv.attacks, "apgd", None)
    start = time.perf_counter()
    print(f"Machine: {machine()}")
    model, (x_train, y_train), (x_test, y_test) = trained_cnn(FLAGS.epochs)
    x, y = x_test[: FLAGS.num_examples], y_test[: FLAGS.num_examples]

    def acc(m, xs):
        pred = np.argmax(m.predict(np.asarray(xs), batch_size=500, verbose=0), 1)
        return float(np.mean(pred == y))

    def attacks(m, eps, eot):
        """name -> adversarial x; EOT only where the model is randomised."""
        out = {f"PGD-{FLAGS.steps}": pgd(m, x, y, eps=eps, steps=FLAGS.steps,
                                         seed=0)}
        if eot:
            out[f"PGD-{FLAGS.steps} EOT-{eot}"] = pgd(
                m, x, y, eps=eps, steps=FLAGS.steps, seed=0, eot_samples=eot)
            if apgd is not None:
                out[f"APGD-CE EOT-{eot}"] = apgd(
                    m, x, y, eps=eps, steps=FLAGS.steps, seed=0,
                    eot_samples=eot)
        elif apgd is not None:
            out["APGD-CE"] = apgd(m, x, y, eps=eps, steps=FLAGS.steps, seed=0)
        return out

    # ---------------------------------------------------------------- Part A
    print(f"\n## A. SAP on an undefended CNN ({FLAGS.num_examples} test images)")
    sap = insert_sap(model, seed=0)
    print(f"clean accuracy: undefended {acc(model, x):.3f}, SAP {acc(sap, x):.3f}")
    print(f"{'eps':>5s} {'undefended PGD':>15s} {'SAP, PGD no EOT':>16s} "
          f"{'SAP, PGD EOT':>13s} {'SAP, APGD EOT':>14s}")
    for eps in (0.05, 0.1, 0.2, 0.3):
        und = acc(model, pgd(model, x, y, eps=eps, steps=FLAGS.steps, seed=0))
        res = {k: acc(sap, v) for k, v in attacks(sap, eps, FLAGS.eot).items()}
        values = list(res.values()) + [float("nan")] * (3 - len(res))
        print(f"{eps:5.2f} {und:15.3f} {values[0]:16.3f} {values[1]:13.3f} "
              f"{values[2]:14.3f}")

    # ---------------------------------------------------------------- Part B
    print(f"\n## B. PGD-AT vs SAP + PGD-AT vs multi-SAP mixture, eps {FLAGS.eps}")
    members = []
    for i in range(FLAGS.members):
        keras.utils.set_random_seed(100 + i)
        at = keras_adv.models.AdversarialModel(
            keras_adv.models.small_cnn(seed=100 + i),
            defense=keras_adv.defenses.PGDTraining(
                eps=FLAGS.eps, steps=FLAGS.at_steps,
                warmup_epochs=max(1, FLAGS.at_epochs // 2)))
        compile_classifier(at)
        t0 = time.perf_counter()
        at.fit(x_train, y_train, epochs=FLAGS.at_epochs, batch_size=64,
               verbose=0)
        print(f"  PGD-AT member {i} trained in {time.perf_counter() - t0:.0f}s")
        members.append(at.base if hasattr(at, "base") else at)
    pgd_at = members[0]
    sap_members = [insert_sap(m, seed=10 * i) for i, m in enumerate(members)]
    eot_attack = functools.partial(pgd, eps=FLAGS.eps, steps=FLAGS.steps,
                                   seed=0, eot_samples=FLAGS.eot)
    pay = payoff_matrix(sap_members, x, y, attack=eot_attack)
    q, value = solve_zero_sum(pay)
    np.set_printoptions(precision=3, suppress=True)
    print("payoff A[i, j] = accuracy of SAP member i on PGD+EOT crafted on "
          f"SAP member j:\n{pay}")
    print(f"mixed strategy q = {q}, game value {value:.3f} "
          f"(best single member's worst case {pay.min(axis=1).max():.3f})")
    mixture = RandomizedMixture(sap_members, probabilities=q, seed=0)
    rows = [("PGD-AT", pgd_at, 0), ("SAP + PGD-AT", sap_members[0], FLAGS.eot),
            ("multi-SAP mixture", mixture, FLAGS.eot)]
    print(f"{'model':>20s} {'clean':>6s} " + " ".join(
        f"{k:>18s}" for k in attacks(pgd_at, 0.0, 0)) + "   (worst case)")
    for name, m, eot in rows:
        res = {k: acc(m, v) for k, v in attacks(m, FLAGS.eps, eot).items()}
        print(f"{name:>20s} {acc(m, x):6.3f} "
              + " ".join(f"{k}={v:.3f}" for k, v in res.items())
              + f"   worst {min(res.values()):.3f}")

    # ---------------------------------------------------------------- Part C
    print(f"\n## C. Defensive distillation, T = {FLAGS.temperature:g}")
    keras.utils.set_random_seed(7)
    distilled = defensive_distillation(
        keras_adv.models.small_cnn(seed=7), keras_adv.models.small_cnn(seed=8),
        x_train, y_train, temperature=FLAGS.temperature,
        epochs=max(FLAGS.epochs, 5), batch_size=64)
    print(f"clean accuracy: undefended {acc(model, x):.3f}, "
          f"distilled {acc(distilled, x):.3f}")
    print(f"{'eps':>5s} {'undef. CE':>10s} {'dist. CE':>9s} {'dist. margin':>13s}")
    for eps in (0.1, 0.2, 0.3):
        kw = dict(eps=eps, steps=FLAGS.steps, seed=0)
        und = acc(model, pgd(model, x, y, **kw))
        ce = acc(distilled, pgd(distilled, x, y, **kw))
        mg = acc(distilled, pgd(distilled, x, y, loss="margin", **kw))
        print(f"{eps:5.2f} {und:10.3f} {ce:9.3f} {mg:13.3f}")
    print(f"\ntotal time {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    app.run(main)
