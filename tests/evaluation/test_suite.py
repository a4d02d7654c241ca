"""evaluate_robustness: the report, and every gradient-masking check firing
on a purpose-built model while staying silent on a normal trained one."""

import json

import pytest
import tensorflow as tf

from keras_adv.evaluation import (
    MaskingWarning,
    RobustnessReport,
    empirical_robustness,
    evaluate_robustness,
    loss_sensitivity,
)

FAST = [("apgd-ce", {"steps": 10}), ("square", {"queries": 200})]


@pytest.fixture(scope="module")
def data(cnn_test_batch, mnist5k):
    _, (x_test, y_test) = mnist5k
    return x_test[:60], y_test[:60]


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


def test_normal_model_report_and_no_warning(trained_cnn, data, tmp_path):
    x, y = data
    report = evaluate_robustness(
        trained_cnn, x, y, eps=[0.05, 0.1],
        attacks=[("apgd-ce", {"steps": 20}), ("apgd-t", {"steps": 20}),
                 ("square", {"queries": 300})], seed=0)
    assert isinstance(report, RobustnessReport)
    assert report.warnings == []
    assert 0.85 <= report.clean_accuracy <= 1.0
    rob = report.robust_accuracy
    assert len(rob) == 2 and rob[0] >= rob[1]
    assert rob[1] < report.clean_accuracy - 0.3
    for curve in report.attack_accuracy.values():  # cumulative
        assert all(c >= r - 1e-9 for c, r in zip(curve, rob))
    assert report.attack_accuracy["square"] == rob
    er = report.metrics["empirical_robustness"]
    assert 0.01 < er["median"] < 0.5 and er["evaluated"] > 0
    assert report.metrics["loss_sensitivity"] > 0
    assert report.diagnostics["large_eps"]["accuracy"] == 0.0
    d = json.loads(report.to_json(tmp_path / "r.json"))
    assert d["robust_accuracy"] == list(rob) and d["warnings"] == []
    assert json.loads((tmp_path / "r.json").read_text())["eps"] == [0.05, 0.1]
    png = report.plot(tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "robust" in report.table()
    # Per class: the counts add up to the totals, and the table lists them.
    per = report.class_accuracy
    assert sorted(per, key=int) == [str(c) for c in sorted(set(y.tolist()))]
    assert sum(v["examples"] for v in per.values()) == len(y)
    for i in range(2):
        weighted = sum(v["robust"][i] * v["examples"] for v in per.values())
        assert weighted / len(y) == pytest.approx(rob[i], abs=1e-12)
    assert sum(v["clean"] * v["examples"] for v in per.values()) / len(y) == (
        pytest.approx(report.clean_accuracy, abs=1e-12))
    assert RobustnessReport.from_json(report.to_json()) == report
    lines = report.class_table().splitlines()
    assert lines[1].split() == ["class", "examples", "clean", "eps", "0.05",
                                "eps", "0.1"] and len(lines) == 2 + len(per)


def test_single_eps_gives_numbers(trained_cnn, data):
    x, y = data
    report = evaluate_robustness(trained_cnn, x, y, eps=0.1,
                                 attacks="fgsm,pgd", checks=False,
                                 metrics=False, seed=0)
    assert isinstance(report.robust_accuracy, float)
    assert report.attack_accuracy["pgd"] == report.robust_accuracy
    assert report.attack_accuracy["fgsm"] >= report.robust_accuracy


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


def test_single_step_beating_iterative_fires(trained_cnn, data):
    x, y = data
    model = _wrap(trained_cnn, before=_reverse_off_grid)
    report = _warned(model, x, y, eps=0.15, attacks=FAST[:1],
                                 metrics=False, seed=0)
    assert "single_step" in _checks(report)
    assert report.diagnostics["fgsm_only"][0] > 1


def test_black_box_beating_white_box_fires(trained_cnn, data):
    x, y = data
    model = _wrap(trained_cnn, before=_reverse)
    report = _warned(model, x, y, eps=0.2, attacks=FAST,
                                 metrics=False, seed=0)
    assert "black_box" in _checks(report)
    assert report.diagnostics["black_box_only"][0] > 1


def test_accuracy_not_falling_with_eps_fires(trained_cnn, data):
    x, y = data
    model = _wrap(trained_cnn, before=_reverse)
    report = _warned(model, x, y, eps=0.1, attacks=FAST[:1],
                                 metrics=False, seed=0)
    assert "eps_growth" in _checks(report)
    assert report.diagnostics["large_eps"]["accuracy"] > 0.5


def test_metrics_on_trained_model(trained_cnn, data):
    x, y = data
    er = empirical_robustness(trained_cnn, x[:30], y[:30])
    assert er.failed == 0 and 0.02 < er.median < 0.5
    assert er.mean >= er.median * 0.5
    assert loss_sensitivity(trained_cnn, x[:30], y[:30]) > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps=0.1, attacks="pgd,foo"), r"Received: attacks='pgd,foo'"),
        (dict(eps=0.1, attacks=[]), r"Received: attacks=\[\]"),
        (dict(eps=[0.1, "x"]), r"Received: eps=\[0\.1, 'x'\]"),
        (dict(eps=-0.1), r"Received: eps=-0\.1"),
        (dict(eps=0.1, norm="l1"), r"Received: norm='l1'"),
        (dict(eps=0.1, eot_samples=0), r"Received: eot_samples=0"),
        (dict(eps=0.1, batch_size=0), r"Received: batch_size=0"),
    ],
)
def test_bad_arguments(trained_cnn, data, kwargs, match):
    x, y = data
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(trained_cnn, x[:4], y[:4], **kwargs)
