"""`keras-adv certify` (the certification command module)."""

import argparse
import json

import numpy as np
import pytest

from keras_adv import models
from keras_adv.commands import certify as _cli


def _parser():
    parser = argparse.ArgumentParser(prog="keras-adv")
    _cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("certify") / "cnn.keras"
    models.small_cnn(seed=0).save(str(path))
    return path


def test_certify_writes_table_json_and_plot(saved, tmp_path, capsys):
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    args = _parser().parse_args([
        "certify", str(saved), "--sigma", "0.25", "--n", "200", "--n0", "20",
        "--num-examples", "6", "--radii", "0,0.5", "--json", str(out),
        "--plot", str(png)])
    assert args.run(args) == 0
    text = capsys.readouterr().out
    assert "Certified accuracy (L2, sigma=0.25" in text and "6 examples" in text
    data = json.loads(out.read_text())
    assert data["n"] == 200 and data["num_examples"] == 6
    assert data["radii"] == [0.0, 0.5] and len(data["certified_accuracy"]) == 2
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_npz_data(saved, tmp_path, mnist5k, capsys):
    _, (x, y) = mnist5k
    path = tmp_path / "d.npz"
    np.savez(path, x=x[:4], y=y[:4])
    args = _parser().parse_args(["certify", str(saved), "--data", str(path),
                                 "--sigma", "0.5", "--n", "50", "--n0", "10"])
    assert _cli.run(args) == 0
    assert "4 examples" in capsys.readouterr().out


@pytest.mark.parametrize("extra,needle", [
    (["--sigma", "0"], "--sigma must be"),
    (["--sigma", "nan"], "--sigma must be"),
    (["--sigma", "0.25", "--alpha", "1"], "--alpha must be"),
    (["--sigma", "0.25", "--n", "0"], "--n must be"),
    (["--sigma", "0.25", "--n0", "-1"], "--n0 must be"),
    (["--sigma", "0.25", "--num-examples", "0"], "--num-examples must be"),
    (["--sigma", "0.25", "--batch-size", "0"], "--batch-size must be"),
    (["--sigma", "0.25", "--radii", "0,-1"], "--radii must be"),
    (["--sigma", "0.25", "--radii", "a"], "--radii must be"),
    (["--sigma", "0.25", "--json", "/nonexistent/x.json"], "--json must be"),
    (["--sigma", "0.25", "--data", "missing.npz"], "--data must be"),
])
def test_bad_input_one_line_exit_2(saved, capsys, extra, needle):
    args = _parser().parse_args(["certify", str(saved), *extra])
    assert _cli.run(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_bad_model_path(tmp_path, capsys):
    args = _parser().parse_args(["certify", str(tmp_path / "m.h5"),
                                 "--sigma", "0.25"])
    assert _cli.run(args) == 2
    assert "MODEL must be an existing .keras file" in capsys.readouterr().err
