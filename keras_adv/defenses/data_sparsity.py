"""The data-sparsity framework (Paknezhad et al. 2022)."""

import dataclasses

import tensorflow as tf

from keras_adv import ops, validation
from keras_adv.defenses import protocol, tensors
from keras_adv.defenses.protocol import config_number, set_field


@protocol.serializable
@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSparsity(protocol.Regularizer):
    """Smoothness outside the data support, from generated unlabeled points.

    Paknezhad, Ngo, Win, ... and Lee, "Explaining adversarial vulnerability
    with a data sparsity hypothesis", Neurocomputing 2022 (code:
    MahsaPaknezhad/AdversariallyRobustTraining). The hypothesis: models are
    vulnerable because their decision boundaries are drawn through the
    empty space around the data. The method fills that space with
    unlabeled points and asks the model to be smooth there:

    - anchors: the batch itself plus `unlabeled_per_example` generated
      points `x + N(0, noise_std^2)` per example (label-free);
    - neighbours: `neighbors` points `a + N(0, neighbor_std^2)` per anchor,
      with `neighbor_std = noise_std / 10` by default;
    - loss: the supervised loss on the labeled examples, plus `weight` (the
      paper's lambda) times the finite-difference smoothness penalty
      `mean(((softmax(a) - softmax(n)) / |a - n|_2)^2)` over anchors,
      neighbours and classes (the authors' MSE of the softmax outputs
      divided by the anchor-neighbour distance).

    Choices: the batch's own unlabeled examples (label -1) are anchors too,
    which is how to use your own unlabeled or generated data (for example
    from a GAN) instead of, or besides, the noise points: put them in the
    batch with label -1 (see `keras_adv.datasets.semi_supervised_dataset`)
    and set `unlabeled_per_example=0` to generate none. Points are not
    clipped to the input box (out-of-support points are the point). The
    forward pass on generated points and neighbours runs in training mode
    without updating BatchNormalization moving statistics. With adversarial
    training, combine: `PGDTraining(...) + DataSparsity(...)`; the penalty
    then covers the clean and generated anchors (the authors also place
    anchors at the FGSM points and mix clean and adversarial
    cross-entropy).

    Scale: the paper's MNIST values, noise_std 0.0126-0.016 and lambda 1e4,
    are for inputs standardised with std 0.3081; for inputs in [0, 1] the
    defaults here are noise_std 0.004 (0.0126 * 0.3081, rounded) and
    weight 1e3 (the penalty scales with the square of the input scale:
    1e4 * 0.3081^2 ~ 950). The paper uses lambda 1e6 together with
    adversarial training.

    Args:
        noise_std: sigma_u of the generated unlabeled points (>= 0).
        neighbor_std: sigma_n of the neighbours (> 0); `None` means
            `noise_std / 10`.
        weight: lambda, the weight of the smoothness penalty (>= 0).
        unlabeled_per_example: generated points per example (>= 0).
        neighbors: neighbours per anchor (>= 1).

    Loss terms logged by `fit`: `clean_loss` (labeled examples) and
    `smoothness_loss` (unweighted). `adv_accuracy` is the accuracy on the
    generated points of the labeled examples.

    Raises:
        ValueError: a negative or non-finite std or weight, a zero
            neighbour std, or counts out of range.

    Example:

    >>> defense = keras_adv.defenses.DataSparsity(noise_std=0.004)
    >>> round(defense.neighbor_std, 6)
    0.0004
    """

    noise_std: float = 0.004
    neighbor_std: float = None
    weight: float = 1e3
    unlabeled_per_example: int = 1
    neighbors: int = 1

    eps = 0.0
    norm = "l2"
    clip = None
    warmup_epochs = 0.0
    loss_terms = ("clean_loss", "smoothness_loss")
    keeps_rows = False
    penalty_terms = ("smoothness_loss",)

    def __post_init__(self):
        set_field(self, "noise_std", config_number("noise_std",
                                                         self.noise_std))
        if self.neighbor_std is None:
            if self.noise_std == 0:
                raise ValueError(
                    "neighbor_std must be given when noise_std is 0 (it "
                    "defaults to noise_std / 10). Received: neighbor_std=None"
                )
            set_field(self, "neighbor_std", self.noise_std / 10.0)
        set_field(self, "neighbor_std", config_number(
            "neighbor_std", self.neighbor_std, positive=True))
        set_field(self, "weight", config_number("weight", self.weight))
        set_field(self, "unlabeled_per_example", validation.check_int(
            "unlabeled_per_example", self.unlabeled_per_example, minimum=0))
        set_field(self, "neighbors", validation.check_int(
            "neighbors", self.neighbors))

    def perturb(self, model, x, y, *, eps=None):
        """The generated unlabeled points: `unlabeled_per_example` copies of
        the batch plus Gaussian noise, stacked copy after copy (the batch
        itself when there are none). `model`, `y` and `eps` are not used.

        Example: `points = defense.perturb(model, x, y)`.
        """
        del model, y, eps
        x = tf.convert_to_tensor(x)
        if not self.unlabeled_per_example:
            return x
        tiled = tf.concat([x] * self.unlabeled_per_example, axis=0)
        noise = tf.random.normal(tf.shape(tiled), stddev=self.noise_std)
        return tiled + tf.cast(noise, tiled.dtype)

    def penalty(self, model, x, y, x_adv, *, sample_weight=None,
                training=True, y_pred=None):
        """`weight` times the smoothness penalty over the anchors (`x` and
        the generated points `x_adv`) and their neighbours (see
        `Defense.penalty`).

        Example: `defense.penalty(model, x, y, points).terms`.
        """
        del y
        x = tf.convert_to_tensor(x)
        if y_pred is None:
            y_pred = model(x, training=training)
        batch = tf.shape(x)[0]
        anchors = x
        copies = 1
        if self.unlabeled_per_example:
            anchors = tf.concat([x, tf.cast(x_adv, x.dtype)], axis=0)
            copies += self.unlabeled_per_example
        rep = tf.concat([anchors] * self.neighbors, axis=0)
        step = tf.random.normal(tf.shape(rep), stddev=self.neighbor_std)
        neighbours = rep + tf.cast(step, rep.dtype)
        with tensors.frozen_batch_statistics(model):
            outputs = model(tf.concat([anchors[batch:], neighbours], axis=0),
                            training=training)
        others = ops.to_logits(outputs)
        n_generated = tf.shape(anchors)[0] - batch
        anchor_logits = tf.concat(
            [ops.to_logits(y_pred), others[:n_generated]], axis=0)
        neighbour_logits = others[n_generated:]
        p_a = tf.concat([tf.nn.softmax(anchor_logits)] * self.neighbors, 0)
        p_n = tf.nn.softmax(neighbour_logits)
        distance = ops.l2_norm(tf.cast(step, tf.float32), keepdims=False)
        per_pair = tf.reduce_mean(
            tf.square((p_a - p_n) / distance[:, None]), axis=-1)
        # Mean over neighbours and copies per example, then the batch mean
        # with the example's weight.
        per_example = tf.reduce_mean(
            tf.reshape(per_pair, [copies * self.neighbors, batch]), axis=0)
        smooth = tensors.weighted_mean(per_example, sample_weight)
        y_adv = outputs[:batch] if self.unlabeled_per_example else None
        return protocol.LossResult(self.weight * smooth,
                               {"smoothness_loss": smooth}, y_pred, y_adv)
