"""AdversarialModel with several inputs (`perturb=`) and token models
(`perturb_layer=`)."""

import os

import keras
import numpy as np
import pytest

from keras_adv import defenses
from keras_adv.attacks import inputs
from keras_adv.models import AdversarialModel
from tests.conftest import two_input_model as shared_two_input_model

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
RNG = np.random.default_rng(0)
IDS = RNG.integers(0, 30, (32, 6)).astype("int32")
Y = (IDS[:, 0] % 3).astype("int64")
X = RNG.random((32, 4)).astype("float32")
M = RNG.random((32, 2)).astype("float32")


def token_model():
    keras.utils.set_random_seed(3)
    ids = keras.Input((6,), dtype="int32", name="ids")
    e = keras.layers.Embedding(30, 8, name="embedding")(ids)
    h = keras.layers.GlobalAveragePooling1D()(e)
    return keras.Model(ids, keras.layers.Dense(3)(h))


def two_input_model(dict_inputs=False):
    return shared_two_input_model(dict_inputs, seed=4, activation="relu")


def fit_token(defense, y=Y, epochs=2):
    base = token_model()
    before = base.get_layer("embedding").embeddings.numpy().copy()
    model = AdversarialModel(base, defense=defense, perturb_layer="embedding")
    model.compile(keras.optimizers.Adam(0.01), SPARSE_CE, metrics=["accuracy"])
    logs = model.fit(IDS, y, batch_size=16, epochs=epochs, verbose=0).history
    after = base.get_layer("embedding").embeddings.numpy()
    return model, logs, np.abs(after - before).max()


def test_token_vat_without_perturb_layer_says_to_use_it():
    # The failure of issue 15 ("None values not supported") is now a clear
    # error before any training.
    model = AdversarialModel(token_model(), defense=defenses.VAT(eps=1.0))
    model.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match=r"Integer inputs \(such as token "
                       r"ids\) cannot be perturbed: pass perturb_layer="):
        model.fit(IDS, Y, epochs=1, verbose=0)


@pytest.mark.parametrize("defense", [
    defenses.PGDTraining(eps=0.5, steps=3),
    defenses.VAT(eps=1.0),
    defenses.TRADES(eps=0.5, steps=2),
    defenses.FreeTraining(eps=0.5, replays=2),
], ids=lambda d: type(d).__name__)
def test_token_training_on_embeddings(defense):
    model, logs, moved = fit_token(defense)
    for name, values in logs.items():
        assert np.all(np.isfinite(values)), name
    # The loss gradient reaches the embedding weights.
    assert moved > 1e-3
    assert model.perturb_layer == "embedding"


def test_token_vat_semi_supervised_trains():
    y = np.where(np.arange(32) < 12, Y, -1)  # 12 labels, 20 unlabeled
    _, logs, moved = fit_token(defenses.VAT(eps=1.0, weight=1.0), y=y,
                               epochs=3)
    assert np.all(np.isfinite(logs["loss"])) and moved > 1e-3
    assert logs["vat_loss"][-1] > 0.0


def test_token_fgsm_training_adversarial_loss_exceeds_clean():
    # The inner maximisation on the embeddings raises the loss in every
    # epoch: the attack works on the layer output.
    _, logs, _ = fit_token(defenses.FGSMTraining(eps=0.5), epochs=3)
    assert all(a > c for a, c in zip(logs["adv_loss"], logs["clean_loss"]))


def test_inner_maximisation_runs_on_the_layer_output():
    base = token_model()
    bound = inputs.bind(base, IDS[:4], perturb_layer="embedding")
    e0 = np.asarray(base.get_layer("embedding")(IDS[:4]))
    np.testing.assert_allclose(bound.parts, e0)
    d = defenses.PGDTraining(eps=0.2, steps=3, clip=None)
    e_adv = np.asarray(d.perturb(bound, bound.parts, Y[:4]))
    assert e_adv.shape == (4, 6, 8)
    assert np.abs(e_adv - e0).max() <= 0.2 + 1e-6


def compile_two(model):
    model.compile(keras.optimizers.Adam(0.01), SPARSE_CE, metrics=["accuracy"])
    return model


