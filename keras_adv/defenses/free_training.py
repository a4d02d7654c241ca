"""Free adversarial training (Shafahi et al. 2019)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops
from keras_adv.attacks import ascent
from keras_adv.defenses import protocol, tensors


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class FreeTraining(protocol.AdversarialOnly, protocol.BallDefense):
    """"Adversarial training for free": minibatch replays.

    Shafahi et al., NeurIPS 2019. Each minibatch is replayed `replays` times;
    every replay does one forward/backward pass on `clip(x + delta)` that
    gives both the weight gradient (applied at once by the optimizer) and the
    input gradient, used for `delta <- project(delta + eps * sign(grad))`.
    `delta` starts at zero and carries over from one minibatch to the next.
    A pass over the data therefore costs about `replays` clean epochs: the
    paper divides the number of epochs by `replays`.

    The defense owns its training step (`train_step`, called by
    `AdversarialModel`: the optimizer steps `replays` times per batch) and
    its carried perturbation (`create_state`). The replayed forward passes
    run in training mode, so batch-norm statistics see the perturbed batch,
    as in the paper. `perturb` (used by `adversarial_loss` and by
    `evaluate(adversarial=True)`) is a single FGSM step from a random start.

    Args:
        eps: perturbation budget, also the step size on delta (>= 0).
        replays: replays per minibatch m (>= 1).
        norm: `"linf"` or `"l2"`.
        clip: `(min, max)` box of valid inputs, or `None`.
        warmup_epochs: linear eps warm-up over this many epochs (0: none).

    Loss terms logged by `fit`: `adv_loss` (mean over the replays).

    Raises:
        ValueError: eps negative or NaN, replays < 1, an unknown norm, a bad
            clip box or warmup_epochs < 0.

    Example:

    >>> keras_adv.defenses.FreeTraining(eps=0.3, replays=8).replays
    8
    """

    replays: int = 4
    several_inputs = False  # the carried delta is one tensor

    def perturb(self, model, x, y, *, eps=None):
        """An FGSM step of size eps from a uniform random start (Free-AT's
        perturbation needs the replays of `train_step`; this is its
        stateless stand-in).

        Example: `x_adv = defense.perturb(model, x, y)`.
        """
        eps = tensors.resolve_eps(self, eps)
        return ascent.ce_ascent(model, x, y, eps=eps, step_size=eps, steps=1,
                                norm=self.norm, clip=self.clip,
                                random_start=True)

    def create_state(self):
        """The carried perturbation: a `FreeState` (zeros, not saved).

        Example: `state = defense.create_state()`.
        """
        return FreeState()

    def train_step(self, step, x, y, sample_weight=None):
        """`replays` optimizer steps on the batch, each one forward/backward
        pass at `clip(x + delta)` that also gives the input gradient for
        `delta <- project(delta + eps * sign(grad))`; `delta` carries over
        to the next batch through `step.state`. Returns the mean loss and
        terms over the replays; the adversarial metrics are recorded at
        every replay.

        Example: called by `AdversarialModel.train_step`.
        """
        eps = step.eps
        x0 = tf.cast(x, tf.float32)
        delta = self._project(step.state.read(x0), x0, eps)
        sums, total_sum = {}, 0.0
        for _ in range(self.replays):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                x_adv = tf.cast(ops.clip_box(x0 + delta, self.clip), x.dtype)
                result = self.loss(step.model, x, y, x_adv,
                                   task_loss=step.task_loss,
                                   sample_weight=sample_weight, training=True)
                total = result.loss + step.regularization()
            (grad,) = step.minimize(tape, total, [delta])
            step.record_adversarial(y, result.y_pred_adv, sample_weight)
            delta = ascent.project_step(delta, grad, eps=eps, step_size=eps,
                                        norm=self.norm)
            delta = ops.clip_box(x0 + delta, self.clip) - x0
            total_sum += total
            for k, v in result.terms.items():
                sums[k] = sums.get(k, 0.0) + v
        step.state.write(delta)
        m = float(self.replays)
        return protocol.StepResult(total_sum / m,
                                   {k: v / m for k, v in sums.items()},
                                   None, None, None)

    def _project(self, delta, x0, eps):
        """`delta` projected onto the eps-ball and into the box around x0."""
        delta = ops.project(delta, eps, self.norm)
        return ops.clip_box(x0 + delta, self.clip) - x0


class FreeState:
    """Free-AT's perturbation carried from batch to batch: a flat float32
    variable, resized to each batch (zeros where a batch is larger than the
    stored one). Training state only: `AdversarialModel` keeps it out of
    saving and export.

    Example:

    >>> state = FreeState()
    >>> state.read(tf.zeros((2, 3))).shape
    TensorShape([2, 3])
    """

    def __init__(self):
        self.delta = tf.Variable(
            tf.zeros([0], tf.float32), trainable=False,
            shape=tf.TensorShape([None]), name="free_delta")

    def read(self, x0):
        """The carried perturbation in the shape of `x0`."""
        flat = self.delta.read_value()
        need, have = tf.size(x0), tf.size(flat)
        flat = tf.concat(
            [flat[: tf.minimum(need, have)],
             tf.zeros([tf.maximum(need - have, 0)], tf.float32)], 0)
        return tf.reshape(flat, tf.shape(x0))

    def write(self, delta):
        """Stores `delta` (keeping stored values beyond its size)."""
        flat = tf.reshape(delta, [-1])
        old = self.delta.read_value()
        self.delta.assign(
            tf.concat([flat, old[tf.minimum(tf.size(flat), tf.size(old)):]], 0))
