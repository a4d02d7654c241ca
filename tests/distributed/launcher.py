"""Starts a `MultiWorkerMirroredStrategy` cluster of local processes.

`run_workers(script, args, num_workers=2, timeout=...)` picks free ports,
gives each worker its `TF_CONFIG` and waits for all of them within one time
bound; every process still alive at the end (timeout, failure, interrupt)
is killed and reaped, so no worker outlives the call.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_ports(n):
    """`n` distinct ports that were free a moment ago (bound to port 0).

    Example: `p0, p1 = free_ports(2)`.
    """
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index):
    """The `TF_CONFIG` of worker `index` in a localhost cluster.

    Example: `tf_config([2222, 2223], 0)["task"]`.
    """
    workers = [f"localhost:{p}" for p in ports]
    return {"cluster": {"worker": workers},
            "task": {"type": "worker", "index": index}}


def run_workers(script, args=(), num_workers=2, timeout=300.0, log_dir=None):
    """Runs `script` once per worker; returns `[(returncode, log text)]`.

    Each worker runs `sys.executable script *args` on the CPU only
    (`CUDA_VISIBLE_DEVICES=""`) with its own `TF_CONFIG`; its stdout and
    stderr go to `log_dir/worker_<i>.log`. A worker still running after
    `timeout` seconds (counted from the launch) is killed and reported with
    return code `None`.

    Example: `run_workers("worker.py", [str(tmp_path)], log_dir=tmp_path)`.
    """
    ports = free_ports(num_workers)
    log_dir = Path(log_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    procs, logs = [], []
    try:
        for i in range(num_workers):
            log = open(log_dir / f"worker_{i}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, str(script), *map(str, args)], cwd=ROOT,
                env=dict(env, TF_CONFIG=json.dumps(tf_config(ports, i))),
                stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for log in logs:
            log.close()
    return [(code, (log_dir / f"worker_{i}.log").read_text())
            for i, code in enumerate(codes)]
