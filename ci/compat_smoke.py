"""Compatibility smoke job: the main workflows on the installed TensorFlow
and Keras (CI runs it on the oldest supported pair, `python3 dev.py compat`).

One line per check, `ok` or `FAIL` with the reason; exits 1 when any check
fails. A script, not a pytest module: it runs in an environment without the
test extras.

    PYTHONPATH=. python ci/compat_smoke.py
"""

import os
import sys
import tempfile
import traceback

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv import defenses  # noqa: E402
from keras_adv.models import AdversarialModel  # noqa: E402

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
RNG = np.random.RandomState(0)
X = RNG.rand(128, 8).astype("float32")
Y = (X[:, :4].argmax(-1)).astype("int64")


def mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)),
                             keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(4)])


def adversarial(defense, seed=0):
    model = AdversarialModel(mlp(seed), defense=defense)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=LOSS,
                  metrics=["accuracy"])
    return model


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def fit_pgd():
    model = adversarial(defenses.PGDTraining(eps=0.1, steps=3))
    logs = model.fit(X, Y, batch_size=32, epochs=3, verbose=0).history
    check(set(logs) == {"loss", "adv_loss", "accuracy", "adv_accuracy"},
          f"logs {sorted(logs)}")
    check(all(np.isfinite(v).all() for v in logs.values()), "non-finite log")
    check(logs["loss"][-1] < logs["loss"][0], f"loss {logs['loss']}")
    return model


def evaluate_adversarial(model):
    out = model.evaluate(X, Y, adversarial=True, return_dict=True, verbose=0)
    check({"accuracy", "adv_accuracy", "adv_loss"} <= set(out), f"{out}")
    check(out["adv_accuracy"] <= out["accuracy"] + 1e-6, f"{out}")
    clean = model.evaluate(X, Y, return_dict=True, verbose=0)
    check(set(clean) == {"loss", "accuracy"}, f"{clean}")
    check(clean["accuracy"] == out["accuracy"], f"{clean} {out}")


def save_load(model):
    path = os.path.join(tempfile.mkdtemp(), "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    check(isinstance(loaded, AdversarialModel), type(loaded).__name__)
    check(loaded.defense == model.defense, f"{loaded.defense}")
    np.testing.assert_allclose(loaded.predict(X, verbose=0),
                               model.predict(X, verbose=0), atol=1e-6)
    loaded.fit(X, Y, batch_size=32, epochs=1, verbose=0)


def export(model):
    path = os.path.join(tempfile.mkdtemp(), "serving")
    model.export(path)  # Keras 3.4 takes no verbose
    reloaded = tf.saved_model.load(path)  # kept: its functions need it
    served = reloaded.serve(tf.constant(X))
    np.testing.assert_allclose(served.numpy(), model.predict(X, verbose=0),
                               atol=1e-5)


def trades_vat_unlabeled():
    y = Y.copy()
    y[::2] = -1
    model = adversarial(defenses.TRADES(eps=0.1, steps=2)
                        + defenses.VAT(eps=0.5))
    logs = model.fit(X, y, batch_size=32, epochs=2, verbose=0).history
    want = {"loss", "clean_loss", "kl_loss", "vat_loss", "entropy_loss",
            "accuracy", "adv_accuracy"}
    check(set(logs) == want, f"logs {sorted(logs)}")
    check(all(np.isfinite(v).all() for v in logs.values()), "non-finite log")


def free_training():
    model = adversarial(defenses.FreeTraining(eps=0.1, replays=2))
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    check(int(model.optimizer.iterations.numpy()) == 4 * 2, "replays")


def warmup():
    model = adversarial(defenses.PGDTraining(eps=0.2, steps=2,
                                             warmup_epochs=2))
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    check(abs(model.current_eps - 0.1) < 1e-6, f"eps {model.current_eps}")


def attack(model):
    x_adv = keras_adv.attacks.pgd(model, X, Y, eps=0.1, steps=5).numpy()
    check(np.abs(x_adv - X).max() <= 0.1 + 1e-6, "outside the ball")
    check(x_adv.min() >= 0.0 and x_adv.max() <= 1.0, "outside the box")


def robustness_report(model):
    report = keras_adv.evaluate_robustness(model, X, Y, eps=[0.05], seed=0)
    check(report.to_json(), "empty report")


def streamed_report(model):
    """A tf.data stream of (x, y) batches gives the arrays' report."""
    kwargs = dict(eps=[0.05], attacks=["fgsm", ("pgd", {"steps": 3})],
                  seed=0, batch_size=32, checks=False, metrics=False)
    arrays = keras_adv.evaluate_robustness(model, X, Y, **kwargs).to_dict()
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(20)
    streamed = keras_adv.evaluate_robustness(model, ds, **kwargs).to_dict()
    for key in ("timings", "seconds", "seconds_per_example"):
        arrays.pop(key, None), streamed.pop(key, None)
    check(arrays == streamed, "stream and arrays differ")


def several_inputs():
    """pgd with perturb= on a two-input model; VAT on a token model's
    embedding output (perturb_layer=)."""
    image, meta = keras.Input((8,), name="image"), keras.Input((2,), name="meta")
    out = keras.layers.Dense(4)(keras.layers.Concatenate()([image, meta]))
    two = keras.Model([image, meta], out)
    m = RNG.rand(128, 2).astype("float32")
    x_adv, m_adv = keras_adv.attacks.pgd(two, [X, m], Y, eps=0.1, steps=3,
                                         perturb="image")
    check(np.array_equal(np.asarray(m_adv), m), "fixed input changed")
    check(np.abs(np.asarray(x_adv) - X).max() <= 0.1 + 1e-6, "outside ball")
    ids = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(20, 4, name="embedding")(ids)
    base = keras.Model(ids, keras.layers.Dense(4)(
        keras.layers.GlobalAveragePooling1D()(h)))
    model = AdversarialModel(base, defense=defenses.VAT(eps=0.5),
                             perturb_layer="embedding")
    model.compile(optimizer="adam", loss=LOSS)
    tokens = RNG.randint(0, 20, (128, 6)).astype("int32")
    history = model.fit(tokens, Y, epochs=1, batch_size=32, verbose=0)
    check(np.isfinite(history.history["loss"][-1]), "non-finite loss")


def main():
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    failures = 0
    model = None
    checks = [
        ("fit PGDTraining with adversarial metrics", lambda: fit_pgd()),
        ("evaluate(adversarial=True)", lambda: evaluate_adversarial(model)),
        (".keras save/load (safe_mode)", lambda: save_load(model)),
        ("export SavedModel", lambda: export(model)),
        ("TRADES+VAT with -1 labels", trades_vat_unlabeled),
        ("FreeTraining replays", free_training),
        ("eps warm-up", warmup),
        ("pgd attack", lambda: attack(model)),
        ("evaluate_robustness", lambda: robustness_report(model)),
        ("evaluate_robustness on a tf.data stream", lambda: streamed_report(model)),
        ("several inputs and perturb_layer", several_inputs),
    ]
    for name, fn in checks:
        try:
            out = fn()
            if model is None:
                model = out
            print(f"ok    {name}")
        except Exception as e:  # noqa: BLE001 - report every failure
            failures += 1
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            print(f"FAIL  {name}: {reason}")
            if os.environ.get("COMPAT_SMOKE_TRACEBACK"):
                traceback.print_exc()
    print(f"{len(checks) - failures}/{len(checks)} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
