"""`poison-scan`: the parser needs no TensorFlow; run flags planted rows,
writes JSON and returns 2 with one line on bad input."""

import argparse
import json

import keras
import numpy as np
import pytest

from keras_adv.commands import poison_scan as _cli
from tests.poisoning.test_detectors import flat_model, planted


def parse(argv):
    parser = argparse.ArgumentParser(prog="keras-adv")
    _cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan")
    x, y, poison = planted(shift=10.0)
    model = flat_model()
    model.save(root / "m.keras")
    np.savez(root / "train.npz", x=x, y=y)
    return root, poison


def test_scan_writes_json(files, capsys):
    root, poison = files
    out = root / "flags.json"
    args = parse(["poison-scan", str(root / "m.keras"), "--data",
                  str(root / "train.npz"), "--expected-fraction", "0.1",
                  "--components", "5", "--json", str(out)])
    assert args.run(args) == 0
    result = json.loads(out.read_text())
    ac = result["methods"]["activation_clustering"]
    assert ac["flagged"] == [int(i) for i in poison]
    assert ac["per_class"]["0"] == ac["flagged"] and ac["per_class"]["1"] == []
    ss = result["methods"]["spectral_signature"]
    assert len(ss["flagged"]) == 17 + 15 + 15
    assert set(poison) <= set(ss["flagged"])
    printed = capsys.readouterr().out
    assert "activation_clustering: 15 flagged" in printed


def test_scan_one_method(files, capsys):
    root, _ = files
    args = parse(["poison-scan", str(root / "m.keras"), "--data",
                  str(root / "train.npz"), "--expected-fraction", "0.1",
                  "--method", "spectral", "--layer", "flat"])
    assert _cli.run(args) == 0
    assert "activation_clustering" not in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (["--expected-fraction", "1.5"], "--expected-fraction must be in [0, 1]"),
    (["--data", "missing.npz"], "--data must be an existing .npz file"),
    (["--layer", "nope"], "Received: layer='nope'"),
    (["--json", "/no/such/dir/f.json"], "--json must be a file"),
    (["MODEL=bad.txt"], "MODEL must be"),
])
def test_bad_input_one_line(files, capsys, change, message):
    root, _ = files
    argv = {"model": str(root / "m.keras"), "--data": str(root / "train.npz"),
            "--expected-fraction": "0.1"}
    if change[0] == "MODEL=bad.txt":
        (root / "bad.txt").write_text("x")
        argv["model"] = str(root / "bad.txt")
    else:
        argv[change[0]] = change[1]
    flat = ["poison-scan", argv.pop("model")]
    for k, v in argv.items():
        flat += [k, v]
    assert _cli.run(parse(flat)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_npz(files, capsys):
    root, _ = files
    np.savez(root / "short.npz", x=np.zeros((3, 4, 5, 1)), y=np.zeros(2))
    np.savez(root / "nolabels.npz", x=np.zeros((3, 4, 5, 1)))
    for name, message in (("short.npz", "one label per example"),
                          ("nolabels.npz", "arrays 'x' and 'y'")):
        args = parse(["poison-scan", str(root / "m.keras"), "--data",
                      str(root / name), "--expected-fraction", "0.1"])
        assert _cli.run(args) == 2
        assert message in capsys.readouterr().err


def test_unsafe_model_refused(tmp_path, capsys):
    inp = keras.Input((4, 5, 1))
    out = keras.layers.Lambda(lambda t: keras.ops.reshape(t, (-1, 20)))(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(out))
    model.save(tmp_path / "lambda.keras")
    x, y, _ = planted()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    args = parse(["poison-scan", str(tmp_path / "lambda.keras"), "--data",
                  str(tmp_path / "d.npz"), "--expected-fraction", "0.1"])
    assert _cli.run(args) == 2
    assert "MODEL could not be loaded" in capsys.readouterr().err
