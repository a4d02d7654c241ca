"""The gradient-masking checks (`evaluation/masking.py`): each one firing
on a purpose-built model, through `evaluate_robustness` (every warning in
the report also emitted once, at the caller's line), and the thresholds
of the individual tests. A normal trained model gets none
(test_driver.py)."""

import pytest
import tensorflow as tf

from keras_adv.evaluation import MaskingWarning, evaluate_robustness, masking

FAST = [("apgd-ce", {"steps": 10}), ("square", {"queries": 200})]


@tf.custom_gradient
def _reverse(x):
    return tf.identity(x), lambda g: -g


@tf.custom_gradient
def _reverse_off_grid(x):
    # Gradients are right at clean MNIST pixels (multiples of 1/255) and
    # reversed anywhere else: a single step from x works, a random start
    # followed by iterations does not.
    on = tf.reduce_all(tf.abs(x * 255.0 - tf.round(x * 255.0)) < 1e-3,
                       axis=[1, 2, 3], keepdims=True)
    return tf.identity(x), lambda g: tf.where(on, g, -g)


def _wrap(base, before=None, after=None):
    def model(x):
        v = before(x) if before is not None else x
        z = base(v, training=False)
        return after(z) if after is not None else z

    return model


def _checks(report):
    return {w.check for w in report.warnings}


def _warned(*args, **kwargs):
    """evaluate_robustness expecting MaskingWarnings: each one in the report
    is also emitted once, in order, pointing at the caller's line."""
    with pytest.warns(MaskingWarning) as record:
        report = evaluate_robustness(*args, **kwargs)
    emitted = [r for r in record if isinstance(r.message, MaskingWarning)]
    assert [r.message for r in emitted] == report.warnings
    assert {r.filename for r in emitted} == {__file__}
    return report


def test_zero_gradients_fire_and_dlr_still_breaks(trained_cnn, data):
    x, y = data
    normal = evaluate_robustness(trained_cnn, x, y, eps=0.1, attacks=FAST[:1],
                                 metrics=False, seed=0)
    saturated = _wrap(trained_cnn, after=lambda z: 1000.0 * z)
    report = _warned(
        saturated, x, y, eps=0.1,
        attacks=[("apgd-ce", {"steps": 10}), ("apgd-t", {"steps": 10})],
        metrics=False, seed=0)
    assert "gradients" in _checks(report)
    assert "exactly zero" in str(report.warnings[0])
    assert report.robust_accuracy <= normal.robust_accuracy + 0.1


def test_missing_gradients_fire_and_only_black_box_runs(trained_cnn, data):
    x, y = data
    quantized = _wrap(trained_cnn, before=lambda v: tf.round(v * 8.0) / 8.0)
    report = _warned(quantized, x, y, eps=0.3, attacks=FAST,
                     metrics=False, seed=0)
    assert "gradients" in _checks(report)
    assert "no input gradient" in report.warnings[0].message
    acc = report.attack_accuracy
    assert acc["apgd-ce"] == report.clean_accuracy  # skipped
    assert acc["square"] < report.clean_accuracy  # black box still works


def test_nan_gradients_fire(trained_cnn, data):
    x, y = data
    # |x| computed as sqrt(x^2): same outputs, NaN gradient at zero pixels.
    nan_grad = _wrap(trained_cnn, before=lambda v: tf.sqrt(tf.square(v)))
    report = _warned(nan_grad, x, y, eps=0.1, attacks=FAST[:1],
                     metrics=False, seed=0)
    assert "gradients" in _checks(report)
    assert any("NaN" in w.message for w in report.warnings)


def test_randomness_fires_without_eot_only(trained_cnn, data):
    x, y = data

    def noisy(v):
        noise = tf.random.normal(tf.shape(v), stddev=0.05)
        return trained_cnn(tf.clip_by_value(v + noise, 0, 1), training=False)

    report = _warned(noisy, x, y, eps=0.1, attacks=FAST[:1],
                     metrics=False, seed=0)
    assert "randomness" in _checks(report)
    assert "eot_samples=20" in str(report.warnings)
    with_eot = evaluate_robustness(noisy, x[:20], y[:20], eps=0.1,
                                   attacks=[("apgd-ce", {"steps": 3})],
                                   eot_samples=2, metrics=False, seed=0)
    assert "randomness" not in _checks(with_eot)


@pytest.mark.parametrize("before, eps, attacks, check, diagnostic", [
    # a single step beating the iterative attack (FGSM only)
    (_reverse_off_grid, 0.15, 1, "single_step", "fgsm_only"),
    # a black-box attack beating the white-box ones
    (_reverse, 0.2, None, "black_box", "black_box_only"),
])
def test_a_weaker_attack_beating_a_stronger_fires(trained_cnn, data, before,
                                                  eps, attacks, check,
                                                  diagnostic):
    x, y = data
    model = _wrap(trained_cnn, before=before)
    report = _warned(model, x, y, eps=eps, attacks=FAST[:attacks],
                     metrics=False, seed=0)
    assert check in _checks(report)
    assert report.diagnostics[diagnostic][0] > 1


def test_accuracy_not_falling_with_eps_fires(trained_cnn, data):
    x, y = data
    model = _wrap(trained_cnn, before=_reverse)
    report = _warned(model, x, y, eps=0.1, attacks=FAST[:1],
                     metrics=False, seed=0)
    assert "eps_growth" in _checks(report)
    assert report.diagnostics["large_eps"]["accuracy"] > 0.5


def test_significant_and_the_eps_curve():
    # More than 1% and more than one example; a curve rising by > 2 points.
    assert [masking.significant(c, 100) for c in (1, 2)] == [False, True]
    assert [masking.significant(c, 1000) for c in (10, 11)] == [False, True]
    rising = masking.eps_growth_warnings(1.0, None, [0.1, 0.2], [0.40, 0.43])
    assert [w.check for w in rising] == ["eps_growth"]
    assert "rises from 40.0% at eps=0.1 to 43.0% at eps=0.2" in \
        rising[0].message
    assert masking.eps_growth_warnings(1.0, 0.05, [0.1, 0.2],
                                       [0.40, 0.42]) == []
