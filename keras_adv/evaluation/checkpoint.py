"""Resumable evaluation: the progress of `evaluate_robustness` in one file.

The file is a NumPy `.npz` archive read with `allow_pickle=False` (loading
it never runs code): a JSON text (`meta`: the argument fingerprint, chunks
done, the seed, the `Tally`, and once finished the report), the per-example
outcome flags (`flags`: one row per example done, see `run.ChunkResult`)
and the labels and clean outcomes of the sample kept for the checks
(`sample_y`, `sample_correct`). The sample's inputs are not stored: a
resumed run reads them again from the head of the data, whose hash is part
of the fingerprint. It is written after every chunk to a temporary file in
the same folder, then moved over the old one with `os.replace` (atomic: a
process killed at any point leaves the previous or the new version).
"""

import hashlib
import json
import os

import numpy as np

FORMAT = 1


def check_path(checkpoint):
    """`checkpoint` as a path, or None; its folder must exist.

    Raises:
        ValueError: naming `checkpoint`, for a value that is not a file
            path in an existing folder.

    Example: `path = check_path("run.ckpt")`.
    """
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)) or os.path.isdir(
        checkpoint
    ) or not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        raise ValueError(
            "checkpoint must be a file path in an existing folder, or None. "
            f"Received: checkpoint={checkpoint!r}")
    return os.fspath(checkpoint)


def fingerprint(plan, num_examples, head):
    """The arguments a checkpoint must agree on, as JSON-friendly values:
    eps, norm, attacks with options, batch_size, seed, num_examples, clip,
    eot_samples, from_logits, checks, metrics, a hash of the model's weights
    and one of the head of the data (`head`: the `(x, y)` chunks holding the
    sample).

    Example: `fp = fingerprint(plan, None, [(x[:500], y[:500])])`.
    """
    common = plan.common
    return {
        "eps": [float(e) for e in plan.eps],
        "norm": plan.norm,
        "attacks": json.dumps([[a.name, options] for a, options in plan.attacks],
                              sort_keys=True, default=repr),
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "num_examples": num_examples,
        "clip": None if common["clip"] is None else list(common["clip"]),
        "eot_samples": plan.eot_samples,
        "from_logits": common["from_logits"],
        "checks": plan.checks,
        "metrics": plan.metrics,
        "model": _hash(np.asarray(w) for w in _weights(plan.model)),
        "data": _hash(np.asarray(a) for chunk in head for a in chunk
                      if a is not None),
    }


def _weights(model):
    return [w.numpy() if hasattr(w, "numpy") else w
            for w in getattr(model, "weights", [])]


def _hash(arrays):
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def compare(path, stored, current):
    """Raises `ValueError` naming `checkpoint` and the first field where the
    stored fingerprint differs from the current one (`seed` is not compared
    when the caller passed `seed=None`: the stored one is reused).

    Example: `compare("run.ckpt", state["fingerprint"], fp)`.
    """
    keys = list(current) + [k for k in stored if k not in current]
    for key in keys:  # the arguments first, then the weights and the data
        if key == "seed" and current.get(key) is None:
            continue
        if stored.get(key) != current.get(key):
            shown = {k: (v if k not in ("model", "data") else v[:12])
                     for k, v in ((0, stored.get(key)), (1, current.get(key)))}
            raise ValueError(
                f"checkpoint must come from a run with the same arguments, "
                f"model and data; {key} differs (stored {shown[0]!r}, now "
                f"{shown[1]!r}). Delete the file or choose another path. "
                f"Received: checkpoint={path!r}")


def load(path):
    """The saved state at `path` as `(meta, flags, sample)`, or None when
    there is no file. `sample` is `(y, correct)`.

    Raises:
        ValueError: naming `checkpoint`, for a file that is not a readable
            checkpoint.

    Example: `state = load("run.ckpt")`.
    """
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            flags = data["flags"]
            sample = (data["sample_y"], data["sample_correct"])
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            "checkpoint must be a file written by evaluate_robustness. "
            f"Received: checkpoint={path!r} (cannot read it: {error})"
        ) from None
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"checkpoint must be in format {FORMAT}. Received: "
            f"checkpoint={path!r} (format {meta.get('format')!r})")
    return meta, flags, sample


def save(path, meta, flags, sample):
    """Writes the state atomically (temporary file, then `os.replace`).

    Example: `save("run.ckpt", meta, flags, sample)`.
    """
    arrays = {"meta": np.array(json.dumps(dict(meta, format=FORMAT))),
              "flags": np.asarray(flags, bool), "sample_y": sample[0],
              "sample_correct": sample[1]}
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
