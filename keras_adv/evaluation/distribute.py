"""Distributed evaluation: consecutive chunks spread over the replicas of a
`tf.distribute.Strategy`, one chunk per replica and step.

Only the generic `Strategy` API is used (`num_replicas_in_sync`,
`experimental_distribute_values_from_function`, `run`,
`experimental_local_results`, and `ReplicaContext.all_reduce` to bring
the results of other workers' replicas under a multi-worker strategy). A
chunk's content and seeds depend only on its index, so the results do not
depend on where it ran. Under `MultiWorkerMirroredStrategy` every worker
runs the same call on the same data and returns the whole report.
"""

import numpy as np
import tensorflow as tf


def resolve(strategy):
    """The strategy to spread chunks over: `strategy`, else the one whose
    `scope()` is active, else None (one device). A strategy with a single
    replica also gives None.

    Raises:
        ValueError: naming `strategy`, for a value that is not a
            `tf.distribute.Strategy`.

    Example: `strategy = resolve(None)`.
    """
    if strategy is None:
        if not tf.distribute.has_strategy():
            return None
        strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(
            "strategy must be a tf.distribute.Strategy or None. Received: "
            f"strategy={strategy!r}")
    if strategy.num_replicas_in_sync == 1:
        return None
    return strategy


def _local(strategy):
    """Whether every replica of `strategy` is on this worker."""
    return len(strategy.extended.worker_devices) == \
        strategy.num_replicas_in_sync


def run_group(strategy, fn, items, encode=None, decode=None):
    """Runs `fn(item)` for each of up to `num_replicas_in_sync` items, item
    `k` on replica `k`, with `strategy.run`. Returns the results in order
    (a replica without an item does nothing).

    With replicas on other workers (`MultiWorkerMirroredStrategy`), every
    worker calls this with the same items; each runs its own replicas'
    items, and the results travel between workers as `encode(result)`
    bytes, decoded with `decode`, through two all-reduces (the lengths,
    then the bytes).

    Example: `results = run_group(strategy, work, [chunk0, chunk1])`.
    """
    results = {}
    local = _local(strategy)
    if not local and (encode is None or decode is None):
        raise ValueError("run_group needs encode and decode for a strategy "
                         f"with replicas on other workers. Received: "
                         f"strategy={strategy!r}")

    def replica_id(context):
        return tf.constant(context.replica_id_in_sync_group, tf.int32)

    ids = strategy.experimental_distribute_values_from_function(replica_id)

    def step(rid):
        k = int(rid.numpy())
        result = fn(items[k]) if k < len(items) else None
        if local:
            if result is not None:
                results[k] = result
            return rid
        payload = b"" if result is None else encode(result)
        for r, data in enumerate(_all_bytes(strategy, k, payload)):
            if r < len(items):
                results[r] = decode(data)
        return rid

    strategy.experimental_local_results(strategy.run(step, (ids,)))
    return [results[k] for k in range(len(items))]


def _all_bytes(strategy, k, payload):
    """Every replica's `payload` (bytes), in replica order, from inside
    replica `k`'s step: an all-reduce (sum) of the lengths, then of the
    bytes, each replica filling only its own row."""
    context = tf.distribute.get_replica_context()
    count = strategy.num_replicas_in_sync
    lengths = np.zeros(count, np.int32)
    lengths[k] = len(payload)
    lengths = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                 tf.constant(lengths)).numpy()
    rows = np.zeros((count, max(1, int(lengths.max()))), np.int32)
    rows[k, :len(payload)] = np.frombuffer(payload, np.uint8)
    rows = context.all_reduce(tf.distribute.ReduceOp.SUM,
                              tf.constant(rows)).numpy()
    return [rows[r, :lengths[r]].astype(np.uint8).tobytes()
            for r in range(count)]
