"""Values and gradients on the active Keras backend, with that backend's own autodiff.

`values_and_gradients(fn, y_true, y_pred)` converts the NumPy inputs to the
active backend's tensors, calls `fn(y_true, y_pred)` (per-sample values) and
returns those values and the gradient of their sum with respect to `y_pred`,
both as NumPy arrays:

* TensorFlow: `tf.GradientTape` (eager);
* JAX: `jax.value_and_grad` of the sum, the values carried as auxiliary output;
* PyTorch: `torch.autograd` (`backward()` of the sum into a leaf tensor).

The backend is the one Keras was imported with (`KERAS_BACKEND`, fixed for the
process), so a test module written against this helper runs unchanged on each.
"""

from __future__ import annotations

import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")


def backend() -> str:
    import keras

    return keras.backend.backend()


def to_numpy(x) -> np.ndarray:
    """A backend tensor (or anything array-like) as a NumPy array."""
    import keras

    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor: Keras's conversion warns on NumPy 2
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def values_and_gradients(fn, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample values of `fn` and d(sum of them)/d(y_pred), on the active backend."""
    name = backend()
    if name == "tensorflow":
        return _tensorflow(fn, y_true, y_pred)
    if name == "jax":
        return _jax(fn, y_true, y_pred)
    if name == "torch":
        return _torch(fn, y_true, y_pred)
    raise NotImplementedError(f"no autodiff helper for the Keras backend {name!r}")


def _tensorflow(fn, y_true, y_pred):
    import tensorflow as tf

    y_true = tf.constant(y_true)
    y_pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        values = fn(y_true, y_pred)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, y_pred).numpy()


def _jax(fn, y_true, y_pred):
    import jax
    import jax.numpy as jnp

    y_true = jnp.asarray(y_true)

    def total(p):
        values = fn(y_true, p)
        return jnp.sum(values), values

    (_, values), gradient = jax.value_and_grad(total, has_aux=True)(jnp.asarray(y_pred))
    return np.asarray(values), np.asarray(gradient)


def _torch(fn, y_true, y_pred):
    import keras
    import torch

    # Keras's own conversion, so the tensors sit on the device Keras computes on.
    y_true = keras.ops.convert_to_tensor(y_true)
    y_pred = keras.ops.convert_to_tensor(y_pred).detach().requires_grad_(True)
    values = fn(y_true, y_pred)
    torch.sum(values).backward()
    return values.detach().cpu().numpy(), y_pred.grad.detach().cpu().numpy()
