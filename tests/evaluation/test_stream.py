"""The data side (`evaluation/stream.py`): a tf.data.Dataset gives the
report of the same arrays, a dataset of inputs alone uses the predictions,
`num_examples` caps arrays and streams alike, and bad stream arguments are
refused by name. (The checkpoint's tests are in test_checkpoint.py, the
strategy's in test_distribute.py.)"""

import pytest
import tensorflow as tf

from keras_adv.evaluation import evaluate_robustness
from tests.evaluation.conftest import SUITE, plain


def test_dataset_gives_the_array_report(trained_cnn, test_set):
    x, y = test_set  # the 1000 mnist5k test images
    kwargs = dict(eps=[0.05, 0.1], attacks=SUITE, batch_size=300, seed=0,
                  metrics=False)
    arrays = evaluate_robustness(trained_cnn, x, y, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    streamed = evaluate_robustness(trained_cnn, ds, **kwargs)
    assert plain(streamed) == plain(arrays)
    assert arrays.num_examples == 1000
    # Real numbers: a trained CNN, accuracy falling with eps.
    assert arrays.clean_accuracy > 0.85
    clean, r05, r10 = (arrays.clean_accuracy, *arrays.robust_accuracy)
    assert clean > r05 > r10
    assert arrays.attack_accuracy["pgd"] == arrays.robust_accuracy
    assert all(f >= p for f, p in zip(arrays.attack_accuracy["fgsm"],
                                      arrays.attack_accuracy["pgd"]))
    assert arrays.warnings == []


def test_dataset_of_inputs_alone_uses_predictions(trained_cnn, test_set):
    x, _ = test_set
    kwargs = dict(eps=0.1, attacks="fgsm", batch_size=64, seed=0,
                  checks=False, metrics=False)
    arrays = evaluate_robustness(trained_cnn, x[:200], None, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices(x[:200]).batch(50)
    streamed = evaluate_robustness(trained_cnn, ds, **kwargs)
    assert plain(streamed) == plain(arrays)
    assert streamed.clean_accuracy == 1.0 and streamed.robust_accuracy < 1.0


def test_num_examples_caps_arrays_and_streams(trained_cnn, test_set):
    x, y = test_set
    kwargs = dict(eps=0.1, attacks="fgsm", batch_size=64, seed=0,
                  checks=False, metrics=False)
    head = evaluate_robustness(trained_cnn, x[:150], y[:150], **kwargs)
    capped = evaluate_robustness(trained_cnn, x, y, num_examples=150, **kwargs)
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(40).repeat()
    streamed = evaluate_robustness(trained_cnn, endless, num_examples=150,
                                   **kwargs)
    assert head.num_examples == capped.num_examples == 150
    assert plain(capped) == plain(head) == plain(streamed)


@pytest.mark.parametrize("case,match", [
    ("infinite", r"num_examples must cap a dataset whose length is not "
                 r"known .* Received: data with infinite cardinality and "
                 r"num_examples=None"),
    ("y_with_dataset", r"y must be None when the data is a tf\.data\.Dataset"
                       r".*Received: y="),
    ("num_examples", r"Received: num_examples=0"),
    ("checkpoint", r"Received: checkpoint="),
    ("elements", r"data must be a dataset of x batches"),
    ("strategy", r"strategy must be a tf\.distribute\.Strategy or None\. "
                 r"Received: strategy='mirrored'"),
])
def test_bad_stream_arguments(trained_cnn, test_set, tmp_path, case, match):
    x, y = test_set
    ds = tf.data.Dataset.from_tensor_slices((x[:8], y[:8])).batch(4)
    args, kwargs = (ds,), {}
    if case == "infinite":
        args = (ds.repeat(),)
    elif case == "y_with_dataset":
        args = (ds, y[:8])
    elif case == "num_examples":
        kwargs = {"num_examples": 0}
    elif case == "strategy":
        kwargs = {"strategy": "mirrored"}
    elif case == "checkpoint":
        kwargs = {"checkpoint": str(tmp_path / "missing" / "run.ckpt")}
    else:
        args = (tf.data.Dataset.from_tensor_slices(
            {"a": x[:8], "b": x[:8], "c": x[:8], "d": x[:8]}),)
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(trained_cnn, *args, eps=0.1, attacks="fgsm",
                            **kwargs)


