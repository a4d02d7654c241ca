"""The evaluation driver (`evaluation/driver.py`, `evaluate_robustness`):
the whole flow on a trained CNN (report, metrics, per-class counts, JSON,
plot, no warning), one eps giving numbers, and every argument refused by
name before any work."""

import json

import pytest

from keras_adv.evaluation import RobustnessReport, evaluate_robustness


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
