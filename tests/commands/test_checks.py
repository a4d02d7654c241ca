"""The check step of every `keras-adv` command, before TensorFlow, across
the commands: no output onto an input, finite numbers, seeds every draw
accepts, attack lists without repeats, inputs that are what they claim (a
Keras archive, an .npz with x and y, an earlier audit's report), training
data that is not a test split; each refusal one line, in one process. The
helpers here (`files`, `check_argv`) serve tests/test_bad_input.py too.
(The checks themselves: test_common.py and test_paths.py.)"""

import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_adv import cli

ROOT = Path(__file__).resolve().parents[2]


def fake_keras_archive(path):
    """A zip holding `config.json`: passes the check step's archive test
    (it is never loaded in these tests)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("metadata.json", "{}")
    return path


@functools.cache
def files():
    """Paths for the check-step cases, made once: a fake model, data, and
    files that only look like inputs."""
    root = Path(tempfile.mkdtemp(prefix="keras-adv-checks-"))
    fake_keras_archive(root / "m.keras")
    np.savez(root / "d.npz", x=np.zeros((4, 6), "float32"), y=np.arange(4))
    np.savez(root / "nokeys.npz", a=np.zeros(3))
    with zipfile.ZipFile(root / "noconfig.keras", "w") as archive:
        archive.writestr("model.weights.h5", "")
    (root / "empty.keras").write_bytes(b"")
    (root / "text.npz").write_text("x,y\n1,2\n")
    (root / "list.json").write_text("[1, 2]")
    (root / "broken.json").write_text("{not json")
    (root / "other.json").write_text('{"eps": [0.1]}')
    (root / "prev").mkdir()
    (root / "prev" / "report.json").write_text(json.dumps(
        {"summary": {}, "evasion": {}, "examples": []}))
    (root / "out").mkdir()
    (root / "sm").mkdir()  # a SavedModel directory, to the check step
    (root / "sm" / "saved_model.pb").write_bytes(b"")
    return {"r": str(root), "m": str(root / "m.keras"),
            "d": str(root / "d.npz")}


def check_argv(*argv):
    """Parses `argv` (`{r}`, `{m}`, `{d}` replaced by `files()`) and runs
    its command's `check`, as `cli.main` does before TensorFlow."""
    argv = [a.format(**files()) for a in argv]
    args = cli.build_parser().parse_args(argv)
    __import__(cli.COMMANDS[args.command], fromlist=["check"]).check(args)
    return args


def assert_equal(got, want):
    """For the RESULTS of tests/test_bad_input.py."""
    assert got == want, (got, want)


SEED = "--seed must be an integer in [0, 4294967295]. Received: --seed "
ARCHIVE = ("MODEL must be a .keras file or a SavedModel directory. "
           "Received: {r}/")
