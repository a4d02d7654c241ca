"""Generated data for adversarial training on mnist5k (issue 12).

Part "gan": DCGAN training time (generator steps per second, and the time
of one DCGAN step relative to one clean classifier step at the same batch,
measured side by side), Frechet distance to the 1000 test images in the
penultimate features of a small_cnn trained on mnist5k (with the distance
of uniform noise and of the training images for scale) and class coverage
(share per predicted class, mean max-probability) of 2000 samples, for the
unconditional and the class-conditional forms.

Part "robust": PGD-AT and TRADES (L-inf eps 0.3, K-step PGD of 2.5 eps/K,
eps warm-up) on small_cnn, with and without `--samples` generated images
pseudo-labelled by a clean small_cnn teacher (`keras_adv.datasets.
pseudo_label`, optional confidence `--threshold`) and mixed with the real
images at `--real_fraction` real rows per batch (`keras_adv.datasets.mix`),
for the same number of optimizer steps, evaluated with
`keras_adv.evaluate_robustness` (`--attacks`, default the standard suite)
on `--test_n` test images.

Part "sparsity": DataSparsity with its noise-generated points vs with GAN
samples as the unlabeled out-of-support points (label -1 in the batch,
`unlabeled_per_example=0`), same steps, same evaluation at `--ds_eval_eps`.

    python3 dev.py bench generated_data --parts gan,robust,sparsity
    python3 dev.py bench generated_data --parts robust --load_gan gan.keras
"""

import time

from absl import app, flags

from examples.common import compile_classifier, define_flags

flags.DEFINE_list("parts", ["gan", "robust", "sparsity"], "Parts to run.")
flags.DEFINE_list("forms", ["unconditional", "conditional"],
                  "DCGAN forms of part gan.")
flags.DEFINE_integer("gan_steps", 2000, "Generator steps (batch 64).")
flags.DEFINE_integer("gan_width", 32, "DCGAN width.")
flags.DEFINE_string("load_gan", "",
                    "A saved DCGAN (.keras, either form) for parts robust "
                    "and sparsity (else one of --gan_form is trained, or "
                    "taken from part gan).")
flags.DEFINE_string("save_gan", "", "Where to save the DCGAN of parts robust "
                    "and sparsity.")
flags.DEFINE_enum("gan_form", "unconditional", ["unconditional", "conditional"],
                  "DCGAN form of parts robust and sparsity (when not loaded).")
flags.DEFINE_boolean("agree", False,
                     "Conditional DCGAN: keep only samples whose teacher "
                     "label is the label they were drawn for.")
flags.DEFINE_integer("samples", 20000, "Generated images (part robust).")
flags.DEFINE_float("threshold", 0.0,
                   "Pseudo-label confidence threshold (0: keep all).")
flags.DEFINE_float("real_fraction", 0.3, "Real rows per mixed batch.")
flags.DEFINE_list("methods", ["pgd", "trades"], "Defenses of part robust.")
flags.DEFINE_list("variants", ["real", "real+gen"],
                  "Training data of part robust (a subset of real, real+gen).")
flags.DEFINE_float("eps", 0.3, "Training and evaluation L-inf eps.")
flags.DEFINE_integer("pgd_steps", 10, "PGD steps K of the training attack.")
flags.DEFINE_float("warmup", 4.0, "eps warm-up (epochs).")
flags.DEFINE_integer("epochs", 8, "Epochs of 62 steps (batch 64).")
flags.DEFINE_integer("teacher_epochs", 5, "Epochs of the clean teacher.")
flags.DEFINE_integer("batch", 64, "Batch size of adversarial training.")
flags.DEFINE_integer("width", 32, "small_cnn width of the trained models.")
flags.DEFINE_list("attacks", ["standard"],
                  "evaluate_robustness attacks ('standard' or names).")
flags.DEFINE_integer("test_n", 1000, "Test images of the evaluation.")
flags.DEFINE_integer("eval_every", 0,
                     "Every this many epochs, print clean and PGD-20 accuracy "
                     "on 500 test and 500 training images (0: never).")
