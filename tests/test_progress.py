"""The one progress mechanism (`keras_adv.progress.Progress`): counts of
examples with a heartbeat naming the work under way, stage lines with a
prefix and their own heartbeat, and no line once closed; `show`, the one
resolver of the `progress` argument."""

import sys
import time

import numpy as np
import pytest

from keras_adv.evaluation import evaluate_robustness
from keras_adv.progress import Progress, show
from tests.conftest import linear_model, run_examples
from tests.evaluation.test_run import _data


def _fast_heartbeat(monkeypatch, quiet=0.05):
    monkeypatch.setattr(Progress, "QUIET_SECONDS", quiet)
    monkeypatch.setattr(Progress, "STAGE_QUIET_SECONDS", quiet)
    monkeypatch.setattr(Progress, "BEAT_SECONDS", 0.01)


def test_heartbeat_names_the_work_under_way(monkeypatch, capsys):
    _fast_heartbeat(monkeypatch, quiet=0.1)
    with Progress(True, total=10, counts=True) as progress:
        progress.doing("pgd at eps 0.1 on 10 examples of 1-10")
        time.sleep(0.4)
        progress.step(10, 0.5)
    time.sleep(0.2)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("evaluated 0/10 examples; now pgd at eps 0.1 "
                               "on 10 examples of 1-10 (")
    assert lines[-1].startswith("evaluated 10/10 examples, robust 0.5000 (")
    assert 2 <= len(lines) <= 5  # one per QUIET_SECONDS at most
    assert Progress.last_line > 0


def test_disabled_progress_prints_nothing(monkeypatch, capsys):
    _fast_heartbeat(monkeypatch)
    with Progress(False, total=10, counts=True) as progress:
        time.sleep(0.2)
        progress.step(10)
    with Progress(False, prefix="keras-adv certify") as stages:
        stages("certifying")
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


def test_stage_heartbeat_while_a_stage_runs(monkeypatch, capsys):
    _fast_heartbeat(monkeypatch, quiet=0.2)
    monkeypatch.setattr(Progress, "BEAT_SECONDS", 0.02)
    with Progress(prefix="keras-adv certify") as stages:
        stages("certifying 5 examples")
        time.sleep(0.7)
    time.sleep(0.2)  # stopped: nothing more
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("keras-adv certify: certifying 5 examples (")
    beats = lines[1:]
    assert 1 <= len(beats) <= 4  # one per STAGE_QUIET_SECONDS at most
    assert all(line.startswith("keras-adv certify: certifying 5 examples, "
                               "still running (") for line in beats)


def test_no_stage_heartbeat_while_a_counter_prints(monkeypatch, capsys):
    # The counter's lines (any Progress's) keep the stage heartbeat quiet;
    # once they stop, the stage's heartbeat speaks again.
    _fast_heartbeat(monkeypatch, quiet=30.0)
    monkeypatch.setattr(Progress, "STAGE_QUIET_SECONDS", 0.5)
    monkeypatch.setattr(Progress, "LINE_SECONDS", 0.0)
    with Progress(prefix="keras-adv evaluate") as stages:
        stages("attacking")
        with Progress(True, total=120, counts=True) as counter:
            for _ in range(120):  # a line every 10 ms for over a second
                counter.step(1)
                time.sleep(0.01)
        during = capsys.readouterr().err.splitlines()
        time.sleep(1.0)
    after = capsys.readouterr().err.splitlines()
    assert during[0].startswith("keras-adv evaluate: attacking (")
    assert not any("still running" in line for line in during)
    assert during[-1].startswith("evaluated 120/120 examples (")
    assert after and after[0].startswith("keras-adv evaluate: attacking, "
                                         "still running (")


def test_evaluation_lines_name_each_attack_while_it_runs(monkeypatch,
                                                         capsys):
    _fast_heartbeat(monkeypatch, quiet=0.0)
    model = linear_model(in_dim=6, classes=4)[0]
    x = np.random.RandomState(0).uniform(0.2, 0.8, (12, 6)).astype("float32")
    evaluate_robustness(model, x, np.arange(12) % 4, eps=0.1,
                        attacks=[("pgd", {"steps": 300})], batch_size=6,
                        checks=False, metrics=False, progress=True, seed=0)
    time.sleep(0.1)  # closed: no line after the end
    lines = capsys.readouterr().err.splitlines()
    beats = [line for line in lines if "; now " in line]
    assert any("; now pgd at eps 0.1 on " in line and "examples of 1-6 ("
               in line for line in beats)
    assert any("examples of 7-12 (" in line for line in beats)
    assert lines[-1].startswith("evaluated 12/12 examples, robust ")


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_on_stderr_only(capsys, monkeypatch, terminal):
    # A bar on a terminal; plain lines elsewhere (CI logs, pipes).
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    base = linear_model(in_dim=6, classes=4)[0]
    x, y = _data(base)
    x, y = x[:8:2], y[:8:2]
    kwargs = dict(eps=[0.0, 0.1], attacks="fgsm", checks=False, metrics=False,
                  seed=0)
    quiet = evaluate_robustness(base, x, y, progress=False, **kwargs)
    assert capsys.readouterr().err == ""
    shown = evaluate_robustness(base, x, y, progress=True, **kwargs)
    out, err = capsys.readouterr()
    # one step per example; the running robust accuracy at the last eps
    assert out == ""
    if terminal:
        assert "4/4" in err and "robust: 1.0000" in err
    else:
        assert err.startswith("evaluated 4/4 examples, robust 1.0000 (")
        assert err.count("\n") == 1
    assert shown.robust_accuracy == quiet.robust_accuracy


def test_examples_run():
    run_examples("keras_adv.progress")


@pytest.mark.parametrize("terminal", [True, False])
def test_show_resolves_progress(monkeypatch, terminal):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert show(True, 1) is True and show(False, 10**9) is False
    assert show(np.bool_(True)) is True
    assert show(None, 199) is False  # short: never
    assert show(None, 200) is terminal and show(None) is terminal
    assert show(None, 5, long=5) is terminal


def test_a_run_inside_another_is_silent_unless_forced(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with Progress(False):  # the outer run reports (or chose not to)
        assert show(None) is False and show(True) is True
        with Progress(False):
            assert Progress.depth == 2
    assert Progress.depth == 0 and show(None) is True


def test_show_refuses_a_non_bool():
    with pytest.raises(TypeError, match=r"^progress must be True, False or "
                       r"None\. Received: progress='yes'$"):
        show("yes")


def test_counter_label_names_the_work(capsys):
    with Progress(True, total=3, counts=True, prefix="gradient_matching",
                  label="brewed {} steps") as progress:
        progress.step(3)
    err = capsys.readouterr().err
    assert err.startswith("gradient_matching: brewed 3/3 steps (")
