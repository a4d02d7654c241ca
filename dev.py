#!/usr/bin/env python3
"""Two commands from a fresh clone, needing only Python 3.11 and pip.

    python3 dev.py demo    # the main job on the embedded offline data
    python3 dev.py test    # the test suite (what CI runs)

Each command first makes `.venv` and installs the project into it with its
test and example extras (again only when setup.py or pyproject.toml change).
Other subcommands: `bench NAME` runs benchmarks/NAME.py, `lint` runs ruff.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".installed"
TEST_COMMAND = ["-m", "pytest", "-m", "not slow", "tests"]


def _fingerprint():
    h = hashlib.sha256()
    for name in ("setup.py", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_env():
    """Creates .venv and installs the project when needed."""
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("dev.py: installing keras_adv and its dependencies into .venv "
          "(first run takes a few minutes)", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.check_call(pip + ["-q", "-e", ".[dev,examples]"], cwd=ROOT)
    STAMP.write_text(_fingerprint())


def run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    return subprocess.call([str(PY)] + args, cwd=ROOT, env=env)


def main(argv):
    if not argv or argv[0] not in ("demo", "test", "bench", "lint"):
        print(__doc__)
        return 2
    ensure_env()
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        return run(["examples/demo.py"] + rest)
    if cmd == "test":
        return run(TEST_COMMAND + rest)
    if cmd == "bench":
        if not rest:
            print("usage: python3 dev.py bench NAME [flags]")
            return 2
        return run(["-m", f"benchmarks.{rest[0]}"] + rest[1:])
    return run(["-m", "ruff", "check", "keras_adv", "tests", "examples",
                "benchmarks"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