flags.DEFINE_list("ds_eval_eps", ["0.1"], "Part sparsity evaluation eps.")
define_flags(quick=None)
FLAGS = flags.FLAGS
STEPS_PER_EPOCH = 62  # 4000 / 64, rounded down


def teacher_cnn(x, y, epochs=5):
    """A clean small_cnn (the classifier of the measures and the teacher)."""
    import keras

    from keras_adv import models

    keras.utils.set_random_seed(FLAGS.seed)
    model = compile_classifier(models.small_cnn(seed=FLAGS.seed))
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def step_ratio(gan, clf, x, y):
    """Seconds of one DCGAN step / one clean classifier step at batch 64,
    interleaved medians, on fresh copies of both models."""
    import keras

    from benchmarks.common import interleaved_timing

    xb, yb = x[:640], y[:640]
    fresh = type(gan).from_config(gan.get_config())
    fresh.compile()
    labels = yb if fresh.num_classes is not None else None
    clean = compile_classifier(keras.models.clone_model(clf), metrics=())
    times = interleaved_timing({
        "dcgan": lambda: fresh.fit(xb, labels, batch_size=64, epochs=1,
                                   verbose=0),
        "clean": lambda: clean.fit(xb, yb, batch_size=64, epochs=1,
                                   verbose=0),
    }, repeats=3)
    return times["dcgan"] / times["clean"]


def train_gan(form, x, y):
    import tensorflow as tf

    from keras_adv import generative

    conditional = form == "conditional"
    gan = generative.DCGAN((28, 28, 1), num_classes=10 if conditional else None,
                           width=FLAGS.gan_width, seed=FLAGS.seed)
    gan.compile()
    source = (x, y) if conditional else x
    data = (tf.data.Dataset.from_tensor_slices(source)
            .shuffle(len(x), seed=FLAGS.seed).repeat()
            .batch(64, drop_remainder=True))
    start = time.perf_counter()
    gan.fit(data, epochs=1, steps_per_epoch=FLAGS.gan_steps, verbose=0)
    return gan, time.perf_counter() - start


def part_gan(train, test, clf):
    import numpy as np

    from keras_adv import generative, models

    (x, y), (x_test, _) = train, test
    feats = models.feature_model(clf)
    noise = np.random.default_rng(FLAGS.seed).random(
        (2000, 28, 28, 1), dtype=np.float32)
    print(f"\nPart gan: DCGAN width {FLAGS.gan_width}, {FLAGS.gan_steps} "
          "generator steps at batch 64 on the 4000 training images; FID to "
          "the 1000 test images in small_cnn penultimate features; 2000 "
          "samples")
    print(f"reference FID: uniform noise "
          f"{generative.frechet_distance(feats, x_test, noise):.2f}, "
          f"training images "
          f"{generative.frechet_distance(feats, x_test, x):.2f}")
    gans = {}
    print(f"{'form':14s} {'train s':>8s} {'steps/s':>8s} {'step/clf':>9s} "
          f"{'FID':>7s} {'conf':>6s} {'min share':>9s}  shares")
    for form in FLAGS.forms:
        gan, seconds = train_gan(form, x, y)
        fake = gan.generate(2000, seed=FLAGS.seed + 1)
        cov = generative.class_coverage(clf, fake)
        fid = generative.frechet_distance(feats, x_test, fake)
        generative.save_image_grid(f"generated_{form}.png",
                                   gan.generate(100, seed=0),
                                   cols=10)
        ratio = step_ratio(gan, clf, x, y)
        print(f"{form:14s} {seconds:8.0f} {FLAGS.gan_steps / seconds:8.2f} "
              f"{ratio:8.2f}x {fid:7.2f} {cov.confidence:6.3f} "
              f"{cov.min_share:9.3f}  "
              + " ".join(f"{s:.3f}" for s in cov.shares), flush=True)
        gans[form] = gan
    return gans


