"""Defense objectives against NumPy, perturbation properties, and the
function form for custom training loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses, ops
from keras_adv.defenses import adversarial_loss
from tests.conftest import linear_model


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)


@pytest.fixture
def setup():
    model, w, b = linear_model()
    rng = np.random.RandomState(2)
    x = rng.uniform(0.1, 0.9, (12, 6)).astype("float32")
    x_adv = np.clip(x + rng.uniform(-0.2, 0.2, x.shape), 0, 1).astype("float32")
    y = rng.randint(0, 4, 12)
    sw = rng.uniform(0, 2, 12).astype("float32")
    return model, w, b, x, x_adv, y, sw


def _ce(p, y):
    return -np.log(p[np.arange(len(y)), y])


def test_trades_loss_equals_numpy(setup):
    model, w, b, x, x_adv, y, sw = setup
    d = defenses.TRADES(eps=0.2, beta=5.0)
    r = adversarial_loss(model, x, y, d, x_adv=x_adv, sample_weight=sw)
    p, q = _softmax(x @ w + b), _softmax(x_adv @ w + b)
    clean = np.mean(sw * _ce(p, y))
    kl = np.mean(sw * _kl(p, q))
    assert float(r.terms["clean_loss"]) == pytest.approx(clean, rel=1e-5)
    assert float(r.terms["kl_loss"]) == pytest.approx(kl, rel=1e-4)
    assert float(r.loss) == pytest.approx(clean + 5.0 * kl, rel=1e-5)


def test_mart_loss_equals_numpy(setup):
    model, w, b, x, x_adv, y, sw = setup
    d = defenses.MART(eps=0.2, beta=6.0)
    r = adversarial_loss(model, x, y, d, x_adv=x_adv, sample_weight=sw)
    p, q = _softmax(x @ w + b), _softmax(x_adv @ w + b)
    other = np.where(np.eye(4)[y] > 0, -1.0, q).max(1)
    adv = np.mean(sw * _ce(q, y))
    margin = np.mean(sw * -np.log(1.0001 - other + 1e-12))
    kl = np.mean(sw * _kl(p, q) * (1.0000001 - p[np.arange(12), y]))
    assert float(r.terms["adv_loss"]) == pytest.approx(adv, rel=1e-5)
    assert float(r.terms["margin_loss"]) == pytest.approx(margin, rel=1e-5)
    assert float(r.terms["kl_loss"]) == pytest.approx(kl, rel=1e-4)
    assert float(r.loss) == pytest.approx(adv + margin + 6.0 * kl, rel=1e-5)


def test_trades_kl_gradient_flows_through_clean_branch(setup):
    """As in the authors' code, the KL term is differentiated through p(x)
    as well as p(x'): the weight gradient differs from the one with p(x)
    held fixed."""
    model, _, _, x, x_adv, y, _ = setup
    d = defenses.TRADES(eps=0.2, beta=3.0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape(persistent=True) as tape:
        r = adversarial_loss(model, x, y, d, x_adv=x_adv)
        z, z_adv = model(x), model(x_adv)
        fixed = ce(y, z) + 3.0 * tf.reduce_mean(ops.kl_divergence(
            tf.stop_gradient(z), z_adv))
        full = ce(y, z) + 3.0 * tf.reduce_mean(ops.kl_divergence(
            z, z_adv))
    w = model.trainable_weights[0]
    g, g_fixed, g_full = (tape.gradient(t, w).numpy() for t in (r.loss, fixed,
                                                                full))
    np.testing.assert_allclose(g, g_full, rtol=1e-5, atol=1e-7)
    assert np.abs(g - g_fixed).max() > 1e-4


PERTURBING = [
    defenses.FGSMTraining(eps=0.1),
    defenses.PGDTraining(eps=0.1, steps=4),
    defenses.FastTraining(eps=0.1),
    defenses.FreeTraining(eps=0.1),
    defenses.TRADES(eps=0.1, steps=4),
    defenses.MART(eps=0.1, steps=4),
]


@pytest.mark.parametrize("defense", PERTURBING, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturb_stays_in_ball_and_box(setup, defense, norm):
    model, _, _, x, _, y, _ = setup
    d = type(defense).from_config({**defense.get_config(), "norm": norm,
                                   "eps": 0.5})
    x_adv = d.perturb(model, x, y).numpy()
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta,
                                                                       axis=1)
    assert np.all(size <= 0.5 + 1e-5)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert size.max() > 0.05
    np.testing.assert_allclose(d.perturb(model, x, y, eps=0.0).numpy(), x)


@pytest.mark.parametrize("defense", PERTURBING, ids=lambda d: type(d).__name__)
def test_perturb_increases_its_objective(setup, defense):
    model, w, b, x, _, y, _ = setup
    x_adv = defense.perturb(model, x, y).numpy()
    p, q = _softmax(x @ w + b), _softmax(x_adv @ w + b)
    if isinstance(defense, defenses.TRADES):
        assert _kl(p, q).mean() > 1e-3
    else:
        assert _ce(q, y).mean() > _ce(p, y).mean() + 0.05


def test_perturb_inside_tf_function_with_variable_eps(setup):
    model, _, _, x, _, y, _ = setup
    eps = tf.Variable(0.2)
    d = defenses.PGDTraining(eps=0.2, steps=3, step_size=0.05)
    fn = tf.function(lambda x, y: d.perturb(model, x, y, eps=eps))
    a = fn(tf.constant(x), tf.constant(y)).numpy()
    eps.assign(0.05)
    b = fn(tf.constant(x), tf.constant(y)).numpy()
    assert np.abs(a - x).max() > 0.1
    assert np.abs(b - x).max() <= 0.05 + 1e-6
    assert fn.experimental_get_tracing_count() == 1


def test_function_form_custom_training_loop_matches_fit(setup):
    """An SGD loop over adversarial_loss gives fit's weights (FGSM-AT is
    deterministic)."""
    _, _, _, x, _, y, _ = setup
    d = defenses.FGSMTraining(eps=0.1)
    loop_model, _, _ = linear_model()
    opt = keras.optimizers.SGD(0.3)

    @tf.function
    def step(xb, yb):
        x_adv = d.perturb(loop_model, xb, yb)
        with tf.GradientTape() as tape:
            r = adversarial_loss(loop_model, xb, yb, d, x_adv=x_adv)
        grads = tape.gradient(r.loss, loop_model.trainable_weights)
        opt.apply(grads, loop_model.trainable_weights)
        return r.loss

    for i in range(0, 12, 4):
        step(tf.constant(x[i:i + 4]), tf.constant(y[i:i + 4]))
    from keras_adv.models import AdversarialModel

    fit_model = AdversarialModel(linear_model()[0], defense=d)
    fit_model.compile(optimizer=keras.optimizers.SGD(0.3),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    fit_model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(loop_model.get_weights()[0],
                               fit_model.get_weights()[0], rtol=1e-5,
                               atol=1e-6)


def test_function_form_one_hot_and_eps_override(setup):
    model, _, _, x, _, y, _ = setup
    d = defenses.FGSMTraining(eps=0.3, clean_weight=0.0)
    sparse = adversarial_loss(model, x, y, d, eps=0.1)
    onehot = adversarial_loss(model, x, np.eye(4, dtype="float32")[y], d,
                              eps=0.1)
    assert float(sparse.loss) == pytest.approx(float(onehot.loss), rel=1e-6)
    full = adversarial_loss(model, x, y, d)
    assert float(full.loss) > float(sparse.loss)
    zero = adversarial_loss(model, x, y, d, eps=0.0)
    assert float(zero.terms["adv_loss"]) == pytest.approx(
        float(zero.terms["clean_loss"]), rel=1e-6)


def test_function_form_bad_inputs(setup):
    model, _, _, x, _, y, _ = setup
    with pytest.raises(ValueError, match=r"Received: defense='trades'"):
        adversarial_loss(model, x, y, "trades")
    with pytest.raises(ValueError, match=r"Received: defense=FreeTraining"):
        adversarial_loss(model, x, y, defenses.FreeTraining(eps=0.1))
    with pytest.raises(ValueError, match=r"Received: eps=-1"):
        adversarial_loss(model, x, y, defenses.PGDTraining(eps=0.1), eps=-1)
