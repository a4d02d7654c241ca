"""Every example runs end to end in its quick mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--quick", *args],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_demo(tmp_path):
    out = run("demo.py", "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    assert "robust accuracy gained by the defense" in out
    for name in ("report.txt", "report.json", "robustness.png",
                 "defended.keras", "defended_savedmodel/saved_model.pb",
                 "audit/report.html", "audit/report.json"):
        assert (tmp_path / "out" / name).exists(), name


@pytest.mark.parametrize("defense", ["pgd", "trades"])
def test_adversarial_training(tmp_path, defense):
    out = run("adversarial_training.py", "--defense", defense,
              "--save", str(tmp_path / "m.keras"), tmp_path=tmp_path)
    assert "PGD-20" in out and (tmp_path / "m.keras").exists()


def test_sap_evaluation(tmp_path):
    out = run("sap_evaluation.py", tmp_path=tmp_path)
    assert "with EOT" in out


def test_evaluate_saved_model(tmp_path):
    out = run("evaluate_saved_model.py", "--out", str(tmp_path),
              tmp_path=tmp_path)
    assert (tmp_path / "evaluation.json").exists(), out


def test_export_for_serving(tmp_path):
    out = run("export_for_serving.py", "--dir", str(tmp_path / "serving"),
              tmp_path=tmp_path)
    assert "fresh process: signature 'classify'" in out


@pytest.mark.parametrize("combine", ["none", "pgd"])
def test_semi_supervised_vat(tmp_path, combine):
    out = run("semi_supervised_vat.py", "--combine", combine,
              "--save", str(tmp_path / "m.keras"), tmp_path=tmp_path)
    assert "labels only: test accuracy" in out
    assert (tmp_path / "m.keras").exists()


def test_certify(tmp_path):
    out = run("certify.py", "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    assert "Certified accuracy (L2, sigma=0.25" in out
    for name in ("certified.json", "certified.png"):
        assert (tmp_path / "out" / name).exists(), name


def test_backdoor_defense(tmp_path):
    out = run("backdoor_defense.py", "--json", str(tmp_path / "r.json"),
              tmp_path=tmp_path)
    assert "clustering: flagged" in out and "STRIP" in out
    assert (tmp_path / "r.json").exists()


def test_generated_data_training(tmp_path):
    out = run("generated_data_training.py", "--out", str(tmp_path / "out"),
              tmp_path=tmp_path)
    assert "PGD-AT on real + generated" in out
    assert (tmp_path / "out" / "samples_epoch_4.png").exists()


def test_audit(tmp_path):
    out = run("audit.py", "--out", str(tmp_path / "audit"), tmp_path=tmp_path)
    assert "Audit of" in out
    page = (tmp_path / "audit" / "report.html").read_text()
    # The robustness curve, the example grid and the certified-accuracy
    # curve; the training data is clean, so the scan shows no suspicious
    # rows (a fourth image only when the verdict says poisoned).
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert report["poisoning"]["poisoned"] is False
    assert "no evidence" in page
    assert page.count("data:image/png;base64,") == 3