def defense(method, **kw):
    from keras_adv import defenses

    cls = {"pgd": defenses.PGDTraining, "trades": defenses.TRADES}[method]
    return cls(eps=FLAGS.eps, steps=FLAGS.pgd_steps,
               step_size=2.5 * FLAGS.eps / FLAGS.pgd_steps,
               warmup_epochs=FLAGS.warmup, **kw)


def curve_callback(base, test, train):
    """A callback printing the learning curve every `--eval_every` epochs:
    clean and PGD-20 accuracy on 500 test images, PGD-20 accuracy on 500
    training images (the robust generalisation gap), with
    `keras_adv.callbacks.robust_accuracy` (one PGD call of 500 images)."""
    import keras
    import numpy as np

    from keras_adv.callbacks import robust_accuracy

    def pgd20(x, y):
        return robust_accuracy(base, (x[:500], y[:500]), eps=FLAGS.eps,
                               steps=20, step_size=FLAGS.eps / 10,
                               batch_size=500, seed=FLAGS.seed + 1)

    class _Curve(keras.callbacks.Callback):
        seconds = 0.0  # spent here, left out of the training time

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % FLAGS.eval_every:
                return
            start = time.perf_counter()
            clean = float(np.mean(np.argmax(
                base.predict(test[0][:500], verbose=0), 1) == test[1][:500]))
            robust, train_robust = pgd20(*test), pgd20(*train)
            print(f"  epoch {epoch + 1:3d}: test clean {clean:.3f} PGD-20 "
                  f"{robust:.3f}, train PGD-20 {train_robust:.3f}", flush=True)
            self.seconds += time.perf_counter() - start

    return _Curve()


def train_and_evaluate(defense_obj, data, test, eval_eps, train=None):
    """AdversarialModel(small_cnn) trained on `data` (a repeated dataset)
    for epochs x 62 steps; returns the evaluation report and seconds."""
    import keras

    from keras_adv import evaluate_robustness, models

    keras.utils.set_random_seed(FLAGS.seed)
    base = models.small_cnn(width=FLAGS.width, seed=FLAGS.seed)
    model = compile_classifier(
        models.AdversarialModel(base, defense=defense_obj), metrics=())
    start = time.perf_counter()
    callbacks = ([curve_callback(base, test, train)]
                 if FLAGS.eval_every and train is not None else [])
    model.fit(data, epochs=FLAGS.epochs, steps_per_epoch=STEPS_PER_EPOCH,
              shuffle=False, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start - sum(c.seconds for c in callbacks)
    x_test, y_test = test
    attacks = FLAGS.attacks[0] if FLAGS.attacks == ["standard"] else \
        FLAGS.attacks
    report = evaluate_robustness(
        base, x_test[:FLAGS.test_n], y_test[:FLAGS.test_n], eps=eval_eps,
        attacks=attacks, seed=FLAGS.seed, progress=False, metrics=False)
    return report, seconds


def real_batches(x, y):
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=FLAGS.seed).repeat()
            .batch(FLAGS.batch, drop_remainder=True))


