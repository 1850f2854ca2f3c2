"""Values and gradients on the active Keras backend, with that backend's own autodiff.

`values_and_gradients(fn, y_true, y_pred)` converts the NumPy inputs to the
active backend's tensors, calls `fn(y_true, y_pred)` (per-sample values) and
returns those values and the gradient of their sum with respect to `y_pred`,
both as NumPy arrays:

* TensorFlow: `tf.GradientTape` (eager);
* JAX: `jax.value_and_grad` of the sum, the values carried as auxiliary output;
* PyTorch: `torch.autograd` (`backward()` of the sum into a leaf tensor).

`values_and_gradients(fn, y_true, y_pred, mode)` with one of `compiled_modes()`
compiles the whole step instead: `tf.function` (TensorFlow's graph optimizer)
and XLA (`jit_compile=True`) on TensorFlow, `jax.jit` on JAX; PyTorch has none.

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

    if hasattr(x, "detach") and hasattr(
        x, "cpu"
    ):  # a torch tensor: Keras's conversion warns on NumPy 2
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


# Compiled modes per backend, besides "eager": TensorFlow's graph (with its graph optimizer)
# and XLA, and jax.jit.
COMPILED_MODES = {
    "tensorflow": ("tf.function", "XLA"),
    "jax": ("jax.jit",),
    "torch": (),
}


def compiled_modes() -> tuple[str, ...]:
    """The compiled modes `values_and_gradients` offers on the active backend."""
    return COMPILED_MODES.get(backend(), ())


def values_and_gradients(
    fn, y_true: np.ndarray, y_pred: np.ndarray, mode: str = "eager"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample values of `fn` and d(sum of them)/d(y_pred), on the active backend.

    `mode`: "eager", or one of `compiled_modes()`: the step compiled as a whole.
    """
    name = backend()
    if mode != "eager" and mode not in compiled_modes():
        raise ValueError(f"no mode {mode!r} on the Keras backend {name!r}")
    if name == "tensorflow":
        return _tensorflow(fn, y_true, y_pred, mode)
    if name == "jax":
        return _jax(fn, y_true, y_pred, mode)
    if name == "torch":
        return _torch(fn, y_true, y_pred)
    raise NotImplementedError(f"no autodiff helper for the Keras backend {name!r}")


def _tensorflow(fn, y_true, y_pred, mode="eager"):
    import tensorflow as tf

    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            values = fn(y_true, y_pred)
            total = tf.reduce_sum(values)
        return values, tape.gradient(total, y_pred)

    if mode != "eager":
        step = tf.function(step, jit_compile=mode == "XLA")
    values, gradient = step(tf.constant(y_true), tf.constant(y_pred))
    return values.numpy(), gradient.numpy()


def _jax(fn, y_true, y_pred, mode="eager"):
    import jax
    import jax.numpy as jnp

    def total(y_true, p):
        values = fn(y_true, p)
        return jnp.sum(values), values

    step = jax.value_and_grad(total, argnums=1, has_aux=True)
    if mode == "jax.jit":
        step = jax.jit(step)
    (_, values), gradient = step(jnp.asarray(y_true), jnp.asarray(y_pred))
    return np.asarray(values), np.asarray(gradient)


def _torch(fn, y_true, y_pred):
    import keras
    import torch

    # Keras's own conversion, so the tensors sit on the device Keras computes on.
    y_true = keras.ops.convert_to_tensor(y_true)
    y_pred = keras.ops.convert_to_tensor(y_pred).detach().requires_grad_(True)
    values = fn(y_true, y_pred)
    torch.sum(values).backward()
    # NumPy has no bfloat16: low-precision values come back as float32 (exactly).
    values = values.detach().cpu()
    if values.dtype == torch.bfloat16:
        values = values.to(torch.float32)
    return values.numpy(), y_pred.grad.detach().cpu().numpy()


def second_derivatives(fn, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """d(sum of d(sum of the per-sample values of `fn`)/d(y_pred))/d(y_pred), on the active backend,
    eager: the row sums of the Hessian (its diagonal, for an elementwise loss). A gradient penalty,
    a Hessian-vector product and meta-learning differentiate the gradient so."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        p = tf.constant(y_pred)
        with tf.GradientTape() as outer:
            outer.watch(p)
            with tf.GradientTape() as inner:
                inner.watch(p)
                total = tf.reduce_sum(fn(tf.constant(y_true), p))
            gradient = tf.reduce_sum(inner.gradient(total, p))
        second = outer.gradient(gradient, p)
        return np.zeros_like(y_pred) if second is None else second.numpy()
    if name == "jax":
        import jax
        import jax.numpy as jnp

        t = jnp.asarray(y_true)
        first = jax.grad(lambda p: jnp.sum(fn(t, p)))
        return np.asarray(jax.grad(lambda p: jnp.sum(first(p)))(jnp.asarray(y_pred)))
    if name == "torch":
        import keras
        import torch

        t = keras.ops.convert_to_tensor(y_true)
        p = keras.ops.convert_to_tensor(y_pred).detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(torch.sum(fn(t, p)), p, create_graph=True)
        if (
            not gradient.requires_grad
        ):  # a gradient that does not depend on y_pred (or was cut off)
            return np.zeros_like(y_pred)
        (second,) = torch.autograd.grad(torch.sum(gradient), p)
        return second.detach().cpu().numpy()
    raise NotImplementedError(f"no autodiff helper for the Keras backend {name!r}")


def target_gradients(
    fn, y_true: np.ndarray, y_pred: np.ndarray, mode: str = "eager"
) -> np.ndarray:
    """d(sum of the per-sample values of `fn`)/d(y_true), on the active backend (a target that a
    trainable model computes needs it)."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        def step(y_true, y_pred):
            with tf.GradientTape() as tape:
                tape.watch(y_true)
                total = tf.reduce_sum(fn(y_true, y_pred))
            return tape.gradient(total, y_true)

        if mode != "eager":
            step = tf.function(step, jit_compile=mode == "XLA")
        gradient = step(tf.constant(y_true), tf.constant(y_pred))
        return (
            np.zeros_like(y_true) if gradient is None else gradient.numpy()
        )  # None: no path (int labels)
    if name == "jax":
        import jax
        import jax.numpy as jnp

        if not np.issubdtype(np.asarray(y_true).dtype, np.inexact):
            return np.zeros_like(y_true)  # class ids: no gradient
        step = jax.grad(lambda t, p: jnp.sum(fn(t, p)))
        if mode == "jax.jit":
            step = jax.jit(step)
        return np.asarray(step(jnp.asarray(y_true), jnp.asarray(y_pred)))
    if name == "torch":
        import keras
        import torch

        t = keras.ops.convert_to_tensor(y_true).detach()
        if not t.is_floating_point():
            return np.zeros_like(y_true)  # class ids: no gradient
        t.requires_grad_(True)
        total = torch.sum(fn(t, keras.ops.convert_to_tensor(y_pred)))
        if not total.requires_grad:
            return np.zeros_like(y_true)
        total.backward()
        return (
            np.zeros_like(y_true)
            if t.grad is None
            else t.grad.detach().cpu().to(torch.float32).numpy()
        )
    raise NotImplementedError(f"no autodiff helper for the Keras backend {name!r}")