NPZ = "--data must be an .npz file with arrays x and y. Received: --data {r}/"
COMPARE = "--compare must be an earlier audit's report.json. Received: "
REFUSALS = [
    # No command writes where it reads.
    (["evaluate", "{m}", "--eps", "0.1", "--json", "{m}"],
     "--json must not be a file the command reads or writes for another "
     "option. Received: --json {m} (it is MODEL {m})"),
    (["evaluate", "{m}", "--eps", "0.1", "--data", "{d}", "--plot", "{d}"],
     "--plot must not be a file the command reads or writes for another "
     "option. Received: --plot {d} (it is --data {d})"),
    (["evaluate", "{m}", "--eps", "0.1", "--json", "{r}/a.json", "--plot",
      "{r}/a.json"],
     "--plot must not be a file the command reads or writes for another "
     "option. Received: --plot {r}/a.json (it is --json {r}/a.json)"),
    # The model reached through '..': the same file, another spelling.
    (["evaluate", "{m}", "--eps", "0.1", "--checkpoint",
      "{r}/out/../m.keras"],
     "--checkpoint must not be a file the command reads or writes for "
     "another option. Received: --checkpoint {r}/out/../m.keras (it is "
     "MODEL {m})"),
    (["certify", "{m}", "--sigma", "0.25", "--data", "{d}", "--json", "{d}"],
     "--json must not be a file the command reads or writes for another "
     "option. Received: --json {d} (it is --data {d})"),
    (["poison-scan", "{m}", "--data", "{d}", "--expected-fraction", "0.1",
      "--json", "{m}"],
     "--json must not be a file the command reads or writes for another "
     "option. Received: --json {m} (it is MODEL {m})"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}", "--overwrite"],
     "--out must not hold a file the command reads. Received: --out {r} "
     "(it holds MODEL {m})"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/prev", "--compare",
      "{r}/prev/report.json"],
     "--out must not hold a file the command reads. Received: --out {r}/prev "
     "(it holds --compare {r}/prev/report.json)"),
    (["audit", "{r}/sm", "--eps", "0.1", "--out", "{r}/sm/audit"],
     "--out must not lie inside a file the command reads. Received: --out "
     "{r}/sm/audit (inside MODEL {r}/sm)"),
    # Finite numbers, for every float flag.
    (["certify", "{m}", "--sigma", "inf"],
     "--sigma must be a finite number. Received: --sigma inf"),
    (["certify", "{m}", "--sigma", "0.25", "--alpha", "nan"],
     "--alpha must be a finite number. Received: --alpha nan"),
    (["poison-scan", "{m}", "--data", "{d}", "--expected-fraction", "0.1",
      "--remove-factor", "inf"],
     "--remove-factor must be a finite number. Received: --remove-factor inf"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--sigma", "inf"],
     "--sigma must be a finite number. Received: --sigma inf"),
    (["evaluate", "{m}", "--eps", "0.1,nan"],
     "--eps must be comma-separated finite numbers >= 0. Received: --eps "
     "0.1,nan"),
    # Seeds, the same message everywhere.
    (["evaluate", "{m}", "--eps", "0.1", "--seed", "-1"], SEED + "-1"),
    (["certify", "{m}", "--sigma", "0.25", "--seed", "-1"], SEED + "-1"),
    (["poison-scan", "{m}", "--data", "{d}", "--expected-fraction", "0.1",
      "--seed", "-1"], SEED + "-1"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--seed", "-1"],
     SEED + "-1"),
    (["evaluate", "{m}", "--eps", "0.1", "--seed", "99999999999999999999"],
     SEED + "99999999999999999999"),
    (["certify", "{m}", "--sigma", "0.25", "--seed", "4294967296"],
     SEED + "4294967296"),
    # A suite and its own stages.
    (["evaluate", "{m}", "--eps", "0.1", "--attacks", "standard,apgd-ce"],
     "--attacks must not name an attack of 'standard' (apgd-ce,apgd-t,"
     "fab-t,square) next to it. Received: --attacks standard,apgd-ce "
     "(apgd-ce is in standard)"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--attacks",
      "square,standard"],
     "--attacks must not name an attack of 'standard' (apgd-ce,apgd-t,"
     "fab-t,square) next to it. Received: --attacks square,standard "
     "(square is in standard)"),
    # Inputs that are not what they claim.
    (["evaluate", "{r}/none.keras", "--eps", "0.1"],
     ARCHIVE + "none.keras (model not found)"),
    (["evaluate", "{r}/noconfig.keras", "--eps", "0.1"],
     ARCHIVE + "noconfig.keras (not a .keras archive: no config.json "
     "inside)"),
    (["certify", "{r}/empty.keras", "--sigma", "0.25"],
     ARCHIVE + "empty.keras (not a .keras archive: not a zip file)"),
    (["evaluate", "{m}", "--eps", "0.1", "--data", "{r}/nokeys.npz"],
     NPZ + "nokeys.npz holding ['a']"),
    (["evaluate", "{m}", "--eps", "0.1", "--data", "{r}/text.npz"],
     NPZ + "text.npz (not an .npz archive)"),
    (["evaluate", "{m}", "--eps", "0.1", "--data", "{r}/none.npz"],
     "--data must be mnist5k, mnist5k:train, tfds:NAME[:SPLIT] or an "
     "existing .npz file. Received: --data {r}/none.npz (data file not "
     "found)"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--compare",
      "{r}/other.json"],
     COMPARE + "--compare {r}/other.json (a JSON object without 'summary', "
     "'evasion', 'examples')"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--compare",
      "{r}/list.json"],
     COMPARE + "--compare {r}/list.json (a JSON list, not an object)"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--compare",
      "{r}/none.json"],
     COMPARE + "--compare {r}/none.json (file not found)"),
    # Training data that names a test split.
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--train-data",
      "mnist5k"],
     "--train-data must name training data (mnist5k:train, an .npz file or "
     "tfds:NAME:SPLIT). Received: --train-data mnist5k (the test split "
     "mnist5k:test)"),
    (["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--train-data",
      "tfds:mnist"],
     "--train-data must name training data (mnist5k:train, an .npz file or "
     "tfds:NAME:SPLIT). Received: --train-data tfds:mnist (the test split "
     "tfds:mnist:test)"),
    # A bad value of each command's own flags.
    (["evaluate", "{m}", "--eps", "abc"],
     "--eps must be comma-separated finite numbers >= 0. Received: --eps "
     "abc"),
    (["evaluate", "{m}", "--eps", "0.1", "--attacks", "pgd,pgd"],
     "--attacks must be 'standard' or distinct names from apgd-ce,apgd-dlr,"
     "apgd-t,deepfool,fab,fab-t,fgsm,pgd,square. Received: --attacks "
     "pgd,pgd (repeated)"),
    (["certify", "{m}", "--sigma", "0"],
     "--sigma must be a finite number > 0. Received: --sigma 0.0"),
    (["certify", "{m}", "--sigma", "0.25", "--n", "0"],
     "--n must be >= 1. Received: --n 0"),
    (["certify", "{m}", "--sigma", "0.25", "--radii", "0,-1"],
     "--radii must be comma-separated finite numbers >= 0. Received: "
     "--radii 0,-1"),
    (["poison-scan", "{m}", "--data", "mnist5k:train",
      "--expected-fraction", "2"],
     "--expected-fraction must be in [0, 1]. Received: --expected-fraction "
     "2.0"),
    (["poison-scan", "{m}", "--data", "none.npz", "--expected-fraction",
      "0.1"],
     "--data must be mnist5k, mnist5k:train, tfds:NAME[:SPLIT] or an "
     "existing .npz file. Received: --data none.npz (data file not found)"),
    (["certify", "{r}/out", "--sigma", "0.25"],
     ARCHIVE + "out (a directory without saved_model.pb)"),
    (["audit", "{m}", "--eps", "0.1", "--sigma", "-1", "--out", "{r}/out"],
     "--sigma must be a finite number > 0. Received: --sigma -1.0"),
    (["evaluate", "{m}", "--eps", "0.1", "--num-examples", "0"],
     "--num-examples must be >= 1. Received: --num-examples 0"),
]

