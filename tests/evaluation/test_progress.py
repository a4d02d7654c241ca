"""Progress while a chunk runs: where stderr is not a terminal, a line at
least every `Progress.QUIET_SECONDS` naming the attack under way, and no
line once the evaluation has ended."""

import time

import numpy as np

from keras_adv.evaluation import evaluate_robustness, run
from tests.conftest import linear_model


def _fast_heartbeat(monkeypatch, quiet=0.05):
    monkeypatch.setattr(run.Progress, "QUIET_SECONDS", quiet)
    monkeypatch.setattr(run.Progress, "BEAT_SECONDS", 0.01)


def test_heartbeat_names_the_work_under_way(monkeypatch, capsys):
    _fast_heartbeat(monkeypatch, quiet=0.1)
    progress = run.Progress(10, True)
    progress.doing("pgd at eps 0.1 on 10 examples of 1-10")
    time.sleep(0.4)
    progress.step(10, 0.5)
    progress.close()
    time.sleep(0.2)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("evaluated 0/10 examples; now pgd at eps 0.1 "
                               "on 10 examples of 1-10 (")
    assert lines[-1].startswith("evaluated 10/10 examples, robust 0.5000 (")
    assert 2 <= len(lines) <= 5  # one per QUIET_SECONDS at most
    assert run.Progress.last_line > 0


def test_disabled_progress_prints_nothing(monkeypatch, capsys):
    _fast_heartbeat(monkeypatch)
    progress = run.Progress(10, False)
    time.sleep(0.2)
    progress.step(10)
    progress.close()
    assert capsys.readouterr().err == ""


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
