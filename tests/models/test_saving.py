"""Wrapper and subclass forms: save/load and export round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import defenses
from keras_adv.models import AdversarialModel

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@keras.saving.register_keras_serializable(package="keras_adv_tests")
class SubclassedBase(keras.Model):
    """A plain subclassed keras.Model, to be wrapped."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_adv_tests")
class RobustNet(AdversarialModel):
    """The base-class form: defines call and passes defense= to super."""

    def __init__(self, units=8, **kwargs):
        super().__init__(defense=defenses.TRADES(eps=0.1, steps=2, beta=3.0),
                         **kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(3)

    def call(self, x, training=False):
        return self.out(self.hidden(x))


@keras.saving.register_keras_serializable(package="keras_adv_tests")
class ConfigurableNet(AdversarialModel):
    """A subclass that takes its defense as a constructor argument."""

    def __init__(self, defense, units=8, **kwargs):
        super().__init__(defense=defense, **kwargs)
        self.units = units
        self.out = keras.layers.Dense(3)

    def call(self, x, training=False):
        return self.out(x)


def _sequential():
    return keras.Sequential([keras.Input((5,)),
                             keras.layers.Dense(8, activation="relu"),
                             keras.layers.BatchNormalization(),
                             keras.layers.Dense(3)])


def _functional():
    inputs = keras.Input((5,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def _subclassed():
    m = SubclassedBase(units=6)
    m(np.zeros((1, 5), "float32"))
    return m


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.rand(32, 5).astype("float32"), rng.randint(0, 3, 32)


def _train(model, data):
    model.compile(optimizer="adam", loss=SPARSE_CE, metrics=["accuracy"])
    model.fit(*data, batch_size=16, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("make_base", [_sequential, _functional, _subclassed],
                         ids=["sequential", "functional", "subclassed"])
def test_wrapper_save_load_round_trip(tmp_path, data, make_base):
    defense = defenses.MART(eps=0.2, steps=3, beta=4.0, warmup_epochs=2)
    model = _train(AdversarialModel(make_base(), defense=defense), data)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is AdversarialModel
    assert type(loaded.base) is type(model.base)
    assert loaded.defense == defense
    x = data[0]
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    # Compiled state came back too: training resumes where it stopped.
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()
    logs = loaded.fit(*data, batch_size=16, epochs=1, verbose=0).history
    assert {"loss", "adv_loss", "margin_loss", "kl_loss", "accuracy",
            "adv_accuracy"} == set(logs)


def test_subclass_form_trains_saves_and_loads(tmp_path, data):
    model = RobustNet(units=7)
    _train(model, data)
    logs = model.fit(*data, batch_size=16, epochs=1, verbose=0).history
    assert {"clean_loss", "kl_loss", "adv_accuracy"} <= set(logs)
    # A defense changed after construction is the one that is saved.
    model.defense = defenses.TRADES(eps=0.05, steps=4, beta=1.0)
    path = str(tmp_path / "sub.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is RobustNet
    assert loaded.units == 7
    assert loaded.defense == defenses.TRADES(eps=0.05, steps=4, beta=1.0)
    np.testing.assert_allclose(loaded.predict(data[0], verbose=0),
                               model.predict(data[0], verbose=0), rtol=1e-6)


def test_subclass_with_defense_argument_round_trips(tmp_path, data):
    model = _train(ConfigurableNet(defenses.FastTraining(eps=0.1), units=4),
                   data)
    path = str(tmp_path / "conf.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is ConfigurableNet
    assert loaded.defense == defenses.FastTraining(eps=0.1)


@pytest.mark.parametrize("form", ["wrapper", "subclass"])
def test_export_writes_inference_savedmodel(tmp_path, data, form):
    if form == "wrapper":
        model = AdversarialModel(_sequential(),
                                 defense=defenses.PGDTraining(eps=0.1, steps=2))
    else:
        model = RobustNet()
    _train(model, data)
    path = str(tmp_path / "serving")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    out = reloaded.serve(tf.constant(data[0]))
    np.testing.assert_allclose(out.numpy(), model.predict(data[0], verbose=0),
                               rtol=1e-5, atol=1e-6)
    # Only the inference variables: no optimizer slots, no training state.
    names = {v.name for v in reloaded.variables}
    assert len(reloaded.variables) == len(model.weights)
    assert not any("eps_scale" in n or "free_delta" in n for n in names)
    assert not any("adam" in n.lower() for n in names)


def test_get_config_from_config_without_saving():
    model = AdversarialModel(_functional(),
                             defense=defenses.FreeTraining(eps=0.1, replays=2))
    clone = AdversarialModel.from_config(model.get_config())
    assert clone.defense == model.defense
    assert len(clone.base.weights) == len(model.base.weights)


@pytest.mark.parametrize("form", ["wrapper", "subclass"])
def test_loaded_model_is_built_from_its_saved_input_shape(tmp_path, data,
                                                          form):
    """Never called after loading, the model has its input shape: TFLite
    conversion (which reads it), the feature model of the wrapper form."""
    from keras_adv.models import export_model, feature_model, load_served

    model = _train(AdversarialModel(_sequential(), defense=defenses.PGDTraining(
        eps=0.1, steps=1)) if form == "wrapper" else RobustNet(), data)
    assert tuple(model.get_build_config()["input_shape"])[1:] == (5,)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert tuple(loaded.get_build_config()["input_shape"])[1:] == (5,)
    served = load_served(export_model(loaded, str(tmp_path / "m.tflite")))
    np.testing.assert_allclose(served(data[0]), model(data[0]), atol=1e-5)
    if form == "wrapper":
        features = feature_model(loaded)
        assert features.output_shape == (None, 8)
        np.testing.assert_allclose(
            features(data[0]), feature_model(model.base)(data[0]), atol=1e-6)
    else:
        with pytest.raises(ValueError, match="subclassed model has no layer "
                           "graph.*Received: model="):
            feature_model(loaded)