def test_several_inputs_fit_save_and_load(tmp_path):
    model = compile_two(AdversarialModel(
        two_input_model(), defense=defenses.PGDTraining(eps=0.1, steps=2),
        perturb=["image"]))
    logs = model.fit([X, M], Y, batch_size=16, epochs=2, verbose=0).history
    assert np.all(np.isfinite(logs["loss"]))
    assert sorted(logs) == ["accuracy", "adv_accuracy", "adv_loss", "loss"]
    robust = model.evaluate([X, M], Y, adversarial=True, return_dict=True,
                            verbose=0)
    assert 0.0 <= robust["adv_accuracy"] <= robust["accuracy"]
    assert model.get_config()["perturb"] == ["image"]
    path = os.path.join(tmp_path, "two.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, AdversarialModel)
    assert loaded.perturb == ["image"] and loaded.perturb_layer is None
    np.testing.assert_allclose(loaded.predict([X, M], verbose=0),
                               model.predict([X, M], verbose=0), atol=1e-6)
    again = loaded.fit([X, M], Y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(again.history["loss"][-1])


def test_token_model_save_and_load(tmp_path):
    model, _, _ = fit_token(defenses.VAT(eps=1.0), epochs=1)
    path = os.path.join(tmp_path, "tok.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.perturb_layer == "embedding"
    np.testing.assert_allclose(loaded.predict(IDS, verbose=0),
                               model.predict(IDS, verbose=0), atol=1e-6)


@pytest.mark.parametrize("defense", [
    defenses.TRADES(eps=0.1, steps=2), defenses.VAT(eps=0.5),
    defenses.FGSMTraining(eps=0.1), defenses.MART(eps=0.1, steps=2),
], ids=lambda d: type(d).__name__)
def test_dict_inputs_every_float_input(defense):
    model = compile_two(AdversarialModel(two_input_model(dict_inputs=True),
                                         defense=defense))
    logs = model.fit({"image": X, "meta": M}, Y, batch_size=16, epochs=1,
                     verbose=0).history
    assert all(np.all(np.isfinite(v)) for v in logs.values())


def test_several_inputs_per_input_budget_in_training():
    base = two_input_model()
    bound = inputs.bind(base, [X, M])
    d = defenses.PGDTraining(eps=0.1, steps=3, norm="l2", clip=None)
    adv = d.perturb(bound, bound.parts, Y)
    assert isinstance(adv, list) and len(adv) == 2
    for got, orig in zip(adv, (X, M)):
        norms = np.linalg.norm(np.asarray(got) - orig, axis=1)
        assert norms.max() <= 0.1 + 1e-5 and norms.min() > 0.09


def test_view_errors():
    base = token_model()
    with pytest.raises(ValueError, match=r"perturb_layer must be the name of "
                       r"a layer.*Received: perturb_layer='emb'"):
        AdversarialModel(base, defense=defenses.VAT(eps=1.0),
                         perturb_layer="emb")
    with pytest.raises(ValueError, match=r"perturb and perturb_layer cannot "
                       r"be combined"):
        AdversarialModel(base, defense=defenses.VAT(eps=1.0), perturb=0,
                         perturb_layer="embedding")
    with pytest.raises(ValueError, match=r"do not take combined defenses"):
        AdversarialModel(base, defense=defenses.PGDTraining(eps=0.1)
                         + defenses.VAT(eps=1.0), perturb_layer="embedding")
    sparse = AdversarialModel(base, defense=defenses.DataSparsity(),
                              perturb_layer="embedding")
    sparse.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match=r"DataSparsity stacks copies"):
        sparse.fit(IDS, Y, epochs=1, verbose=0)
    free = compile_two(AdversarialModel(
        two_input_model(), defense=defenses.FreeTraining(eps=0.1)))
    with pytest.raises(ValueError, match=r"FreeTraining perturbs one input; "
                       r"name it with AdversarialModel\(perturb=\.\.\.\)"):
        free.fit([X, M], Y, epochs=1, verbose=0)
    unknown = compile_two(AdversarialModel(
        two_input_model(), defense=defenses.FGSMTraining(eps=0.1),
        perturb="img"))
    with pytest.raises(ValueError, match=r"Received: perturb='img'"):
        unknown.fit([X, M], Y, epochs=1, verbose=0)
