"""Poisoning and backdoors on mnist5k with small_cnn.

Every model is `small_cnn` trained 8 epochs (Adam 1e-3, batch 64) on the
4000 mnist5k training images (or what is left of them), tested on the 1000
test images. Parts (`--parts`):

- `verdict`: `scan_training_set`'s verdict (alpha 0.05, no expected
  fraction) on a clean model and on models trained on BadNets patch and
  blend poison at each rate of `--rates` (target 0; at 10% the poison is
  half of class 0), Turner et al.'s clean-label backdoor on half of class
  0, and label flips at 5% and 10%: the verdict, the suspect classes, the
  estimated poison share, recall and precision of `flagged()`; ART's
  ActivationDefence at its defaults on the same model (rows flagged,
  recall, precision, classes it calls suspicious); and, for the
  backdoors, clean accuracy and attack success rate after retraining
  without `flagged()`, beside the clean model's accuracy.
- `badnets`: BadNets patch and blend triggers (target 0) at each rate of
  `--rates`: clean accuracy and attack success rate (ASR); recall, precision
  and time of spectral signatures (`expected_fraction=0.35`,
  `remove_factor=1.5`) and activation clustering (ICA to 10 dimensions,
  2-means, size threshold 0.35); ASR and clean accuracy after removing the
  rows flagged by activation clustering and retraining; STRIP rejection of
  triggered test inputs at 5% FRR.
- `clean_label`: Turner et al.'s clean-label backdoor (PGD eps 0.3 on a
  clean surrogate, 20 steps, then the patch) on `--cl_rate` of class 0.
- `gradient_matching`: Witches' Brew against `--gm_targets` test images
  (the first test images, each sent to class (label + 1) mod 10), budget
  `--gm_budget` of the training set, eps `--gm_eps`; success counted for a
  victim trained from scratch with another seed, and for the surrogate
  fine-tuned 2 epochs on the poisoned set.
- `adversarial_training`: BadNets patch 5% against a model trained with PGD
  adversarial training (`AdversarialModel` + `PGDTraining`, L-inf eps 0.3,
  `--at_steps` steps, 3 warm-up epochs).
- `art`: the same poisoned set, trained model and settings through ART
  (`PoisoningAttackBackdoor` with this patch, `SpectralSignatureDefense`,
  `ActivationDefence` on a `TensorFlowV2Classifier`), side by side with
  keras_adv in one process: recall, precision, seconds and the time ratio.

    python -m benchmarks.poisoning [--parts verdict,art] [--rates 0.05]
"""

import time

from absl import app, flags

flags.DEFINE_list("parts", ["verdict", "badnets", "clean_label", "gradient_matching",
                            "adversarial_training", "art"], "Parts to run.")
flags.DEFINE_list("rates", ["0.01", "0.02", "0.05", "0.1"], "BadNets rates.")
flags.DEFINE_list("triggers", ["patch", "blend"], "BadNets triggers.")
flags.DEFINE_integer("epochs", 8, "Training epochs.")
flags.DEFINE_float("cl_rate", 0.5, "Clean-label: share of class 0 poisoned.")
flags.DEFINE_integer("gm_targets", 10, "Gradient matching: target images.")
flags.DEFINE_float("gm_budget", 0.01, "Gradient matching: training share.")
flags.DEFINE_float("gm_eps", 0.3, "Gradient matching: L-inf eps.")
flags.DEFINE_integer("gm_steps", 200, "Gradient matching: steps.")
flags.DEFINE_integer("at_steps", 10, "PGD adversarial training steps.")
FLAGS = flags.FLAGS


def train(x, y, epochs=None, seed=0, model=None):
    import keras

    from benchmarks.common import train_small_cnn

    if model is None:
        return train_small_cnn(x, y, epochs=epochs or FLAGS.epochs, seed=seed)
    keras.utils.set_random_seed(seed)
    model.fit(x, y, epochs=epochs or FLAGS.epochs, batch_size=64, verbose=0)
    return model


