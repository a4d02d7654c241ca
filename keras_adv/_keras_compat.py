"""The one home of every access to a private Keras or TensorFlow name.

Public Keras has no route for what each function here does. Each names the
private attribute it reads and the versions it was checked on; a Keras
release that changes one breaks only this module (and
`tests/test_keras_compat.py`). Nothing else in keras_adv touches Keras'
private modules or a private Keras attribute (docs/architecture.md).
"""


def softmax_logits(y_pred):
    """The pre-softmax logits Keras attaches to the output of every softmax
    it computes (`keras.activations.softmax`, `Softmax`, `Dense(...,
    activation="softmax")`), or `y_pred` itself when it carries none.

    Private attribute: `tensor._keras_logits`, checked on Keras 3.4.1, 3.8.0
    and 3.15.1 (TensorFlow backend).

    Example: `logits = softmax_logits(model(x))`.
    """
    return getattr(y_pred, "_keras_logits", y_pred)
