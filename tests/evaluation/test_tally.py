"""The counts over the chunks (`evaluation/tally.py`): one chunk's flags
merged into curves, worst-case counts, per-class counts and the invalid
count, twice the same chunk doubling them, and the JSON round trip a
checkpoint relies on."""

import json

import numpy as np

from keras_adv.evaluation.plan import make_plan
from keras_adv.evaluation.report import MaskingWarning
from keras_adv.evaluation.run import ChunkResult, Points
from keras_adv.evaluation.tally import Tally
from tests.conftest import linear_model


def one_chunk():
    """A plan (fgsm then pgd, eps 0.1 and 0.2, 4 classes), a tally with one
    chunk of 4 examples merged, and that chunk's result: 3 correct; at the
    first eps fgsm leaves 3 and pgd 2, at the second 2 and 1."""
    plan = make_plan(linear_model(in_dim=6, classes=4)[0], eps=[0.1, 0.2],
                     norm="linf", attacks="fgsm,pgd", eot_samples=None,
                     batch_size=None, seed=0, clip=(0.0, 1.0),
                     from_logits=None, checks=False, metrics=False,
                     progress=False).with_classes(4)
    columns = [[1, 1, 1, 0],  # correct
               [1, 1, 1, 0], [1, 1, 0, 0],  # eps 0.1: fgsm, pgd
               [1, 1, 0, 0], [1, 0, 0, 0]]  # eps 0.2: fgsm, pgd
    result = ChunkResult(
        y=np.array([1, 2, 1, 3]), flags=np.array(columns, bool).T,
        clean_nonfinite=0, black_only=[0, 0], fgsm_correct=[3, 2],
        fgsm_only=[0, 1], points=[("pgd", Points(invalid=1), True)],
        timings={"pgd": 0.5})
    tally = Tally.start(plan)
    tally.merge(plan, result)
    return plan, tally, result


def test_merge_counts_one_chunk_and_adds_the_next():
    plan, tally, result = one_chunk()
    assert (tally.examples, tally.correct) == (4, 3)
    assert tally.curves == {"fgsm": [3, 2], "pgd": [2, 1]}
    assert tally.robust == [2, 1]  # after every attack
    assert tally.per_class == {"1": [2, 2, 1, 1], "2": [1, 1, 1, 0],
                               "3": [1, 0, 0, 0]}
    assert (tally.invalid, tally.fgsm_only) == ({"pgd": 1}, [0, 1])
    tally.merge(plan, result)
    assert (tally.examples, tally.robust, tally.invalid) == (
        8, [4, 2], {"pgd": 2})
    assert tally.timings["pgd"] == 1.0


def test_json_round_trip():
    _, tally, _ = one_chunk()
    tally.early.append(MaskingWarning("gradients", "zero"))
    back = Tally.from_json(json.loads(json.dumps(tally.to_json())))
    assert back == tally
