"""AdversarialModel: exact updates, every defense in fit, inputs, metrics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import AdversarialModel
from tests.conftest import ce_input_gradient, linear_model, softmax
from tests.models.conftest import SPARSE_CE, linear_adv_model


def _numpy_fgsm_at_step(w, b, x, y, eps, a, lr, sw=None):
    """One SGD step of FGSM adversarial training on z = xW + b, in NumPy."""
    w, b, x = (np.asarray(v, np.float64) for v in (w, b, x))
    onehot = np.eye(w.shape[1])[y]
    sw = np.ones(len(x)) if sw is None else np.asarray(sw, np.float64)
    # Input gradient of the per-example CE: (p - y) W^T; FGSM takes its sign.
    g = ce_input_gradient(x, y, w, b)
    x_adv = np.clip(x + eps * np.sign(g), 0.0, 1.0)
    grad_w = np.zeros_like(w)
    grad_b = np.zeros_like(b)
    for xs, weight in ((x, a), (x_adv, 1.0 - a)):
        r = (softmax(xs @ w + b) - onehot) * sw[:, None] / len(x)
        grad_w += weight * xs.T @ r
        grad_b += weight * r.sum(0)
    return w - lr * grad_w, b - lr * grad_b


@pytest.mark.parametrize("a", [0.5, 0.0, 1.0])
def test_fgsm_at_step_equals_numpy(batch, a):
    x, y = batch
    model, w, b = linear_adv_model(
        defenses.FGSMTraining(eps=0.1, clean_weight=a))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    w1, b1 = _numpy_fgsm_at_step(w, b, x, y, 0.1, a, 0.5)
    got_w, got_b = model.base.layers[0].get_weights()
    np.testing.assert_allclose(got_w, w1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, b1, rtol=1e-5, atol=1e-6)
    assert np.abs(w1 - w).max() > 1e-3  # the step moved the weights


def test_fgsm_at_step_with_sample_weight_equals_numpy(batch):
    x, y = batch
    sw = np.linspace(0.0, 2.0, len(x)).astype("float32")
    model, w, b = linear_adv_model(defenses.FGSMTraining(eps=0.2))
    model.fit(x, y, sample_weight=sw, batch_size=16, epochs=1, shuffle=False,
              verbose=0)
    w1, b1 = _numpy_fgsm_at_step(w, b, x, y, 0.2, 0.5, 0.5, sw=sw)
    np.testing.assert_allclose(model.base.layers[0].get_weights()[0], w1,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.base.layers[0].get_weights()[1], b1,
                               rtol=1e-5, atol=1e-6)


def test_train_step_logs_equal_numpy_losses(batch):
    x, y = batch
    model, w, b = linear_adv_model(defenses.FGSMTraining(eps=0.1))
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    onehot = np.eye(4)[y]
    g = ce_input_gradient(x, y, w, b)
    x_adv = np.clip(x + 0.1 * np.sign(g), 0, 1)

    def ce(xs):
        return float(np.mean(-np.log((softmax(xs @ w + b) * onehot).sum(1))))

    assert float(logs["clean_loss"]) == pytest.approx(ce(x), rel=1e-5)
    assert float(logs["adv_loss"]) == pytest.approx(ce(x_adv), rel=1e-5)
    assert float(logs["loss"]) == pytest.approx(0.5 * (ce(x) + ce(x_adv)),
                                                rel=1e-5)


ALL = [
    ("fgsm", defenses.FGSMTraining(eps=0.1), ["clean_loss", "adv_loss"]),
    ("pgd", defenses.PGDTraining(eps=0.1, steps=3), ["adv_loss"]),
    ("fast", defenses.FastTraining(eps=0.1), ["adv_loss"]),
    ("free", defenses.FreeTraining(eps=0.1, replays=3), ["adv_loss"]),
    ("trades", defenses.TRADES(eps=0.1, steps=3, beta=6.0),
     ["clean_loss", "kl_loss"]),
    ("mart", defenses.MART(eps=0.1, steps=3),
     ["adv_loss", "margin_loss", "kl_loss"]),
]


def _tiny_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(3),
    ])


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, size=48)
    x = rng.uniform(0, 0.3, size=(48, 8, 8, 1)).astype("float32")
    x[np.arange(48), y * 2 + 1, :, 0] += 0.6  # class = which row is bright
    return x, y


@pytest.mark.parametrize("name,defense,terms", ALL, ids=[a[0] for a in ALL])
def test_every_defense_trains_with_expected_logs(images, name, defense, terms):
    x, y = images
    model = AdversarialModel(_tiny_cnn(), defense=defense)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SPARSE_CE,
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        validation_data=(x, y)).history
    expected = {"loss", "accuracy", "adv_accuracy", *terms}
    expected |= {"val_loss", "val_accuracy"}
    assert set(history) == expected
    for key, values in history.items():
        assert np.all(np.isfinite(values)), key
    assert history["loss"][-1] < history["loss"][0]
    for v in history["accuracy"] + history["adv_accuracy"]:
        assert 0.0 <= v <= 1.0
    robust = model.evaluate(x, y, adversarial=True, return_dict=True,
                            verbose=0)
    assert set(robust) == {"loss", "accuracy", "adv_loss", "adv_accuracy",
                           "robust_accuracy"}
    assert robust["adv_accuracy"] <= robust["accuracy"] + 0.1
    clean = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(clean) == {"loss", "accuracy"}
    assert clean["loss"] == pytest.approx(robust["loss"], rel=1e-5)


def test_total_loss_is_combination_of_terms(images):
    x, y = images
    for defense, combine in [
        (defenses.TRADES(eps=0.1, steps=2, beta=4.0),
         lambda t: t["clean_loss"] + 4.0 * t["kl_loss"]),
        (defenses.MART(eps=0.1, steps=2, beta=3.0),
         lambda t: t["adv_loss"] + t["margin_loss"] + 3.0 * t["kl_loss"]),
    ]:
        model = AdversarialModel(_tiny_cnn(), defense=defense)
        model.compile(optimizer="sgd", loss=SPARSE_CE)
        logs = model.train_step((tf.constant(x), tf.constant(y)))
        logs = {k: float(v) for k, v in logs.items()}
        assert logs["loss"] == pytest.approx(combine(logs), rel=1e-5)
        assert logs["kl_loss"] > 0


def test_attack_runs_in_inference_mode_batchnorm(images):
    """With eps=0 the adversarial batch is the clean batch; PGD-5 makes 5
    inference forward passes and training makes one: batch norm's moving
    mean must move exactly once."""
    x, y = images
    model = AdversarialModel(_tiny_cnn(), defense=defenses.PGDTraining(
        eps=0.0, steps=5, step_size=0.01))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=SPARSE_CE)
    bn = model.base.layers[1]
    conv_out = model.base.layers[0](x)
    before = bn.moving_mean.numpy().copy()
    model.train_step((tf.constant(x), tf.constant(y)))
    batch_mean = conv_out.numpy().mean(axis=(0, 1, 2))
    expected = bn.momentum * before + (1 - bn.momentum) * batch_mean
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_dropout_not_active_in_attack():
    """A model that is all dropout in training: the attack must see the
    deterministic inference model, so PGD gives the same point twice."""
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dropout(0.5),
                             keras.layers.Dense(4)])
    d = defenses.PGDTraining(eps=0.2, steps=3, random_start=False)
    model = AdversarialModel(base, defense=d)
    x = np.random.RandomState(0).rand(8, 6).astype("float32")
    y = np.arange(8) % 4
    a = d.perturb(model, x, y).numpy()
    b = d.perturb(model, x, y).numpy()
    np.testing.assert_array_equal(a, b)


def test_class_weight_equals_sample_weight(batch):
    x, y = batch
    cw = {0: 2.0, 1: 0.5, 2: 1.0, 3: 0.0}
    m1, _, _ = linear_adv_model(defenses.FGSMTraining(eps=0.1))
    m2, _, _ = linear_adv_model(defenses.FGSMTraining(eps=0.1))
    m1.fit(x, y, class_weight=cw, batch_size=8, epochs=2, shuffle=False,
           verbose=0)
    sw = np.array([cw[int(c)] for c in y], "float32")
    m2.fit(x, y, sample_weight=sw, batch_size=8, epochs=2, shuffle=False,
           verbose=0)
    np.testing.assert_allclose(m1.get_weights()[0], m2.get_weights()[0],
                               rtol=1e-6)


def test_one_hot_labels_and_tf_data_match_numpy_sparse(batch):
    x, y = batch
    m1, _, _ = linear_adv_model(defenses.FGSMTraining(eps=0.1),
                                 metrics=["accuracy"])
    h1 = m1.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    m2, _, _ = linear_adv_model(
        defenses.FGSMTraining(eps=0.1),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    ds = tf.data.Dataset.from_tensor_slices(
        (x, np.eye(4, dtype="float32")[y])).batch(8)
    h2 = m2.fit(ds, epochs=2, verbose=0)
    np.testing.assert_allclose(m1.get_weights()[0], m2.get_weights()[0],
                               rtol=1e-5, atol=1e-6)
    for key in ("loss", "accuracy", "adv_accuracy", "adv_loss"):
        np.testing.assert_allclose(h1.history[key], h2.history[key],
                                   rtol=1e-5)


def test_pgd_training_uses_the_pgd_point(batch):
    """PGD-AT's adv_loss is the loss at the attacked batch: above the clean
    loss, and equal to the loss the model gives defense.perturb's output
    (deterministic without random start)."""
    x, y = batch
    d = defenses.PGDTraining(eps=0.2, steps=5, random_start=False)
    model, _, _ = linear_adv_model(d)
    x_adv = d.perturb(model, x, y)
    want = float(SPARSE_CE(y, model(x_adv)))
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    assert float(logs["adv_loss"]) == pytest.approx(want, rel=1e-5)
    assert want > float(SPARSE_CE(y, model(x))) + 0.1


def test_eps_warmup_ramps_per_batch(batch):
    x, y = batch
    d = defenses.PGDTraining(eps=0.3, steps=2, warmup_epochs=2)
    model, _, _ = linear_adv_model(d)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, b, logs=None):
            seen.append(model.current_eps)

    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[Record()])
    np.testing.assert_allclose(seen, [0.075, 0.15, 0.225, 0.3, 0.3, 0.3],
                               rtol=1e-6)


def test_eps_scale_reaches_the_attack(batch):
    x, y = batch
    d = defenses.PGDTraining(eps=0.4, steps=3)
    model, _, _ = linear_adv_model(d)
    model.set_eps_scale(0.25)
    x_adv = model.defense.perturb(model, x, y, eps=model.current_eps)
    assert np.abs(x_adv.numpy() - x).max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match=r"Received: scale=1\.5"):
        model.set_eps_scale(1.5)


def test_free_training_replays_and_carries_delta(batch, monkeypatch):
    x, y = batch
    made = []
    create = defenses.FreeTraining.create_state
    monkeypatch.setattr(defenses.FreeTraining, "create_state",
                        lambda self: made.append(create(self)) or made[-1])
    d = defenses.FreeTraining(eps=0.1, replays=3)
    model, _, _ = linear_adv_model(d)
    logs = model.fit(x, y, batch_size=8, epochs=1, shuffle=False,
                     verbose=0).history
    assert int(model.optimizer.iterations.numpy()) == 2 * 3
    assert np.isfinite(logs["adv_loss"][0])
    delta = made[-1].delta.numpy()
    assert delta.shape == (8 * 6,)
    assert 0.0 < np.abs(delta).max() <= 0.1 + 1e-6


def test_regularization_losses_are_added(batch):
    x, y = batch
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(
        4, kernel_regularizer=keras.regularizers.L2(10.0))])
    model = AdversarialModel(base, defense=defenses.PGDTraining(eps=0.1,
                                                                steps=2))
    model.compile(optimizer="sgd", loss=SPARSE_CE)
    reg = 10.0 * np.sum(np.square(base.layers[0].kernel.numpy()))
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    assert float(logs["loss"]) > reg
    assert float(logs["loss"]) - float(logs["adv_loss"]) == pytest.approx(
        reg, rel=1e-5)


def test_softmax_output_model_trains(batch):
    x, y = batch
    base, _, _ = linear_model(softmax=True)
    model = AdversarialModel(base, defense=defenses.TRADES(eps=0.1, steps=2))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert np.all(np.isfinite(h["loss"]))


def test_bad_arguments():
    base, _, _ = linear_model()
    d = defenses.FGSMTraining(eps=0.1)
    with pytest.raises(ValueError, match=r"base must be a keras\.Model.*"
                       r"Received: base=<.*Dense"):
        AdversarialModel(keras.layers.Dense(3), defense=d)
    with pytest.raises(ValueError, match=r"Received: base='net'"):
        AdversarialModel("net", defense=d)
    with pytest.raises(ValueError, match=r"Received: defense='pgd'"):
        AdversarialModel(base, defense="pgd")
    with pytest.raises(ValueError, match=r"Received: base=None"):
        AdversarialModel(defense=d)
    model = AdversarialModel(base, defense=d)
    with pytest.raises(ValueError, match=r"Received: loss=None"):
        model.compile(optimizer="sgd")
