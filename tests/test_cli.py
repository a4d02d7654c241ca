"""The `keras-adv` dispatcher (`keras_adv/cli.py`): --help without
TensorFlow, the Python-module entry point (its usage error one line with
the command's prefix; every command's refusals are in
tests/commands/test_checks.py), the filter of TensorFlow's C++ log
lines, and the package's import hook that the lazy command line relies on
(keras_adv's classes found by a bare `keras.models.load_model`)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_adv import cli

ROOT = Path(__file__).resolve().parents[1]


def _python(code, tmp_path, **env):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)


@pytest.mark.parametrize("argv", [None, ["--help"], ["evaluate", "--help"],
                                  ["certify", "--help"],
                                  ["poison-scan", "--help"],
                                  ["audit", "--help"]])
def test_import_and_help_leave_tensorflow_out(tmp_path, argv):
    code = "import sys\nimport keras_adv.cli\n"
    if argv is not None:
        code += ("try:\n    keras_adv.cli.main(%r)\nexcept SystemExit as e:\n"
                 "    assert e.code == 0, e.code\n" % argv)
    code += "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    if argv is not None:
        assert "usage: keras-adv" in done.stdout
    assert done.stderr == ""


def test_package_with_tensorflow_loaded_registers_its_classes(tmp_path):
    # TensorFlow first: `import keras_adv` loads everything at once, so a bare
    # keras.models.load_model finds AdversarialModel. Without TensorFlow, the
    # first attribute access loads it.
    code = ("import sys\nimport tensorflow\nimport keras\nimport keras_adv\n"
            "print(keras.saving.get_registered_object("
            "'keras_adv>AdversarialModel').__name__)\n")
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "AdversarialModel"


@pytest.fixture(scope="module")
def saved_wrapper(tmp_path_factory):
    """An AdversarialModel saved as .keras (in this process)."""
    import keras

    from keras_adv import defenses, models

    path = tmp_path_factory.mktemp("saved") / "m.keras"
    m = models.AdversarialModel(
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]),
        defense=defenses.PGDTraining(eps=0.1, steps=1))
    m(np.zeros((1, 3), "float32"))
    m.save(path)
    return path


@pytest.mark.parametrize("imports", [
    "import keras_adv\nimport keras",
    "import keras_adv\nfrom tensorflow import keras as _\nimport keras",
    "import keras\nimport keras_adv",
])
def test_bare_load_model_in_any_import_order(tmp_path, saved_wrapper,
                                             imports):
    # keras_adv imported before, between or after Keras and TensorFlow, in a
    # fresh process; then Keras' own load_model.
    load = (imports + "\n"
            f"m = keras.models.load_model({str(saved_wrapper)!r})\n"
            "print(type(m).__name__)\n")
    done = _python(load, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "AdversarialModel"


def test_python_m_usage_error_exits_2(tmp_path):
    done = _python("import runpy, sys\nsys.argv = ['keras-adv', 'evaluate', "
                   "'m.keras', '--eps', '0.1', '--num-examples', '0']\n"
                   "runpy.run_module('keras_adv.cli', run_name='__main__')",
                   tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "keras-adv evaluate: error: --num-examples must be >= 1. Received: "
        "--num-examples 0")


def test_native_log_filter_keeps_python_lines():
    text = (
        "a line of the user's own\n"
        "WARNING: All log messages before absl::InitializeLog() is called "
        "are written to STDERR\n"
        "I0000 00:00:1795316182.500913    5005 port.cc:153] oneDNN custom "
        "operations are on.\n"
        "I0000 00:00:1795316258.01    5864 cpu_feature_guard.cc:210] This "
        "TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2 FMA, in other operations\n"
        "/x/y.py:3: UserWarning: kept\n"
        "  warnings.warn('kept')\n"
        "E0000 00:00:1795316191.082954    5005 cuda_platform.cc:52] failed "
        "call to cuInit\n"
        "2024-01-01 10:00:00.123456: I tensorflow/core/x.cc:1] old format\n")
    assert cli._without_native_logs(text) == (
        "a line of the user's own\n"
        "/x/y.py:3: UserWarning: kept\n  warnings.warn('kept')\n")