def scores(index, flagged):
    import numpy as np

    hits = int(np.isin(index, flagged).sum())
    return hits / max(1, len(index)), hits / max(1, len(flagged))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def strip_rejection(model, x_test, y_test, trigger):
    import numpy as np

    from keras_adv import poisoning

    held, xe, ye = x_test[:200], x_test[200:500], y_test[200:500]
    h_clean = poisoning.strip_entropy(model, xe, held, overlays=32, seed=0)
    thr = poisoning.strip_threshold(h_clean, frr=0.05)
    h_trig = poisoning.strip_entropy(
        model, poisoning.apply_trigger(xe[ye != 0], trigger=trigger), held,
        overlays=32, seed=0)
    return float(np.mean(h_trig < thr)), float(np.mean(h_clean < thr))


def badnets(data):
    from keras_adv import poisoning

    (x, y), (xt, yt) = data
    clean = train(x, y)
    acc = poisoning.clean_accuracy(clean, xt, yt)
    print(f"clean training: accuracy {acc:.3f}")
    print("trigger rate  poisoned  clean  ASR    | SS rec  prec  s    | AC rec  "
          "prec  s    | retrained clean ASR | STRIP rej (clean)")
    for trig in FLAGS.triggers:
        for rate in [float(r) for r in FLAGS.rates]:
            _badnets_one(data, trig, rate)


def _badnets_one(data, trig, rate):
    import numpy as np

    from keras_adv import poisoning

    (x, y), (xt, yt) = data
    p = poisoning.backdoor(x, y, target=0, rate=rate, trigger=trig, seed=0)
    model = train(p.x, p.y)
    r = poisoning.evaluate_poisoning(model, xt, yt, target=0, trigger=trig)
    ss, t_ss = timed(poisoning.spectral_signature, model, p.x, p.y,
                     expected_fraction=0.35, remove_factor=1.5)
    ac, t_ac = timed(poisoning.activation_clustering, model, p.x, p.y)
    keep = np.setdiff1d(np.arange(len(p.x)), ac)
    r2 = poisoning.evaluate_poisoning(train(p.x[keep], p.y[keep]), xt, yt,
                                      target=0, trigger=trig)
    rej, frr = strip_rejection(model, xt, yt, trig)
    print(f"{trig:6s} {rate:5.2f} {len(p.index):8d}  "
          f"{r.clean_accuracy:.3f}  {r.attack_success_rate:.3f}  | "
          "{:.3f}  {:.3f} {:4.1f} | ".format(*scores(p.index, ss), t_ss)
          + "{:.3f}  {:.3f} {:4.1f} | ".format(*scores(p.index, ac), t_ac)
          + f"{r2.clean_accuracy:.3f}     {r2.attack_success_rate:.3f}  "
          f"| {rej:.3f} ({frr:.3f})", flush=True)


def verdict(data):
    from keras_adv import poisoning

    (x, y), (xt, yt) = data
    clean = train(x, y)
    base = poisoning.clean_accuracy(clean, xt, yt)
    print(f"clean model: accuracy {base:.3f}")
    print("poison          rate rows | verdict classes share recall prec | "
          "ART rows recall prec classes | retrained clean  ASR (before)")
    _verdict_row("none", 0.0, clean, x, y, [], None, data, base)
    cases = [(f"{t} (BadNets)", r, t) for t in FLAGS.triggers
             for r in [float(r) for r in FLAGS.rates]]
    for name, rate, trig in cases:
        p = poisoning.backdoor(x, y, target=0, rate=rate, trigger=trig,
                               seed=0)
        _verdict_row(name, rate, train(p.x, p.y), p.x, p.y, p.index, trig,
                     data, base)
    p = poisoning.clean_label_backdoor(clean, x, y, target=0, rate=0.5,
                                       eps=0.3, steps=20, seed=0)
    _verdict_row("clean-label", 0.5, train(p.x, p.y, seed=1), p.x, p.y,
                 p.index, "patch", data, base)
    for rate in (0.05, 0.1):
        p = poisoning.label_flip(y, rate=rate, num_classes=10, seed=0)
        _verdict_row("label flip", rate, train(x, p.y), x, p.y, p.index,
                     None, data, base)


