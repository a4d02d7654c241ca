"""Distributed evaluation: consecutive chunks spread over the replicas of a
`tf.distribute.Strategy`, one chunk per replica and step.

Only the generic `Strategy` API is used (`num_replicas_in_sync`,
`experimental_distribute_values_from_function`, `run`,
`experimental_local_results`). A chunk's content and seeds depend only on
its index, so the results do not depend on where it ran.
"""

import tensorflow as tf


def resolve(strategy):
    """The strategy to spread chunks over: `strategy`, else the one whose
    `scope()` is active, else None (one device). A strategy with a single
    replica also gives None.

    Raises:
        ValueError: naming `strategy`, for a value that is not a
            `tf.distribute.Strategy`, or one with replicas on other workers
            (`MultiWorkerMirroredStrategy` with several workers).

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
    local = len(strategy.extended.worker_devices)
    if local != strategy.num_replicas_in_sync:
        # Results of other workers' replicas would need an all-gather.
        raise ValueError(
            "strategy must keep its replicas on this worker (evaluation "
            "gathers results locally; multi-worker strategies are not "
            f"supported yet). Received: strategy={strategy!r} with "
            f"{strategy.num_replicas_in_sync} replicas, {local} local")
    return strategy


def run_group(strategy, fn, items):
    """Runs `fn(item)` for each of up to `num_replicas_in_sync` items, item
    `k` on replica `k`, with `strategy.run`. Returns the results in order
    (a replica without an item does nothing).

    Example: `results = run_group(strategy, work, [chunk0, chunk1])`.
    """
    results = {}

    def replica_id(context):
        return tf.constant(context.replica_id_in_sync_group, tf.int32)

    ids = strategy.experimental_distribute_values_from_function(replica_id)

    def step(rid):
        k = int(rid.numpy())
        if k < len(items):
            results[k] = fn(items[k])
        return rid

    strategy.experimental_local_results(strategy.run(step, (ids,)))
    return [results[k] for k in range(len(items))]
