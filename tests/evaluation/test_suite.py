"""The report stage (`evaluation/suite.py`): the `RobustnessReport`
assembled from the tally, and the eps-free metrics on a trained model."""

from keras_adv.evaluation import empirical_robustness, loss_sensitivity, suite
from tests.evaluation.test_tally import one_chunk


def test_metrics_on_trained_model(trained_cnn, data):
    x, y = data
    er = empirical_robustness(trained_cnn, x[:30], y[:30])
    assert er.failed == 0 and 0.02 < er.median < 0.5
    assert er.mean >= er.median * 0.5
    assert loss_sensitivity(trained_cnn, x[:30], y[:30]) > 0


def test_summarize_reports_the_tally():
    plan, tally, _ = one_chunk()
    report = suite.summarize(plan, tally, None, 2.5)
    assert report.num_examples == 4 and report.clean_accuracy == 0.75
    assert list(report.robust_accuracy) == [0.5, 0.25]
    assert {k: list(v) for k, v in report.attack_accuracy.items()} == {
        "fgsm": [0.75, 0.5], "pgd": [0.5, 0.25]}
    assert report.class_accuracy["1"] == {"examples": 2, "clean": 1.0,
                                          "robust": [0.5, 0.5]}
    assert report.class_accuracy["3"]["clean"] == 0.0
    assert report.metrics == {} and report.seconds >= 2.5