def _verdict_row(name, rate, model, x, y, index, trig, data, base):
    import numpy as np

    from benchmarks.poisoning_false_alarms import art_activation_defence
    from keras_adv import poisoning

    _, (xt, yt) = data
    r = poisoning.scan_training_set(model, x, y, method="verdict")
    rec, prec = scores(index, r.flagged())
    shares = ",".join(f"{r.classes[str(c)]['estimated_fraction']:.2f}"
                      for c in r.suspect_classes) or "-"
    art = art_activation_defence(model, x, y)
    if isinstance(art, tuple):
        a_rec, a_prec = scores(index, art[0])
        art_text = f"{len(art[0]):5d} {a_rec:.2f} {a_prec:.2f} {art[1]:2d}"
    else:
        art_text = f"{art!s:>19s}"
    line = (f"{name:15s} {rate:4.2f} {len(index):4d} | "
            f"{'POISONED' if r.poisoned else 'clean':8s} "
            f"{','.join(map(str, r.suspect_classes)) or '-':7s} {shares:5s}"
            f" {rec:.2f}  {prec:.2f} | {art_text} |")
    if trig is not None and len(index):
        keep = np.setdiff1d(np.arange(len(x)), r.flagged())
        after = poisoning.evaluate_poisoning(train(x[keep], y[keep]), xt, yt,
                                             target=0, trigger=trig)
        before = poisoning.attack_success_rate(model, xt, yt, target=0,
                                               trigger=trig)
        line += (f" {after.clean_accuracy:.3f} ({after.clean_accuracy - base:+.3f})"
                 f" {after.attack_success_rate:.3f} ({before:.3f})")
    print(line, flush=True)


def clean_label(data):
    from keras_adv import poisoning

    (x, y), (xt, yt) = data
    surrogate = train(x, y)
    p, secs = timed(poisoning.clean_label_backdoor, surrogate, x, y,
                    target=0, rate=FLAGS.cl_rate, eps=0.3, steps=20, seed=0)
    r = poisoning.evaluate_poisoning(train(p.x, p.y, seed=1), xt, yt,
                                     target=0, trigger="patch")
    p0 = poisoning.backdoor(x, y, target=0, rate=0.0, seed=0)
    stamped = p0.x.copy()
    stamped[p.index] = poisoning.apply_trigger(x[p.index])
    r0 = poisoning.evaluate_poisoning(train(stamped, y, seed=1), xt, yt,
                                      target=0, trigger="patch")
    print(f"clean-label backdoor: {len(p.index)} images of class 0 (labels "
          f"unchanged), crafted in {secs:.1f} s: clean {r.clean_accuracy:.3f}"
          f", ASR {r.attack_success_rate:.3f}; the same images stamped "
          f"without PGD: ASR {r0.attack_success_rate:.3f}")


def gradient_matching(data):
    import numpy as np

    from keras_adv import poisoning

    (x, y), (xt, yt) = data
    surrogate = train(x, y)
    weights = surrogate.get_weights()
    wins = {"scratch": 0, "finetune": 0}
    for i in range(FLAGS.gm_targets):
        adv = (int(yt[i]) + 1) % 10
        p, secs = timed(poisoning.gradient_matching, surrogate, x, y,
                        x_target=xt[i], adv_class=adv, budget=FLAGS.gm_budget,
                        eps=FLAGS.gm_eps, steps=FLAGS.gm_steps, seed=i)
        scratch = train(p.x, p.y, seed=1)
        tuned = train(p.x, p.y, epochs=2, model=surrogate)
        got = {"scratch": scratch, "finetune": tuned}
        preds = {k: int(np.argmax(m.predict(xt[i:i + 1], verbose=0)))
                 for k, m in got.items()}
        for k in wins:
            wins[k] += preds[k] == adv
        surrogate.set_weights(weights)
        print(f"target {i}: label {yt[i]} -> {adv}, {len(p.index)} poisons "
              f"crafted in {secs:.1f} s; from scratch {preds['scratch']}, "
              f"fine-tuned {preds['finetune']}", flush=True)
    print(f"gradient matching success: from scratch {wins['scratch']}/"
          f"{FLAGS.gm_targets}, fine-tuned {wins['finetune']}/"
          f"{FLAGS.gm_targets}")


def adversarial_training(data):
    from benchmarks.common import train_small_cnn
    from keras_adv import defenses, poisoning

    (x, y), (xt, yt) = data
    p = poisoning.backdoor(x, y, target=0, rate=0.05, seed=0)
    defense = defenses.PGDTraining(eps=0.3, steps=FLAGS.at_steps,
                                   warmup_epochs=3)
    model, secs = timed(train_small_cnn, p.x, p.y, epochs=FLAGS.epochs,
                        seed=0, defense=defense)
    for trig in ("patch",):
        r = poisoning.evaluate_poisoning(model, xt, yt, target=0, trigger=trig)
        print(f"PGD-AT (eps 0.3, {FLAGS.at_steps} steps, {secs:.0f} s) on "
              f"BadNets patch 5%: clean {r.clean_accuracy:.3f}, ASR "
              f"{r.attack_success_rate:.3f}")


