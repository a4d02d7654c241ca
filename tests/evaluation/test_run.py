"""The run stage: never a silent NaN (clean NaN outputs, NaN outputs at
adversarial points, attacks raising on non-finite values), its robust
examples counted by the rule the callbacks and `evaluate` share, and the
exchange of chunk results between workers."""


import numpy as np
import pytest
import tensorflow as tf

from keras_adv import attacks
from keras_adv.evaluation import MaskingWarning, evaluate_robustness, plan, run
from tests.conftest import linear_model, threshold_model


def _data(base):
    """10 examples: x0 = 0.05 (4), 0.75 (4) and 0.6 (2); y = base's labels."""
    rng = np.random.RandomState(0)
    x = rng.uniform(0.3, 0.7, (10, 6)).astype("float32")
    x[:, 0] = [0.05, 0.75] * 4 + [0.6, 0.6]
    y = np.argmax(base(x).numpy(), -1)
    return x, y


def _nan_off_grid(base):
    """base + 0 * log(0.01 - |x0 - 0.75|) where x0 > 0.4: finite for
    x0 <= 0.4 and at x0 = 0.75, NaN for other x0 > 0.4 (log of a negative).
    The log's gradient never leaks NaN into the finite examples."""

    def model(v):
        x0 = v[:, :1]
        term = tf.where(x0 > 0.4, tf.math.log(0.01 - tf.abs(x0 - 0.75)), 0.0)
        return base(v) + 0.0 * term

    return model


def test_nan_outputs_count_as_wrong_clean_and_not_broken_under_attack():
    base = linear_model(in_dim=6, classes=4)[0]
    x, y = _data(base)
    model = _nan_off_grid(base)
    assert np.isnan(model(x).numpy()[[8, 9]]).all()
    kwargs = dict(eps=0.3, attacks="fgsm", checks=False, metrics=False, seed=0)
    with pytest.warns(MaskingWarning) as record:
        report = evaluate_robustness(model, x, y, **kwargs)
    assert [r.message for r in record] == report.warnings
    assert [w.check for w in report.warnings] == ["non_finite"] * 2
    assert "2 of 10 clean examples" in report.warnings[0].message
    assert "on 4 examples attacked by fgsm" in report.warnings[1].message
    assert report.diagnostics["non_finite"] == {"clean": 2, "fgsm": 4}
    assert report.clean_accuracy == 0.8  # the two NaN rows count as wrong
    # FGSM moves x0 from 0.75 to 0.45 or 1 (NaN there): those 4 stay robust;
    # the 4 others (x0 stays below 0.4) fare exactly as under the plain model.
    plain = evaluate_robustness(base, x[0:8:2], y[0:8:2], **kwargs)
    assert report.robust_accuracy == (4 + 4 * plain.robust_accuracy) / 10
    assert plain.robust_accuracy < 1.0


def _raising(bad):
    """FGSM that raises like a guarded attack when the batch holds an
    example with `bad(x)`."""

    def fake(model, x, y, **kwargs):
        if bad(x).any():
            raise ValueError("model gave non-finite outputs (simulated)")
        return attacks.pgd(model, x, y, steps=1, random_start=False,
                           eps=kwargs["eps"], norm=kwargs["norm"],
                           clip=kwargs["clip"], seed=0)

    return plan._Attack("fgsm", True, False, fake, attacks.pgd)


def test_attack_error_isolates_the_failing_examples():
    base = linear_model(in_dim=6, classes=4)[0]
    x, y = _data(base)
    x, y = x[:8], y[:8]
    common = dict(norm="linf", clip=(0.0, 1.0), eot=1, from_logits=None,
                  classes=4)
    fake = _raising(lambda v: v[:, 0] > 0.5)
    points = run.attack_points(fake, {}, base, x, y, np.arange(8), 0.3, 0,
                               500, common)
    assert points.nonfinite == 4 and points.invalid == 0
    assert points.error == "model gave non-finite outputs (simulated)"
    assert points.splits == 7  # 8 -> 4+4 -> 2+2+2+2 -> singletons
    honest = run.attack_points(plan.ATTACKS["fgsm"], {}, base, x, y,
                               np.arange(0, 8, 2), 0.3, 0, 500, common)
    assert honest.indices().size > 0
    np.testing.assert_array_equal(np.sort(points.indices()),
                                  np.sort(honest.indices()))


