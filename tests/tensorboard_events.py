"""The scalars TensorBoard wrote, read back for the tests."""

import tensorflow as tf


def tensorboard_scalars(log_dir, part="value"):
    """`{tag: [value, ...]}` (`part="step"`: the steps) of the scalars in the
    TensorBoard event files of `log_dir`, in file and write order."""
    found = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if part == "step":
                    item = event.step
                elif value.HasField("tensor"):
                    item = float(tf.make_ndarray(value.tensor))
                else:
                    item = value.simple_value
                found.setdefault(value.tag, []).append(item)
    return found
