"""Every Python block of README.md runs, in order, as written.

The blocks form one session: each uses what the blocks before it defined.
The test runs them in a fresh process on tiny settings by substituting the
size constants the blocks define (epochs, images, noise samples), nothing
else.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The constants the README defines, and the tiny values the test gives them.
TINY = {
    "EPOCHS, N = 10, 4000": "EPOCHS, N = 1, 200",
    "N_TEST = 1000": "N_TEST = 8",
    "N_CERT = 100_000": "N_CERT = 200",
    "N_GEN = 20000": "N_GEN = 64",
}


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_defines_the_constants_the_test_shrinks():
    code = "\n".join(readme_blocks())
    assert len(readme_blocks()) >= 10
    for line in TINY:
        assert code.count(line) == 1, line


def test_every_python_block_runs_in_order(tmp_path):
    code = "\n".join(readme_blocks())
    for line, tiny in TINY.items():
        code = code.replace(line, tiny)
    script = tmp_path / "readme.py"
    script.write_text(code + "\nprint('README OK')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, timeout=900, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("README OK")
    for name in ("robust.keras", "report.json", "curve.png", "run.ckpt",
                 "certified.json", "certified.png"):
        assert (tmp_path / name).exists(), name