def test_attack_error_screens_clean_non_finite_gradients_first():
    base = linear_model(in_dim=6, classes=4)[0]
    x, y = _data(base)
    x, y = x[:8], y[:8]
    x[1::2, 1] = 0.0
    # sqrt(v^2) = |v|: same outputs, NaN input gradient where a feature is 0.
    model = lambda v: base(tf.sqrt(tf.square(v)))  # noqa: E731
    common = dict(norm="linf", clip=(0.0, 1.0), eot=1, from_logits=None,
                  classes=4)
    fake = _raising(lambda v: (v == 0.0).any(axis=1))
    points = run.attack_points(fake, {}, model, x, y, np.arange(8), 0.2, 0,
                               500, common)
    assert points.nonfinite == 4 and points.splits == 0  # one screen, no halving


def test_other_attack_errors_propagate():
    base = linear_model(in_dim=6, classes=4)[0]
    x, y = _data(base)

    def broken(model, x, y, **kwargs):
        raise ValueError("something else")

    attack = plan._Attack("fgsm", True, False, broken, attacks.pgd)
    with pytest.raises(ValueError, match="something else"):
        run.attack_points(attack, {}, base, x, y, np.arange(4), 0.1, 0, 500,
                          dict(norm="linf", clip=(0.0, 1.0), eot=1,
                               from_logits=None, classes=4))


def test_chunk_result_bytes_round_trip():
    """What workers exchange under a multi-worker strategy: JSON bytes that
    give back the same result (no pickle)."""
    from keras_adv.evaluation.run import ChunkResult, Points

    flags = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]], bool)
    points = Points(broken=[np.array([0, 2]), np.array([5])], invalid=1,
                    nonfinite=2, error="model gave non-finite x", splits=1)
    result = ChunkResult(y=np.array([3, 1, 4], np.int32), flags=flags,
                         clean_nonfinite=1, black_only=[0, 1],
                         fgsm_correct=[2, 1], fgsm_only=[0, 0],
                         points=[("pgd", points, True)],
                         timings={"pgd": 0.25})
    back = ChunkResult.from_bytes(result.to_bytes())
    assert back.y.dtype == np.int32 and back.y.tolist() == [3, 1, 4]
    np.testing.assert_array_equal(back.flags, flags)
    assert back.flags.dtype == bool
    (name, got, count), = back.points
    assert (name, count) == ("pgd", True)
    assert got.indices().tolist() == [0, 2, 5]
    assert (got.invalid, got.nonfinite, got.error, got.splits) == (
        1, 2, "model gave non-finite x", 1)
    assert (back.black_only, back.fgsm_correct, back.timings) == (
        [0, 1], [2, 1], {"pgd": 0.25})


def test_robust_accuracy_is_one_rule_in_evaluation_callbacks_and_evaluate():
    """`ops.robust_hits` counts in all three: a threshold model (class 1
    where x > 0.5) at eps 0.2, with two examples wrong on clean input."""
    import functools

    import keras

    from keras_adv import callbacks, defenses
    from keras_adv.models import AdversarialModel

    base = threshold_model()
    x = np.array([[0.9], [0.1], [0.8], [0.6], [0.35], [0.05]], np.float32)
    y = np.array([1, 1, 0, 1, 0, 0])  # robust: 0.9 and 0.05 (beyond 0.2)
    report = evaluate_robustness(base, x, y, eps=0.2, attacks="pgd",
                                 checks=False, metrics=False, seed=0)
    assert report.clean_accuracy == pytest.approx(4 / 6)
    assert report.robust_accuracy == pytest.approx(2 / 6)
    assert callbacks.robust_accuracy(base, (x, y), eps=0.2, steps=10,
                                     seed=0) == pytest.approx(2 / 6)
    model = AdversarialModel(base, defense=defenses.FGSMTraining(eps=0.2))
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    out = model.evaluate(x, y, adversarial=functools.partial(
        attacks.pgd, eps=0.2, steps=10, seed=0), return_dict=True, verbose=0)
    assert out["robust_accuracy"] == pytest.approx(2 / 6)