def art_side_by_side(data):
    import warnings


    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from art.attacks.poisoning import PoisoningAttackBackdoor
            from art.defences.detector.poison import (
                ActivationDefence,
                SpectralSignatureDefense,
            )
            from art.estimators.classification import TensorFlowV2Classifier
    except ImportError:
        print("ART is not installed: part 'art' skipped")
        return
    classes = dict(attack=PoisoningAttackBackdoor, ss=SpectralSignatureDefense,
                   ac=ActivationDefence, clf=TensorFlowV2Classifier)
    for rate in [float(r) for r in FLAGS.rates]:
        _art_one(data, rate, classes)


def _art_one(data, rate, art):
    import warnings

    import keras
    import numpy as np

    from keras_adv import poisoning

    (x, y), _ = data
    p, t_ours = timed(poisoning.backdoor, x, y, target=0, rate=rate, seed=0)
    art_attack = art["attack"](poisoning.apply_trigger)
    (xa, _), t_art = timed(art_attack.poison, x[p.index],
                           y=np.eye(10)[np.zeros(len(p.index), int)])
    assert np.array_equal(xa, p.x[p.index])
    model = train(p.x, p.y)
    clf = art["clf"](
        model=model, nb_classes=10, input_shape=(28, 28, 1), clip_values=(0, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
    onehot = np.eye(10)[p.y]
    last = model.layers[-1].name  # ART reads the last layer's output
    print(f"rate {rate}: poisoning {len(p.index)} rows: keras_adv "
          f"{t_ours * 1e3:.1f} ms, ART {t_art * 1e3:.1f} ms")

    def art_ss():
        d = art["ss"](clf, p.x, onehot, batch_size=256, eps_multiplier=1.5,
                      expected_pp_poison=0.35)
        return np.flatnonzero(np.asarray(d.detect_poison()[1]) == 0)

    def art_ac():
        d = art["ac"](clf, p.x, onehot)
        _, keep = d.detect_poison(nb_clusters=2, nb_dims=10, reduce="FastICA",
                                  cluster_analysis="smaller")
        return np.flatnonzero(np.asarray(keep) == 0)

    ss, ac = poisoning.spectral_signature, poisoning.activation_clustering
    runs = {
        "SS keras_adv (logits layer)": lambda: ss(
            model, p.x, p.y, expected_fraction=0.35, layer=last),
        "SS ART (logits layer)": art_ss,
        "SS keras_adv (penultimate)": lambda: ss(
            model, p.x, p.y, expected_fraction=0.35),
        "AC keras_adv (logits layer)": lambda: ac(model, p.x, p.y,
                                                  layer=last),
        "AC ART (logits layer)": art_ac,
        "AC keras_adv (penultimate)": lambda: ac(model, p.x, p.y),
    }
    from benchmarks.common import interleaved_timing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {k: fn() for k, fn in runs.items()}  # also the warm-up
        times = interleaved_timing(runs, repeats=1)
    results = {k: (found[k], times[k]) for k in runs}
    for name, (flagged, secs) in results.items():
        rec, prec = scores(p.index, flagged)
        print(f"  {name:29s} recall {rec:.3f} precision {prec:.3f} "
              f"{secs:5.2f} s", flush=True)
    for kind in ("SS", "AC"):
        ours = results[f"{kind} keras_adv (logits layer)"][1]
        theirs = results[f"{kind} ART (logits layer)"][1]
        print(f"  {kind} time ART / keras_adv at the same layer: "
              f"{theirs / ours:.2f}x")


def main(argv):
    del argv
    from benchmarks.common import machine
    from keras_adv import datasets

    print(machine())
    data = datasets.load("mnist5k")
    parts = {"verdict": verdict, "badnets": badnets, "clean_label": clean_label,
             "gradient_matching": gradient_matching,
             "adversarial_training": adversarial_training,
             "art": art_side_by_side}
    for name in FLAGS.parts:
        print(f"\n== {name} ==", flush=True)
        _, secs = timed(parts[name], data)
        print(f"({name}: {secs:.0f} s)", flush=True)


if __name__ == "__main__":
    app.run(main)
