"""GaussianAugmentation and SmoothAdv: configs, hooks, fit, save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import AdversarialModel
from tests.conftest import linear_model

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
CONFIGS = [
    defenses.GaussianAugmentation(sigma=0.25),
    defenses.GaussianAugmentation(sigma=1, clip=None),
    defenses.SmoothAdv(sigma=0.5, eps=1.0, steps=2, samples=3,
                       warmup_epochs=2),
]


@pytest.mark.parametrize("defense", CONFIGS, ids=repr)
def test_serialisation_round_trip(defense):
    blob = keras.saving.serialize_keras_object(defense)
    assert blob["registered_name"] == f"keras_adv>{type(defense).__name__}"
    back = keras.saving.deserialize_keras_object(blob, safe_mode=True)
    assert back == defense and type(back) is type(defense)


def test_normalised_fields():
    d = defenses.GaussianAugmentation(sigma=1)
    assert d.sigma == 1.0 and isinstance(d.sigma, float)
    assert (d.eps, d.norm, d.clip, d.warmup_epochs) == (0.0, "l2", (0.0, 1.0),
                                                        0.0)
    s = defenses.SmoothAdv(sigma=0.25, eps=1)
    assert (s.eps, s.steps, s.samples, s.norm) == (1.0, 10, 4, "l2")
    assert s.eps_at(1.0) == 1.0


@pytest.mark.parametrize("make,needle", [
    (lambda: defenses.GaussianAugmentation(sigma=0), "sigma=0"),
    (lambda: defenses.GaussianAugmentation(sigma=float("nan")), "sigma=nan"),
    (lambda: defenses.GaussianAugmentation(sigma=0.2, clip=(1, 0)), "clip="),
    (lambda: defenses.SmoothAdv(sigma=-1, eps=1), "sigma=-1"),
    (lambda: defenses.SmoothAdv(sigma=0.2, eps=-1), "eps=-1"),
    (lambda: defenses.SmoothAdv(sigma=0.2, eps=1, steps=0), "steps=0"),
    (lambda: defenses.SmoothAdv(sigma=0.2, eps=1, samples=0), "samples=0"),
    (lambda: defenses.SmoothAdv(sigma=0.2, eps=1, step_size=0), "step_size"),
    (lambda: defenses.SmoothAdv(sigma=0.2, eps=1, warmup_epochs=-1),
     "warmup_epochs"),
])
def test_bad_configs(make, needle):
    with pytest.raises(ValueError, match=f"Received: {needle}"):
        make()


def test_gaussian_perturb_is_unclipped_noise_of_sigma():
    keras.utils.set_random_seed(0)
    x = np.full((200, 50), 0.5, "float32")
    noisy = defenses.GaussianAugmentation(sigma=0.3).perturb(None, x, None)
    d = noisy.numpy() - x
    assert abs(d.std() - 0.3) < 0.01 and abs(d.mean()) < 0.01
    assert noisy.numpy().min() < 0.0 and noisy.numpy().max() > 1.0
    assert noisy.dtype == tf.float32


def test_smoothadv_perturb_stays_in_the_l2_ball_and_box():
    model, _, _ = linear_model()
    x = np.random.RandomState(0).uniform(size=(16, 6)).astype("float32")
    y = np.arange(16) % 4
    d = defenses.SmoothAdv(sigma=0.25, eps=0.5, steps=3, samples=2)
    x_adv = d.perturb(model, x, y).numpy()
    norms = np.linalg.norm(x_adv - x, axis=1)
    assert norms.max() <= 0.5 + 1e-5 and norms.min() > 0.25
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    half = d.perturb(model, x, y, eps=0.25).numpy()  # warm-up budget
    assert np.linalg.norm(half - x, axis=1).max() <= 0.25 + 1e-5


def test_smoothadv_loss_is_the_mean_over_noisy_copies():
    model, _, _ = linear_model()
    x = np.random.RandomState(1).uniform(size=(8, 6)).astype("float32")
    y = np.arange(8) % 4
    d = defenses.SmoothAdv(sigma=1e-7, eps=0.5, steps=1, samples=3)
    result = d.loss(model, x, y, x, task_loss=lambda t, p, w: SPARSE_CE(
        t, p, sample_weight=w))
    want = float(SPARSE_CE(y, model(x)))
    assert float(result.loss) == pytest.approx(want, rel=1e-5)
    assert result.y_pred_adv.shape == (8, 4) and result.y_pred is None
    assert set(result.terms) == {"adv_loss"}


@pytest.mark.parametrize("defense", [
    defenses.GaussianAugmentation(sigma=0.25),
    defenses.SmoothAdv(sigma=0.25, eps=0.5, steps=2, samples=2,
                       warmup_epochs=1),
], ids=lambda d: type(d).__name__)
def test_fit_and_safe_load(defense, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.RandomState(0)
    x = rng.uniform(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    model = AdversarialModel(base, defense=defense)
    model.compile(keras.optimizers.Adam(0.05), SPARSE_CE,
                  metrics=["accuracy"])
    logs = model.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    assert sorted(logs) == ["accuracy", "adv_accuracy", "adv_loss", "loss"]
    assert logs["loss"][-1] < logs["loss"][0]
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = keras.models.load_model(path, safe_mode=True)
    assert back.defense == defense
    np.testing.assert_allclose(back.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
