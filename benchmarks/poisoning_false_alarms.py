"""How often the poisoning verdict says "poisoned" on clean training sets.

Trains `small_cnn` (Adam 1e-3, batch 64) on clean data with `--seeds`
seeds per setting and runs `scan_training_set(model, x, y, alpha=...,
method="verdict")` on the training set the model saw. Settings: mnist5k's
4000 training images (28x28) at each of `--mnist_epochs`, and
scikit-learn's 8x8 digits (the first 1437 of its 1797 images, about 144
per class; scaled to [0, 1]). Prints the share of scans that said
"poisoned" (the measured false-alarm rate, with a 95% Clopper-Pearson
upper bound), the largest statistic and the smallest p-value of any
class. ART's ActivationDefence
at its defaults (`cluster_analysis="smaller"`) runs on the first `--art`
models of each setting: the rows it flags and the classes it calls
suspicious. The seeds start at 100, away from the seeds of the clean models
the null law was fitted on (mnist5k, seeds 0-5 and 10-39, 3 to 8 epochs;
`keras_adv/poisoning/verdict.py`).

    python -m benchmarks.poisoning_false_alarms [--seeds 20] [--art 3]
"""

import time

from absl import app, flags

flags.DEFINE_integer("seeds", 20, "Clean models per setting.")
flags.DEFINE_list("mnist_epochs", ["3", "8"], "mnist5k training epochs.")
flags.DEFINE_integer("digits_epochs", 20, "Training epochs on digits.")
flags.DEFINE_float("alpha", 0.05, "False-alarm level of each scan.")
flags.DEFINE_integer("art", 3, "Models per setting also given to ART.")
FLAGS = flags.FLAGS


def train(x, y, *, epochs, seed):
    from benchmarks.common import train_small_cnn

    return train_small_cnn(x, y, epochs=epochs, seed=seed,
                           input_shape=x.shape[1:])


def digits():
    """scikit-learn's 8x8 digits, (1437, 8, 8, 1) in [0, 1], and labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return x[:1437], d.target[:1437].astype(np.int64)


def art_activation_defence(model, x, y, analysis="smaller"):
    """ART's ActivationDefence (defaults: 2 clusters, FastICA to 10
    dimensions) on a TensorFlowV2Classifier of `model`: (the rows it
    flags, the number of classes with a suspicious cluster); None when ART
    is missing, the error's type name when ART fails."""
    import warnings

    import keras
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from art.defences.detector.poison import ActivationDefence
            from art.estimators.classification import TensorFlowV2Classifier
    except ImportError:
        return None
    k = int(model.output_shape[-1])
    clf = TensorFlowV2Classifier(
        model=model, nb_classes=k, input_shape=x.shape[1:],
        clip_values=(0, 1), loss_object=keras.losses.
        SparseCategoricalCrossentropy(from_logits=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = ActivationDefence(clf, x, np.eye(k)[y])
            report, is_clean = d.detect_poison(cluster_analysis=analysis)
    except Exception as e:  # noqa: BLE001 - ART's own failure, reported
        return type(e).__name__
    suspicious = sum(
        any(isinstance(v, dict) and v.get("suspicious_cluster")
            for v in part.values())
        for name, part in report.items()
        if name.startswith("Class_") and isinstance(part, dict))
    return np.flatnonzero(np.asarray(is_clean) == 0), int(suspicious)


def clopper_pearson_upper(k, n, level=0.95):
    """One-sided upper confidence bound of a rate seen k times in n."""
    from scipy.stats import beta

    return 1.0 if k == n else float(beta.ppf(level, k + 1, n - k))


def run_setting(name, x, y, epochs):
    import numpy as np

    from keras_adv import poisoning

    alarms, stats, pmins, art = 0, [], [], []
    for i in range(FLAGS.seeds):
        model = train(x, y, epochs=epochs, seed=100 + i)
        r = poisoning.scan_training_set(model, x, y, alpha=FLAGS.alpha,
                                        method="verdict")
        alarms += r.poisoned
        tested = [e for e in r.classes.values() if e["p_value"] is not None]
        stats.append(max(e["statistic"] for e in tested))
        pmins.append(min(e["p_value"] for e in tested))
        if i < FLAGS.art:
            art.append(art_activation_defence(model, x, y))
    n = FLAGS.seeds
    print(f"{name:22s} {n:3d} models  poisoned {alarms:2d}/{n} "
          f"({alarms / n:.3f}, 95% upper {clopper_pearson_upper(alarms, n):.3f})"
          f"  max statistic {max(stats):.2f}  min p {min(pmins):.2g}"
          f" (Bonferroni level {FLAGS.alpha / 10:.3g})", flush=True)
    if art and art[0] is not None:
        shown = "; ".join(a if isinstance(a, str) else
                          f"{len(a[0])} rows, {a[1]} classes suspicious"
                          for a in art)
        print(f"{'':22s} ART ActivationDefence defaults: {shown}", flush=True)
    return alarms, n, np.array(pmins)


def main(argv):
    del argv
    from benchmarks.common import machine
    from keras_adv import datasets

    print(machine())
    start = time.perf_counter()
    (x, y), _ = datasets.load("mnist5k")
    total = [0, 0]
    for epochs in [int(e) for e in FLAGS.mnist_epochs]:
        a, n, _ = run_setting(f"mnist5k, {epochs} epochs", x, y, epochs)
        total = [total[0] + a, total[1] + n]
    xd, yd = digits()
    a, n, _ = run_setting(f"digits, {FLAGS.digits_epochs} epochs", xd, yd,
                          FLAGS.digits_epochs)
    total = [total[0] + a, total[1] + n]
    print(f"all settings: poisoned on {total[0]}/{total[1]} clean training "
          f"sets ({total[0] / total[1]:.3f}; 95% upper "
          f"{clopper_pearson_upper(*total):.3f}) at alpha={FLAGS.alpha}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    app.run(main)
