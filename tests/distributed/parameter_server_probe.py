"""Does Keras 3 `fit` run under `tf.distribute.ParameterServerStrategy`?

Starts an in-process cluster (one worker, one parameter server, both
`tf.distribute.Server`s on free localhost ports), then calls `fit` on a
plain Keras model and on `AdversarialModel` created in the strategy's
scope. Prints one JSON line: `{"plain": outcome, "adversarial": outcome}`,
each `"ok"` or `"<ErrorType>: <message>"`. Run in a fresh process: the
strategy connects the whole process to the cluster.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from tests.distributed.launcher import free_ports  # noqa: E402


def strategy():
    """A ParameterServerStrategy over one local worker and one local ps."""
    worker, ps = free_ports(2)
    cluster = tf.train.ClusterSpec({"worker": [f"localhost:{worker}"],
                                    "ps": [f"localhost:{ps}"]})
    for job in ("worker", "ps"):
        tf.distribute.Server(cluster, job_name=job, task_index=0,
                             protocol="grpc", start=True)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster, rpc_layer="grpc")
    return tf.distribute.ParameterServerStrategy(resolver)


def outcome(kind, ps_strategy):
    (x, y), _ = keras_adv.datasets.load("mnist5k")
    ds = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(32)
    with ps_strategy.scope():
        model = keras_adv.models.small_cnn(seed=0, width=4)
        if kind == "adversarial":
            model = keras_adv.models.AdversarialModel(
                model, defense=keras_adv.defenses.PGDTraining(
                    eps=0.1, steps=3, random_start=False))
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    try:
        model.fit(ds.repeat(), epochs=1, steps_per_epoch=4, verbose=0,
                  shuffle=False)
    except Exception as e:  # the outcome is the finding
        return f"{type(e).__name__}: {e}"
    return "ok"


if __name__ == "__main__":
    ps_strategy = strategy()
    print(json.dumps({kind: outcome(kind, ps_strategy)
                      for kind in ("plain", "adversarial")}))