def part_robust(train, test, teacher, gan):
    import numpy as np

    from keras_adv import datasets

    x, y = train
    fake = gan.generate(FLAGS.samples, seed=FLAGS.seed + 2)
    form = "unconditional" if gan.num_classes is None else "conditional"
    if form == "conditional" and FLAGS.agree:
        drawn_for = np.arange(FLAGS.samples) % gan.num_classes
        _, teacher_says = datasets.pseudo_label(teacher, fake)
        fake = fake[teacher_says == drawn_for]
    x_gen, y_gen = datasets.pseudo_label(
        teacher, fake, threshold=FLAGS.threshold or None)
    mixed = datasets.mix((x, y), (x_gen, y_gen),
                         real_fraction=FLAGS.real_fraction,
                         batch_size=FLAGS.batch, seed=FLAGS.seed).repeat()
    print(f"\nPart robust: {FLAGS.samples} images from the {form} DCGAN, "
          f"{len(y_gen)} kept (threshold {FLAGS.threshold}, agreement with "
          f"the drawn label {FLAGS.agree and form == 'conditional'}), "
          f"pseudo-labelled by the teacher; real fraction "
          f"{FLAGS.real_fraction}; {FLAGS.epochs} x {STEPS_PER_EPOCH} steps "
          f"at batch {FLAGS.batch}, small_cnn width {FLAGS.width}, eps "
          f"{FLAGS.eps}, PGD-{FLAGS.pgd_steps}, "
          f"warm-up {FLAGS.warmup} epochs, Adam 1e-3; evaluate_robustness "
          f"{FLAGS.attacks} on {FLAGS.test_n} test images")
    print(f"{'method':8s} {'data':10s} {'clean':>6s} {'robust':>7s} "
          f"{'train s':>8s}  per attack")
    for method in FLAGS.methods:
        rows = {}
        for name, data in (("real", real_batches(x, y)),
                           ("real+gen", mixed)):
            if name not in FLAGS.variants:
                continue
            print(f"{method} on {name}:", flush=True)
            report, seconds = train_and_evaluate(defense(method), data, test,
                                                 FLAGS.eps, train=(x, y))
            rows[name] = report.robust_accuracy
            per = " ".join(f"{k} {v:.3f}"
                           for k, v in report.attack_accuracy.items())
            print(f"{method:8s} {name:10s} {report.clean_accuracy:6.3f} "
                  f"{report.robust_accuracy:7.3f} {seconds:8.0f}  {per}",
                  flush=True)
        if len(rows) < 2:
            continue
        gain = 100 * (rows["real+gen"] - rows["real"])
        print(f"{method}: generated data {gain:+.1f} points robust accuracy "
              f"(target >= +3: {'met' if gain >= 3 else 'not met'})")


def part_sparsity(train, test, gan):
    import numpy as np

    from keras_adv import datasets, defenses

    x, y = train
    eval_eps = [float(e) for e in FLAGS.ds_eval_eps]
    fake = gan.generate(len(x), seed=FLAGS.seed + 3)
    unlabeled = datasets.mix((x, y), (fake, -np.ones(len(fake), np.int64)),
                             real_fraction=0.5, batch_size=FLAGS.batch,
                             seed=FLAGS.seed).repeat()
    print(f"\nPart sparsity: DataSparsity (noise_std 0.004, weight 1e3), "
          f"{FLAGS.epochs} x {STEPS_PER_EPOCH} steps; noise points "
          "(1 per example) vs GAN samples (half of each batch, label -1); "
          f"evaluate_robustness {FLAGS.attacks} at eps {eval_eps}")
    for name, d, data in (
            ("noise points", defenses.DataSparsity(), real_batches(x, y)),
            ("GAN samples", defenses.DataSparsity(unlabeled_per_example=0),
             unlabeled)):
        report, seconds = train_and_evaluate(d, data, test, eval_eps)
        robust = report.robust_accuracy
        robust = robust if isinstance(robust, list) else [robust]
        print(f"{name:14s} clean {report.clean_accuracy:.3f} robust "
              + " ".join(f"{r:.3f}" for r in robust)
              + f" train {seconds:.0f}s", flush=True)


def main(argv):
    del argv
    import keras

    from benchmarks.common import machine
    from keras_adv import datasets

    print(machine())
    train, test = datasets.load("mnist5k")
    clf = teacher_cnn(*train, epochs=FLAGS.teacher_epochs)
    print(f"small_cnn teacher: test accuracy "
          f"{clf.evaluate(*test, verbose=0)[1]:.3f}")
    gan = None
    if "gan" in FLAGS.parts:
        gan = part_gan(train, test, clf).get(FLAGS.gan_form)
    if FLAGS.load_gan:
        gan = keras.models.load_model(FLAGS.load_gan)
    if gan is None and {"robust", "sparsity"} & set(FLAGS.parts):
        gan, _ = train_gan(FLAGS.gan_form, *train)
    if FLAGS.save_gan and gan is not None:
        gan.save(FLAGS.save_gan)
    if "robust" in FLAGS.parts:
        part_robust(train, test, clf, gan)
    if "sparsity" in FLAGS.parts:
        part_sparsity(train, test, gan)


if __name__ == "__main__":
    app.run(main)
