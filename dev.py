#!/usr/bin/env python3
"""Two commands from a fresh clone, needing only Python 3.11 and pip.

    python3 dev.py demo    # the main job on the embedded offline data
    python3 dev.py test    # the test suite (what CI runs)

Each command first makes `.venv` and installs the project into it with its
test, example, tensorboard, serving and audit extras (again only when setup.py or pyproject.toml change).
Other subcommands: `bench NAME` runs benchmarks/NAME.py, `lint` runs ruff
and import-linter's layer contracts,
`compat` runs the compatibility smoke job (`ci/compat_smoke.py`) in a second
environment, `.venv-compat`, holding the oldest supported TensorFlow/Keras
pair (`OLDEST` below, the lower bounds of setup.py).
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
# Two worker processes, one test file each at a time (module fixtures are
# built once): 1.6x faster on 2 cores, since much of the suite is tracing,
# Python and subprocess start-up, which one process cannot spread.
TEST_COMMAND = ["-m", "pytest", "-m", "not slow", "-n", "2", "--dist",
                "loadfile", "tests"]
COMPAT_VENV = ROOT / ".venv-compat"
OLDEST = ["tensorflow==2.17.1", "keras==3.4.1"]  # setup.py's lower bounds
# Benchmarks that compare with a PyTorch library run in an environment of
# their own, so that the package never depends on torch: (folder,
# requirements, requirements installed without their dependencies).
# torchattacks' torchvision dependency is unused by the attacks it runs.
BENCH_ENVS = {
    "autoattack": (ROOT / ".venv-autoattack", (".", "torch==2.13.0"),
                   ("torchattacks==3.5.1",)),
}


def _fingerprint():
    h = hashlib.sha256()
    for name in ("setup.py", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _python(env_dir):
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_env(env_dir=VENV,
               requirements=(".[dev,examples,tensorboard,serving,audit]",),
               no_deps=()):
    """Creates `env_dir` and installs the project into it when needed
    (`no_deps`: more requirements, installed without their dependencies)."""
    py, stamp = _python(env_dir), env_dir / ".installed"
    wanted = _fingerprint() + " ".join(requirements + no_deps)
    if not py.exists():
        print(f"dev.py: creating {env_dir.name}", flush=True)
        venv.EnvBuilder(with_pip=True).create(env_dir)
    if stamp.exists() and stamp.read_text() == wanted:
        return py
    print(f"dev.py: installing keras_adv and its dependencies into "
          f"{env_dir.name} (first run takes a few minutes)", flush=True)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.check_call(pip + ["-q", "-e"] + list(requirements), cwd=ROOT)
    if no_deps:
        subprocess.check_call(pip + ["-q", "--no-deps"] + list(no_deps),
                              cwd=ROOT)
    stamp.write_text(wanted)
    return py


def run(args, py=PY):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    return subprocess.call([str(py)] + args, cwd=ROOT, env=env)


def main(argv):
    if not argv or argv[0] not in ("demo", "test", "bench", "lint", "compat"):
        print(__doc__)
        return 2
    if argv[0] == "compat":
        py = ensure_env(COMPAT_VENV, (".",) + tuple(OLDEST))
        return run(["ci/compat_smoke.py"] + argv[1:], py)
    cmd, rest = argv[0], argv[1:]
    if cmd == "bench" and rest and rest[0] in BENCH_ENVS:
        env_dir, requirements, no_deps = BENCH_ENVS[rest[0]]
        py = ensure_env(env_dir, requirements, no_deps)
        return run(["-m", f"benchmarks.{rest[0]}"] + rest[1:], py)
    ensure_env()
    if cmd == "demo":
        return run(["examples/demo.py"] + rest)
    if cmd == "test":
        return run(TEST_COMMAND + rest)
    if cmd == "bench":
        if not rest:
            print("usage: python3 dev.py bench NAME [flags]")
            return 2
        return run(["-m", f"benchmarks.{rest[0]}"] + rest[1:])
    status = run(["-m", "ruff", "check", "keras_adv", "tests", "examples",
                  "benchmarks"])
    # The layers of docs/architecture.md ([tool.importlinter] in
    # pyproject.toml).
    return status or run(["-c", "import sys; from importlinter.cli import "
                          "lint_imports_command as c; sys.exit(c())"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