def test_every_refusal_is_one_line_fast_and_before_tensorflow(tmp_path):
    # One fresh process runs every case through cli.main, as the
    # keras-adv script does: exit 2, the one line, TensorFlow never
    # imported, and each refusal (the first with the import of the command
    # line) in well under 2 s.
    cases = [[a.format(**files()) for a in argv] for argv, _ in REFUSALS]
    code = (
        "import io, json, sys, time\nt = time.perf_counter()\n"
        "import keras_adv.cli\nout = []\n"
        f"for argv in {cases!r}:\n"
        "    err, sys.stderr = sys.stderr, io.StringIO()\n"
        "    try:\n        keras_adv.cli.main(argv)\n        status = 0\n"
        "    except SystemExit as e:\n        status = e.code\n"
        "    err, sys.stderr = sys.stderr.getvalue(), err\n"
        "    out.append([status, err, time.perf_counter() - t])\n"
        "    t = time.perf_counter()\n"
        "print(json.dumps([out, 'tensorflow' in sys.modules]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    results, tensorflow = json.loads(done.stdout.strip().splitlines()[-1])
    assert tensorflow is False
    for (argv, line), (status, err, seconds) in zip(REFUSALS, results):
        expected = f"keras-adv {argv[0]}: error: {line.format(**files())}\n"
        assert (status, err) == (2, expected)
        assert seconds < 2.0, (argv, seconds)


@pytest.mark.parametrize("argv", [
    ["evaluate", "{m}", "--eps", "0.1", "--attacks", "standard,pgd",
     "--data", "{d}", "--json", "{r}/out/r.json", "--seed", "4294967295"],
    ["certify", "{m}", "--sigma", "0.25", "--data", "mnist5k:test"],
    ["audit", "{m}", "--eps", "0.1", "--out", "{r}/out", "--compare",
     "{r}/prev/report.json", "--train-data", "mnist5k:train"],
    ["poison-scan", "{m}", "--data", "tfds:mnist:train", "--method",
     "spectral", "--expected-fraction", "0.1"],
])
def test_good_flags_pass_the_check(argv):
    check_argv(*argv)
