"""Fused gradients equal autodiff, on every bundled loss's domain, extremes included.

`python_source()` writes the backward pass of a loss whose Jacobian is diagonal as
its symbolic gradient (`keras.ops.custom_gradient`) on TensorFlow; on JAX and
PyTorch the same module keeps autodiff (jax.jit fuses the elementwise chain
itself, and JAX's autodiff has its own conventions at kinks, which Keras's
losses on JAX follow; Keras's custom gradient on PyTorch cannot be
differentiated again). Second derivatives are autodiff's on every backend.
`python_source(fast=False)` is the same loss left to autodiff on every backend.
On the active backend (this file runs under TensorFlow, and again under JAX and
PyTorch through tests/test_backends.py) both
classes get the same data: the counterpart's own random data from its domain,
then the edges of the domain (0, 1, eps, 1 - eps, +-1e4, +-200, all-zero rows)
on TensorFlow, whose conventions at kinks the fused gradients follow (on JAX
and PyTorch, `maximum` and `clip` split or pass the gradient differently at an
exact tie, a set of measure zero that the random data avoids). Values must agree
within rtol 1e-5 and gradients within rtol 2e-4, with the same non-finite
positions.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from backend_autodiff import (
    backend,
    compiled_modes,
    second_derivatives,
    target_gradients,
    values_and_gradients,
)
from test_edges import DOMAIN, EDGES, edge_rows, labels

import lossdsl
from lossdsl.library import counterparts as cp
from lossdsl.runtime import loss_class

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)

# The bundled losses whose generated call() carries a fused gradient: every one whose
# Jacobian is diagonal, or whose softmax cross-entropy has a closed-form gradient, and that
# holds no one-hot labels (see lossdsl/emit/fused.py).
FUSED = {
    "binary_crossentropy",
    "binary_crossentropy_from_logits",
    "binary_focal_crossentropy",
    "categorical_crossentropy_from_logits",
    "dice",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "penalized_absolute_error",
    "poisson",
    "squared_hinge",
    "tversky",
    "weighted_mean_squared_error",
}
B, C = 16, 4


# The bundled losses whose code `python_source(xla=True)` spells differently: one exponential
# shared between softplus and sigmoid, or log_softmax and softmax; one log for a difference of
# two log1p (MSLE); every log1p as a log and its rounding error (log(1 - p) of the binary
# cross-entropies).
SHARED_EXPONENTIAL = {
    "binary_crossentropy_from_logits",
    "categorical_crossentropy_from_logits",
    "log_cosh",
}
LOG1P_AS_LOG = {"binary_crossentropy", "binary_focal_crossentropy"}
SPELLED_FOR_XLA = SHARED_EXPONENTIAL | LOG1P_AS_LOG | {"mean_squared_logarithmic_error"}


def _classes(name: str, params: dict, xla: bool = False):
    spec = lossdsl.library.compile(name)
    fast = loss_class(spec, xla=xla)(reduction=None, **params)
    plain = loss_class(spec, fast=False)(reduction=None, **params)
    return fast, plain


def _assert_same(fast, plain, y_true, y_pred, what: str, mode: str = "eager"):
    """`fast` (run in `mode`) and `plain` (eagerly) give the same values and gradients."""
    values, gradients = values_and_gradients(fast, y_true, y_pred, mode)
    expected, expected_gradients = values_and_gradients(plain, y_true, y_pred)
    np.testing.assert_allclose(
        values, expected, rtol=1e-5, atol=1e-6, err_msg=f"values, {what}"
    )
    np.testing.assert_allclose(
        gradients,
        expected_gradients,
        rtol=2e-4,
        atol=1e-6,
        err_msg=f"gradients, {what}",
    )
    # y_true's gradient too (a target computed by a trainable model): fused where y_pred's is.
    # Near 0 both are rounding: the absolute tolerance scales with the largest entry.
    target, expected_target = (
        target_gradients(fast, y_true, y_pred, mode),
        target_gradients(plain, y_true, y_pred),
    )
    finite = np.isfinite(expected_target)
    scale = max(1.0, float(np.abs(expected_target[finite]).max(initial=0.0)))
    np.testing.assert_allclose(
        target,
        expected_target,
        rtol=2e-4,
        atol=1e-6 * scale,
        err_msg=f"gradients with respect to y_true, {what}",
    )


def test_the_fused_table_is_what_the_emitter_does():
    fused = {
        name
        for name in lossdsl.library.names()
        if "custom_gradient" in lossdsl.library.compile(name).python_source()
    }
    assert fused == FUSED
    for name in lossdsl.library.names():
        assert "custom_gradient" not in lossdsl.library.compile(name).python_source(
            fast=False
        )


# The bundled losses whose default code calls the trace-time functions of emit.xla_forms
# (`_log1p`, `_softplus`, `_sigmoid`, `_log1p_difference`): while TensorFlow traces for XLA they
# take the forms spelled for XLA, everywhere else keras.ops's own functions.
XLA_FORMS = {
    "binary_crossentropy",
    "binary_crossentropy_from_logits",
    "binary_focal_crossentropy",
    "log_cosh",
    "mean_squared_logarithmic_error",
}


def test_the_xla_forms_table_is_what_the_emitter_does():
    called = {
        name
        for name in lossdsl.library.names()
        if "def _traced_for_xla(" in lossdsl.library.compile(name).python_source()
    }
    assert called == XLA_FORMS


def test_the_default_code_takes_the_xla_forms_only_where_tensorflow_traces_for_xla():
    spec = lossdsl.compile("log(1 + abs(y_pred)) + softplus(y_pred)")
    cls = loss_class(spec)
    module = sys.modules[cls.__module__]
    seen = []

    def probe(x):
        seen.append(module._traced_for_xla(x))
        return x * 2.0

    x = keras.ops.convert_to_tensor(np.ones(2, "float32"))
    probe(x)
    if backend() == "tensorflow":
        import tensorflow as tf

        tf.function(probe)(x)
        tf.function(probe, jit_compile=True)(x)
        # A function without XLA called inside one with it is compiled by XLA too.
        tf.function(lambda v: tf.function(probe)(v), jit_compile=True)(x)
        assert seen == [False, False, True, True]
        # What each trace of the step holds: keras.ops's log1p, softplus and sigmoid (the fused
        # backward pass) without XLA; logs and one exponential (shared by both passes) with it.
        fn = cls(reduction=None)
        y_true = tf.zeros((2, 3))
        y_pred = tf.constant(np.linspace(-1.0, 1.0, 6, dtype="float32").reshape(2, 3))
        for jit, expected in (
            (False, ["Log1p", "Sigmoid", "Softplus"]),
            (True, ["Exp", "Log"]),
        ):

            @tf.function(jit_compile=jit)
            def step(y_true, y_pred):
                with tf.GradientTape() as tape:
                    tape.watch(y_pred)
                    total = tf.reduce_sum(fn(y_true, y_pred))
                return total, tape.gradient(total, y_pred)

            step(y_true, y_pred)
            graph = step.get_concrete_function(y_true, y_pred).graph
            kinds = {op.type for op in graph.get_operations()}
            for (
                function
            ) in graph._functions.values():  # the custom gradient's functions
                kinds |= {node.op for node in function.definition.node_def}
            found = sorted(kinds & {"Exp", "Log", "Log1p", "Sigmoid", "Softplus"})
            assert found == expected, (jit, found)
    elif backend() == "jax":
        import jax

        jax.jit(probe)(x)
        assert seen == [False, False]
    else:
        assert seen == [False]


@pytest.mark.parametrize(
    "key", sorted(k for k in cp.COUNTERPARTS if cp.library_name(k) in XLA_FORMS)
)
def test_the_xla_forms_equal_autodiff_on_the_domain(key):
    # The default code compiled (TensorFlow: XLA, where it takes the forms spelled for XLA; JAX:
    # jax.jit) against the autodiff class run eagerly, on the domain and at its edges.
    case = cp.COUNTERPARTS[key]
    fast, plain = _classes(cp.library_name(key), case.params)
    mode = (compiled_modes() or ("eager",))[-1]
    rng = np.random.default_rng(7)
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    _assert_same(fast, plain, y_true, y_pred, f"{key} on its domain, {mode}", mode)
    if backend() != "tensorflow":
        return
    y_pred = edge_rows(EDGES[DOMAIN[case.make_pred]])
    for what, y_true in labels(case, len(y_pred)):
        _assert_same(
            fast, plain, y_true, y_pred, f"{key}, {what} at the edges, {mode}", mode
        )


def _class_text(source: str) -> str:
    """The generated class, without the module-level functions above it (emit.xla_forms)."""
    return source[source.index("@keras.saving") :]


def test_the_code_spelled_for_xla_differs_where_it_saves_a_transcendental():
    for name in lossdsl.library.names():
        spec = lossdsl.library.compile(name)
        default, xla = _class_text(spec.python_source()), spec.python_source(xla=True)
        assert (
            _class_text(xla.replace('_xla",', '",')) == default
            or name in SPELLED_FOR_XLA
        ), name
        if name in SHARED_EXPONENTIAL:
            assert "custom_gradient" in xla and xla.count("keras.ops.exp(") == 1, name
            for function in ("softplus", "sigmoid", "log_softmax", "softmax("):
                assert f"keras.ops.{function}" not in xla, (name, function)
        if name in LOG1P_AS_LOG:
            # In the forward pass (y_true's gradient, computed only where it is asked for, has its own).
            forward, forward_xla = (
                text[: text.index("def backward")] for text in (default, xla)
            )
            assert (
                forward.count("_log1p(") == 1 and forward.count("keras.ops.log(") == 1
            ), name
            assert (
                "keras.ops.log1p(" not in xla
                and forward_xla.count("keras.ops.log(") == 2
            ), name
        assert "keras.ops.log1p(" not in xla, (
            name
        )  # a log and its rounding error instead
        # the trace-time functions: the default code's only (but `_logits`, which the softmax
        # cross-entropy's kernel needs on TensorFlow, compiled or not)
        assert "\ndef _" not in xla.replace("\ndef _logits(", ""), name
    msle = lossdsl.library.compile("mean_squared_logarithmic_error")
    assert _class_text(msle.python_source()).count("_log1p_difference(") == 1
    assert msle.python_source(xla=True).count("keras.ops.log(") == 1


@pytest.mark.parametrize(
    "program",
    [
        "log(1 + abs(y_pred)) - log(1 + y_true^2)",
        "3 * log(1 + maximum(y_true, 0)) - 3 * log(1 + y_pred^2) + e^2",
        "(log(1 + maximum(y_pred, eps)) - log(1 + maximum(y_true, eps)))^2",
    ],
)
def test_one_log1p_for_a_difference_of_two_when_spelled_for_xla(program):
    # Ties (a = b), far apart both ways (1 + a)/(1 + b) near 0 and huge, tiny and zero arguments:
    # values and gradients as the two-log1p form's autodiff, on every backend (JAX and PyTorch
    # differentiate the spelled form itself).
    spec = lossdsl.compile(program)
    assert spec.python_source(xla=True).count("keras.ops.log(") == 1
    fast = loss_class(spec, xla=True)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    y_true = np.array(
        [[2.0, 0.0, 1e4, 0.0, 1e-4, 3.0], [0.5, 1e-3, 0.0, 7.0, 2.0, 0.0]],
        dtype="float32",
    )
    y_pred = np.array(
        [
            [2.0, 1e8, 0.0, 0.0, 1e-2, 1.7320508],
            [0.70710677, 0.0316, 1e8, -7.0, 0.0, 1e-3],
        ],
        dtype="float32",
    )
    _assert_same(fast, plain, y_true, y_pred, program)


@pytest.mark.parametrize(
    "program",
    [
        "sign(e)*e + floor(y_true)*y_pred + ceil(y_true)*y_pred + round(y_true)*y_pred",
        "y_pred * ceil(y_pred) + e^2",
        "abs(e) * sign(y_pred)",
    ],
)
def test_steps_fuse_with_a_zero_derivative_as_autodiff_gives(program):
    # floor, ceil and sign have derivative 0 (TensorFlow's gradient of each): their programs fuse
    # (they kept autodiff while SymPy wrote the derivative as a Derivative or a DiracDelta).
    spec = lossdsl.compile(program)
    assert "custom_gradient" in spec.python_source()
    fast = loss_class(spec)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    y_true = np.array(
        [[2.5, -0.5, 1.0, 0.0, 3.2, -2.7], [0.4, 1e-3, -1e4, 7.0, 2.0, 0.0]],
        dtype="float32",
    )
    y_pred = np.array(
        [[2.0, 1.5, -0.3, 0.0, 3.2, 1e4], [-0.7, 0.0316, 1.5, -7.0, 0.0, 2.5]],
        dtype="float32",
    )
    _assert_same(fast, plain, y_true, y_pred, program)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


LOG1P_POINTS = {
    # program: its points (one per row), its value and gradient as functions of y_pred, and
    # whether y_pred = 0 is a bound of clip or maximum (JAX splits the gradient there)
    "-log(1 - clip(y_pred, 0, 1))": (
        [1e-7, 2e-9, 1e-5, 3e-4, 0.01, 0.3, 0.5, 0.7, 0.9999, 0.0],
        lambda x: -np.log1p(-x),
        lambda x: 1 / (1 - x),
        True,
    ),
    "log(1 + y_pred)": (
        [1e-7, 2e-9, 1e-5, 0.3, 0.999, 1.0, 1.5, 3.0, 1e6, 3e38, np.inf]
        + [-1e-7, -3e-4, -0.3, -0.9999, -1.0, -2.0, np.nan],
        np.log1p,
        lambda x: 1 / (1 + x),
        False,
    ),
    # one log1p of a quotient >= 0 (symfuncs.Log1pDiff); y_true = 0
    "log(1 + maximum(y_pred, 0)) - log(1 + maximum(y_true, 0))": (
        [1e-7, 2e-9, 1e-5, 0.3, 0.999, 1.0, 1.5, 3.0, 1e6, 3e38, np.inf, 0.0],
        np.log1p,
        lambda x: 1 / (1 + x),
        True,
    ),
    # softplus written out with sigmoid's exponential: where(x >= 0, x, 0) + log1p(exp(-|x|))
    "softplus(y_pred)": (
        [-20.0, -80.0, -1e-7, 0.0, 3.0, 100.0, 1e30, -np.inf, np.inf, np.nan],
        _softplus,
        _sigmoid,
        False,
    ),
}


@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("program", sorted(LOG1P_POINTS))
def test_log1p_keeps_its_digits_when_spelled_for_xla(program, xla):
    # The code spelled for XLA writes log1p(-a) as log(u) + ((1 - u) - a), u = 1 - a (the
    # correction 0 above u = 2): float32 log(1 - p) alone is 20% off at p = 1e-7 and 0.1% at
    # 1e-5, softplus(-20) 100% off if the correction were lost or counted twice. Compared with
    # float64 (inf, -1, below -1 and NaN too), eagerly and compiled (tf.function with its
    # graph optimizer, XLA, jax.jit): jax.jit folds x - (u - 1) to 0, TensorFlow's graph
    # optimizer turns log(1 - (-x)) into log1p(x) (and failed here, counting the correction
    # twice) and folds (u - 1) - x. The default code (`xla=False`) takes the same forms where
    # TensorFlow traces it for XLA (emit.xla_forms), keras.ops's log1p and softplus elsewhere.
    spec = lossdsl.compile(program)
    assert "keras.ops.log1p(" not in spec.python_source(xla=True)
    points, value, gradient, bound_at_zero = LOG1P_POINTS[program]
    # The default code's autodiff class too: autodiff through the forms (softplus'(0) = 1/2).
    classes = [loss_class(spec, xla=xla)] + (
        [] if xla else [loss_class(spec, fast=False)]
    )
    y_pred = np.array(points, dtype="float32")[:, None]
    y_true = np.zeros_like(y_pred)
    x = y_pred.astype("float64")[:, 0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        expected, expected_gradients = value(x), gradient(x)
    # Gradients where they are finite numbers: not below -1, at the infinities, or at a bound.
    checked = (x > -1) & np.isfinite(x) & ((x != 0) | (not bound_at_zero))
    for cls in classes:
        for mode in ("eager", *compiled_modes()):
            what = f"{mode}, {keras.saving.get_registered_name(cls)}"
            values, gradients = values_and_gradients(
                cls(reduction=None), y_true, y_pred, mode
            )
            np.testing.assert_allclose(
                values, expected, rtol=4e-7, atol=0, err_msg=f"values, {what}"
            )
            np.testing.assert_allclose(
                gradients[checked, 0],
                expected_gradients[checked],
                rtol=4e-7,
                atol=1e-37,
                err_msg=f"gradients, {what}",
            )


def test_log1p_spelled_for_xla_keeps_an_infinite_gradient():
    # d/dx sqrt(log1p(x)) is inf at x = 0. Autodiff through the correction (JAX always, and
    # PyTorch for a per-sample loss) gave g - g = NaN there before it was a stop_gradient.
    for program in ("sqrt(log(1 + y_pred))", "sqrt(log(1 + sum(y_pred)))"):
        spec = lossdsl.compile(program)
        y_pred = np.array([[0.0, 0.0], [0.5, 1.0]], dtype="float32")
        for fn in (
            loss_class(spec, xla=True)(reduction=None),
            loss_class(spec, fast=False)(reduction=None),
        ):
            with np.errstate(divide="ignore"):
                _, gradients = values_and_gradients(fn, np.zeros_like(y_pred), y_pred)
            assert np.isposinf(gradients[0]).all(), (program, gradients)
            assert np.isfinite(gradients[1]).all(), (program, gradients)


@pytest.mark.parametrize(
    "key, xla",
    [(key, False) for key in sorted(cp.COUNTERPARTS)]
    + [
        (key, True)
        for key in sorted(cp.COUNTERPARTS)
        if cp.library_name(key) in SPELLED_FOR_XLA
    ],
)
def test_fused_gradients_equal_autodiff_on_the_domain(key, xla):
    case = cp.COUNTERPARTS[key]
    name = cp.library_name(key)
    fast, plain = _classes(name, case.params, xla=xla)
    rng = np.random.default_rng(5)
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    _assert_same(fast, plain, y_true, y_pred, f"{key} on its domain")
    if backend() != "tensorflow":
        return
    y_pred = edge_rows(EDGES[DOMAIN[case.make_pred]])
    for what, y_true in labels(case, len(y_pred)):
        _assert_same(fast, plain, y_true, y_pred, f"{key}, {what} at the edges")


@pytest.mark.parametrize("name", sorted(cp.NO_COUNTERPART))
def test_fused_gradients_equal_autodiff_without_a_counterpart(name):
    fast, plain = _classes(name, {})
    rng = np.random.default_rng(6)
    width = 2 if name == "weighted_mean_squared_error" else C
    y_pred = rng.normal(0, 3, (B, width)).astype("float32")
    y_true = rng.normal(0, 3, (B, width)).astype("float32")
    if name == "poly1":
        y_true = cp.one_hot(rng, B, width)
    _assert_same(fast, plain, y_true, y_pred, name)


def test_nested_abs_of_what_sympy_cannot_call_real_has_the_autodiff_gradient():
    # Differentiated as the abs of a real value (sign(u) u'), as derivative.differentiated does,
    # not through SymPy's re and im (which took time that doubled per level).
    spec = lossdsl.compile(
        "abs(abs(abs(y_pred + log(y_pred)) - 2 * log(y_pred)) + log(y_pred) - 1)"
    )
    fast = loss_class(spec)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    assert "custom_gradient" in spec.python_source()
    y_pred = np.array([[0.05, 0.3, 0.9, 2.0, 7.5]], "float32")
    y_true = np.zeros_like(y_pred)
    _assert_same(fast, plain, y_true, y_pred, "nested abs")


def test_a_numeric_factor_of_the_gradient_scales_the_upstream_gradient():
    # SymPy writes d/dy_pred of 3 e^2 as 6 y_pred - 6 y_true (two products per element); the
    # backward pass scales the upstream gradient (one value per sample) by -6 and reads e.
    spec = lossdsl.compile("3 * e^2")
    source = spec.python_source()
    assert (
        "gradient = -6.0 * upstream * t0\n" in source
        and "t0 = y_true - y_pred\n" in source
    )
    y_true = np.array([[0.0, 1.0, 2.0], [4.0, -1.0, 0.5]], dtype="float32")
    y_pred = np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 0.5]], dtype="float32")
    values, gradients = values_and_gradients(
        spec.keras_loss(reduction=None), y_true, y_pred
    )
    np.testing.assert_allclose(
        values, 3 * np.mean((y_true - y_pred) ** 2, axis=-1), rtol=1e-6
    )
    np.testing.assert_allclose(gradients, -6 * (y_true - y_pred) / 3, rtol=1e-6)
    # Where the gradient reads a sum over the last axis, the factor stays on its per-sample
    # terms (moving it cost the Dice loss kernels under tf.function).
    dice = lossdsl.library.compile("dice").python_source()
    assert (
        "t5 = 2.0 * t2 / t1 / t1\n" in dice
        and "gradient = upstream * (t5 - y_true * t4)\n" in dice
    )


def test_a_fused_gradient_is_the_symbolic_one():
    # d/dy_pred of mean((y_true - y_pred)^2) is -2 (y_true - y_pred) / C: the backward pass holds
    # it, the factor on the upstream gradient (one value per sample) and e shared with forward.
    source = lossdsl.compile("e^2").python_source()
    assert "return keras.ops.custom_gradient(forward)(y_true, y_pred)" in source
    assert (
        "target = -gradient\n" in source
    )  # a loss of e alone: the target's gradient is the negated one
    assert "t0 = y_true - y_pred\n" in source
    assert "return keras.ops.mean(keras.ops.square(t0), axis=-1), backward" in source
    assert "gradient = -2.0 * upstream * t0\n" in source
    fast = lossdsl.compile("e^2").keras_loss(reduction=None)
    y_true = np.array([[0.0, 1.0, 2.0]], dtype="float32")
    y_pred = np.array([[1.0, 1.0, 1.0]], dtype="float32")
    values, gradients = values_and_gradients(fast, y_true, y_pred)
    np.testing.assert_allclose(values, [2.0 / 3.0], rtol=1e-6)
    np.testing.assert_allclose(gradients, [[2.0 / 3.0, 0.0, -2.0 / 3.0]], rtol=1e-6)


@pytest.mark.parametrize(
    "program",
    [
        "e^2",
        "log(cosh(e))",
        "sum([0.3, 0.7, 0.1] * e^2)",
        "abs(e) * 0.5 * (1 + abs(e))",
    ],
)
def test_a_broadcast_prediction_gets_its_summed_gradient(program):
    # y_pred with one column against y_true's three: autodiff sums the broadcast gradient back
    # to y_pred's shape, and so does the fused backward pass.
    spec = lossdsl.compile(program)
    assert "custom_gradient" in spec.python_source()
    fast = loss_class(spec)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    rng = np.random.default_rng(8)
    y_true = rng.normal(size=(5, 3)).astype("float32")
    y_pred = rng.normal(size=(5, 1)).astype("float32")
    values, gradients = values_and_gradients(fast, y_true, y_pred)
    assert gradients.shape == (5, 1)
    _assert_same(fast, plain, y_true, y_pred, program)


def test_which_backends_take_the_fused_gradient():
    # abs'(0): the fused gradient is sign(0) = 0; JAX's autodiff, which JAX keeps, has its own.
    source = lossdsl.compile("abs(e)").python_source()
    assert (
        'if keras.backend.backend() != "tensorflow":\n            return forward(y_true, y_pred)[0]'
        in source
    )
    fast = loss_class(lossdsl.compile("abs(e)"))(reduction=None)
    y_true = np.zeros((2, 3), dtype="float32")
    y_pred = np.zeros((2, 3), dtype="float32")
    _, gradients = values_and_gradients(fast, y_true, y_pred)

    def autodiff(t, p):
        return keras.ops.mean(keras.ops.abs(keras.ops.cast(t, p.dtype) - p), axis=-1)

    _, expected = values_and_gradients(autodiff, y_true, y_pred)
    if backend() == "jax":
        np.testing.assert_array_equal(gradients, expected)
    else:
        np.testing.assert_array_equal(gradients, np.zeros_like(y_pred))


def test_pytorch_keeps_autodiff():
    # Keras runs a custom gradient's forward pass on PyTorch as a torch.autograd.Function, under
    # no_grad: its backward pass could not be differentiated (a review; see the next test).
    for name in ("tversky", "huber"):
        assert (
            'if keras.backend.backend() != "tensorflow":'
            in lossdsl.library.compile(name).python_source()
        )


@pytest.mark.parametrize(
    "key", sorted(k for k in cp.COUNTERPARTS if cp.library_name(k) in FUSED)
)
def test_the_gradient_differentiates_as_autodiff_s(key):
    # A gradient penalty, a Hessian-vector product or meta-learning differentiates the gradient: on
    # PyTorch the fused one gave a Hessian of 0 for the mean squared error (a review). Each bundled
    # loss's own random data from its domain, as the first derivatives' test above.
    case = cp.COUNTERPARTS[key]
    fast, plain = _classes(cp.library_name(key), case.params)
    rng = np.random.default_rng(7)
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    expected = second_derivatives(plain, y_true, y_pred)
    np.testing.assert_allclose(
        second_derivatives(fast, y_true, y_pred), expected, rtol=2e-4, atol=1e-6
    )
    if cp.library_name(key) == "mean_squared_error":
        np.testing.assert_allclose(expected, np.full_like(y_pred, 2 / C), rtol=1e-6)


def test_deep_programs_keep_autodiff():
    # 60 nested sigmoids: the chain rule would be a product of 60 factors that SymPy takes
    # seconds to build; the emitter leaves such a program to autodiff (MAX_DEPTH).
    program = "sigmoid(" * 60 + "y_pred" + ")" * 60
    source = lossdsl.compile(program).python_source()
    assert "custom_gradient" not in source
    assert source.count("keras.ops.sigmoid(") == 60
    shallow = lossdsl.compile("sigmoid(" * 3 + "y_pred" + ")" * 3).python_source()
    assert "keras.ops.custom_gradient(forward)" in shallow


def test_a_sympy_failure_while_fusing_falls_back_to_autodiff():
    # Found by bench/fuzz.py --emit: building the masked gradient of this program makes SymPy's
    # Piecewise raise KeyError; the fused path is an optimization, so the module is written
    # without it (and python_source() raises nothing).
    program = (
        "scale0 = min(--e * where(.5 >= y_true, 2.5E+2, y_true) * y_pred)\n\n"
        "margin1 = where(y_pred - e != 0.1, 0.0, +y_true) +normalize (y_true) - +y_true\n\n"
        "param locals = -1e-7\n\n"
        "clip(sqrt(where([642, 609] <= 2, y_pred, (y_true))), locals * clip(y_true, y_pred, 2.5E+2)"
        " + where(e > 541 and y_true == margin1, -e, maximum(y_true, 3)), sigmoid(e))"
    )
    spec = lossdsl.compile(program)
    source = spec.python_source()
    assert "custom_gradient" not in source
    assert source == spec.python_source(fast=False).replace("_autodiff", "")


@pytest.mark.skipif(
    backend() != "tensorflow", reason="tf.Variable and tf.GradientTape are TensorFlow's"
)
@pytest.mark.parametrize(
    "source", ["e^2", "abs(e)", "-(y_true*log(y_pred) + (1-y_true)*log(1-y_pred))"]
)
def test_a_variable_as_y_true_is_read_as_a_target(source):
    # tf.custom_gradient passes `variables` to the backward pass when the forward pass reads a
    # tf.Variable (here y_true, which keras.ops.cast returns as it is): the generated backward pass
    # refused it ("grad_fn must accept keyword argument 'variables'"), found by a parity review.
    import tensorflow as tf

    y_true = tf.Variable([[0.25, 1.0, 0.0]])
    y_pred = tf.Variable([[0.5, 0.75, 0.125]])
    fused, autodiff = (
        loss_class(lossdsl.compile(source), fast=fast)() for fast in (True, False)
    )
    assert "custom_gradient" in lossdsl.compile(source).python_source()
    results = []
    for loss in (fused, autodiff):
        with tf.GradientTape() as tape:
            value = loss(y_true, y_pred)
        results.append((float(value), tape.gradient(value, y_pred).numpy()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


@pytest.mark.skipif(backend() != "tensorflow", reason="tf.GradientTape is TensorFlow's")
@pytest.mark.parametrize(
    "source, params",
    [
        ("huber", {"delta": 0.5}),
        ("param k = 2.0\nk * e^2", {"k": 3.0}),
        ("param p = 1.5\nparam w = 1.0\nw * abs(e)^p + e^2", {"p": 1.25, "w": 2.0}),
        # in a list, which TensorFlow's `stack` refused as a variable (the change review)
        ("param k = 2.0\n-sum([k, 1, 0.5] * y_true * log_softmax(y_pred))", {"k": 3.0}),
    ],
)
def test_a_parameter_given_as_a_variable_has_a_gradient(source, params):
    # The generated class built with a keras.Variable for a parameter (a learnable delta): the
    # fused backward pass has no gradient for it, and TensorFlow's was None where Keras's own Huber
    # and autodiff on JAX give one (a review). Such a parameter takes autodiff; a number, the
    # fused path, as before.
    import tensorflow as tf

    spec = (
        lossdsl.library.compile(source)
        if "\n" not in source
        else lossdsl.compile(source)
    )
    y_true = tf.constant([[0.25, 1.0, 0.0], [2.0, -1.0, 0.5]])
    y_pred = tf.constant([[0.5, 0.75, 0.125], [1.0, 1.0, -0.5]])
    fused, autodiff = (loss_class(spec, fast=fast) for fast in (True, False))
    assert "custom_gradient" in spec.python_source()
    results = []
    for cls in (fused, autodiff):
        variables = {name: keras.Variable(value) for name, value in params.items()}
        loss = cls(**variables)
        for step in (lambda f: f, tf.function):
            with tf.GradientTape() as tape:
                tape.watch(y_pred)
                value = step(lambda loss=loss: loss(y_true, y_pred))()
            gradients = tape.gradient(
                value, [y_pred, *(v.value for v in variables.values())]
            )
            assert all(g is not None for g in gradients), (cls, gradients)
            results.append([float(value), *(np.asarray(g) for g in gradients)])
    for result in results[1:]:
        assert result[0] == pytest.approx(results[0][0], rel=1e-6)
        for got, want in zip(result[1:], results[0][1:], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    if source == "huber":  # Keras's own, with the same variable
        delta = keras.Variable(0.5)
        with tf.GradientTape() as tape:
            value = keras.losses.Huber(delta=delta)(y_true, y_pred)
        assert float(tape.gradient(value, delta.value)) == pytest.approx(
            float(results[0][2]), rel=1e-6
        )
    # with numbers, the fused path: the same values
    for cls in (fused, autodiff):
        assert float(cls(**params)(y_true, y_pred)) == pytest.approx(
            results[0][0], rel=1e-6
        )


@pytest.mark.parametrize(
    "source",
    [
        "variables = e\nvariables^2",
        "param variables = 1.0\nvariables * e^2",
        "columns = e\nupstream = columns^2\nupstream + abs(columns)",
    ],
)
def test_names_the_fused_call_uses_are_free_for_bindings_and_params(source):
    # A binding named `variables` hid the backward pass's own `variables` argument (which
    # tf.custom_gradient fills with None): the gradient came out None and fit() failed with
    # "None values not supported" (found by a conformance review).
    y_true = np.array([[0.25, 1.0, 0.0], [2.0, -1.0, 0.5]], "float32")
    y_pred = np.array([[0.5, 0.75, 0.125], [1.0, 1.0, -1.5]], "float32")
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    (value, gradient), (value_ad, gradient_ad) = (
        values_and_gradients(loss_class(spec, fast=fast)().call, y_true, y_pred)
        for fast in (True, False)
    )
    e = y_true - y_pred
    expected = np.mean(e**2 + (abs(e) if "abs" in source else 0), axis=-1)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(value_ad, expected, rtol=1e-6)
    assert gradient is not None and np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, gradient_ad, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_the_target_gets_its_gradient_when_compiled(name):
    # y_true was captured by the fused forward pass, not one of its inputs: under tf.function and
    # XLA (and on PyTorch) it got no gradient at all, where Keras's losses give one (a target
    # computed by a trained model: distillation, consistency losses; found by a parity review).
    key = next((k for k in sorted(cp.COUNTERPARTS) if cp.library_name(k) == name), None)
    rng = np.random.default_rng(8)
    if key is None:
        width = 2 if name == "weighted_mean_squared_error" else C
        y_true, y_pred = (
            rng.normal(0, 3, (B, width)).astype("float32") for _ in range(2)
        )
    else:
        case = cp.COUNTERPARTS[key]
        y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    source = lossdsl.library.compile(name).python_source()
    assert "custom_gradient(forward)(y_true, y_pred)" in source
    fast, plain = _classes(name, {})
    for mode in ("eager", *compiled_modes()):
        expected = target_gradients(plain, y_true, y_pred, mode)
        scale = float(np.abs(expected).max())
        assert scale > 0, (name, mode)
        # XLA rounds a quotient's gradient differently from autodiff's: the tolerance scales with it.
        np.testing.assert_allclose(
            target_gradients(fast, y_true, y_pred, mode),
            expected,
            rtol=2e-4,
            atol=1e-6 * max(1.0, scale),
        )


def test_products_sympy_leaves_unevaluated_under_an_abs_are_evaluated_in_the_gradient():
    # SymPy simplifies abs(-maximum(e, 1)) to maximum(1, -(y_pred - y_true)) with the product left
    # unevaluated; the gradient's products are evaluated, so its step compares the forward pass's
    # own difference (evaluated only where a Piecewise was differentiated, the code compared
    # y_true - y_pred, a second difference; found by a review).
    spec = lossdsl.compile("abs(-maximum(e, 1))")
    text = spec.python_source()
    assert "t0 = y_pred - y_true\n" in text
    assert "t2 = keras.ops.where(keras.ops.less_equal(t0, -1.0), t1, 0.0)\n" in text
    assert "y_true - y_pred" not in text
    # e = y_true - y_pred: 2, -0.5, 1.5, -1 (no tie at e = 1: JAX and PyTorch split ties, TensorFlow does not)
    y_true = np.array([[0.0, 0.0, 3.5, 1.0]], "float32")
    y_pred = np.array([[-2.0, 0.5, 2.0, 2.0]], "float32")
    fast, plain = (
        loss_class(spec, fast=fast)(reduction=None) for fast in (True, False)
    )
    (value, gradient), (value_ad, gradient_ad) = (
        values_and_gradients(f, y_true, y_pred) for f in (fast, plain)
    )
    np.testing.assert_allclose(value, value_ad, rtol=1e-6)
    np.testing.assert_allclose(gradient, gradient_ad, rtol=1e-6)
    np.testing.assert_allclose(gradient, [[-0.25, 0.0, -0.25, 0.0]], rtol=1e-6)


@pytest.mark.parametrize(
    "source, negated",
    [
        ("param tau = 0.9\nmaximum(tau * e, (tau - 1) * e)", True),  # pinball: e alone
        ("w = [0.3, 0.7]\nsum(w * e^2) + sum([1/3, 2/3] * abs(e))", True),
        (
            "x = y_pred - y_true\nwhere(abs(x) < 1, x^2, abs(x))",
            True,
        ),  # y_pred - y_true, either way round
        ("e^2 + 0.5 * y_true * y_pred", False),  # y_true outside e: its own gradient
        ("log(cosh(e)) + y_pred^2", False),
    ],
)
def test_a_loss_of_e_alone_negates_the_gradient_for_the_target(source, negated):
    # A loss read through y_pred - y_true only has d/dy_true = -d/dy_pred: the backward pass
    # negates y_pred's gradient instead of differentiating again (compile time; before, such a
    # target was differentiated and printed as its own expression where SymPy built it in another form).
    spec = lossdsl.compile(source)
    text = spec.python_source()
    assert "custom_gradient(forward)(y_true, y_pred)" in text
    assert ("target = -gradient\n" in text) is negated
    rng = np.random.default_rng(3)
    y_true, y_pred = (rng.normal(0, 2, (4, 2)).astype("float32") for _ in range(2))
    fast, plain = (
        loss_class(spec, fast=fast)(reduction=None) for fast in (True, False)
    )
    expected = target_gradients(plain, y_true, y_pred)
    assert float(np.abs(expected).max()) > 0
    np.testing.assert_allclose(
        target_gradients(fast, y_true, y_pred), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "source, derivative",
    [
        # d/dy_pred of each, for one element (e = y_true - y_pred)
        ("1 - 2^(-e^2/2)", lambda e: -np.log(2.0) * e * 2.0 ** (-(e**2) / 2)),
        ("pow(10, -abs(e))", lambda e: np.log(10.0) * np.sign(e) * 10.0 ** (-abs(e))),
    ],
)
def test_a_power_with_a_negative_exponent_is_not_written_as_a_reciprocal(
    source, derivative
):
    # The fused module shared `2^(-x)` between its passes as `1 / 2^x`: 2^x overflows where
    # 2^(-x) is 0, and autodiff through `1 / inf` (JAX's path, and TensorFlow's without a known
    # width) gave NaN gradients at e = 40 (found by a numeric review).
    spec = lossdsl.compile(source)
    code = spec.python_source()
    assert "1.0 / keras.ops.power" not in code and "/ t1" not in code
    e = np.array([[1.0, 12.0, 40.0, -40.0]], "float32")
    y_pred = np.zeros_like(e)
    values, gradient = values_and_gradients(loss_class(spec)().call, e, y_pred)
    np.testing.assert_allclose(
        gradient, derivative(e.astype("float64")) / e.shape[-1], rtol=1e-4, atol=1e-30
    )


@pytest.mark.parametrize(
    "source, dtype, y_true, y_pred",
    [
        # the quotient rule's d^2 overflows where d does not: NaN, or 0 in place of the gradient
        (
            "(y_true - exp(y_pred) / (1 + exp(y_pred)))^2",
            "float32",
            [1.0, 0.0, 1.0],
            [45.0, 60.0, -60.0],
        ),
        (
            "(exp(y_pred) - exp(-y_pred)) / (exp(y_pred) + exp(-y_pred)) * y_true - y_pred^2",
            "float32",
            1.0,
            [45, -60],
        ),
        (
            "param c = 1.0\ne^2 / (e^2 + c^2)",
            "float16",
            [0.0, 0.0, 0.0],
            [16.5, 20.0, 0.5],
        ),
        ("y_pred / (1 + e^2)^2", "float16", [0.0, 0.0], [9.0, 0.25]),
        # ... also where cse shared `1 / d^2` between y_pred's gradient and y_true's (NaN at 45)
        (
            "exp(y_pred) / (1 + exp(y_pred) + y_true)",
            "float32",
            [0.0, 1.0, 0.0],
            [45.0, 60.0, -60.0],
        ),
        # ... and where SymPy writes the square of exp(a + b) as exp(2 a + 2 b) (found by a review)
        (
            "exp(y_pred + 2) / (1 + exp(y_pred + 2) + y_true)",
            "float32",
            [1.0, 0.0],
            [43.0, -60.0],
        ),
        (
            "exp(2*y_pred) / (1 + exp(2*y_pred) + y_true)",
            "float32",
            [1.0, 0.0],
            [23.0, -30.0],
        ),
        ("exp(e) / (1 + exp(e) + 0.5)", "float32", [20.70376, 0.0], [-25.648355, 1.0]),
        (
            "1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)",
            "float16",
            None,
            None,
        ),
    ],
)
def test_a_fused_gradient_divides_where_autodiff_divides(source, dtype, y_true, y_pred):
    if (
        y_true is None
    ):  # the Dice loss over 1,024 columns: sum(y_true) + sum(y_pred) past 256
        rng = np.random.default_rng(3)
        y_true = (rng.uniform(size=(2, 1024)) < 0.5).astype("float32")
        y_pred = rng.uniform(0.05, 0.95, size=(2, 1024)).astype("float32")
    else:
        y_pred = np.array([y_pred], "float32")
        y_true = np.broadcast_to(np.array(y_true, "float32"), y_pred.shape).copy()
    spec = lossdsl.compile(source)
    fused = loss_class(spec)(reduction=None, dtype=dtype)
    plain = loss_class(spec, fast=False)(reduction=None, dtype=dtype)
    assert "custom_gradient" in spec.python_source()
    values, gradients = values_and_gradients(fused, y_true, y_pred)
    expected, expected_gradients = values_and_gradients(plain, y_true, y_pred)
    assert np.isfinite(expected_gradients).all()
    np.testing.assert_allclose(values, expected, rtol=1e-3)
    # float16 leaves three digits, fewer where the quotient rule subtracts two near-equal terms:
    # the two orders of rounding differ by up to a fifth there (the failures were 0, NaN, 270x).
    rtol = 0.3 if dtype == "float16" else 1e-4
    np.testing.assert_allclose(gradients, expected_gradients, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("source", ["e^2", "mean(e)^2"])
def test_the_mean_over_an_axis_wider_than_float16_holds_scales_the_gradient(source):
    # float16 holds no count past 65504: the fused gradient's 1/C was 1/inf, every gradient 0 and
    # the loss right (a review of dtypes). Keras's mean divides in float32; 1/65536 is a subnormal.
    rng = np.random.default_rng(5)
    y_pred = rng.uniform(size=(2, 65536)).astype("float16")
    y_true = (y_pred + np.float16(1.0)).astype("float16")
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    values, gradients = values_and_gradients(
        spec.keras_loss(reduction=None, dtype="float16"), y_true, y_pred
    )
    e = y_true.astype("float64") - y_pred.astype("float64")
    expected = (
        -2.0 * (e if source == "e^2" else e.mean(axis=-1, keepdims=True)) / e.shape[-1]
    )
    np.testing.assert_allclose(
        np.asarray(values, "float64"), (e**2).mean(axis=-1), rtol=1e-2
    )
    np.testing.assert_allclose(
        np.asarray(gradients, "float64"), np.broadcast_to(expected, e.shape), rtol=1e-2
    )


@pytest.mark.skipif(
    backend() != "tensorflow",
    reason="the fused gradient is TensorFlow's; JAX is float32 without x64",
)
@pytest.mark.parametrize("source", ["mean(e)^2", "sqrt(mean(e^2) + 1)"])
def test_the_reciprocal_of_the_axis_keeps_float64_digits(source):
    # 1/C was a cast of a Python float, which TensorFlow made float32 first: 4e-8 off in float64
    rng = np.random.default_rng(6)
    y_true, y_pred = rng.normal(size=(2, 3, 7)), rng.normal(size=(2, 3, 7))
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    _, gradients = values_and_gradients(
        spec.keras_loss(reduction=None, dtype="float64"), y_true, y_pred
    )
    e = y_true - y_pred
    if source == "mean(e)^2":
        expected = -2.0 * e.mean(axis=-1, keepdims=True) / 7
    else:
        expected = -e / 7 / np.sqrt((e**2).mean(axis=-1, keepdims=True) + 1)
    np.testing.assert_allclose(
        np.asarray(gradients), np.broadcast_to(expected, e.shape), rtol=1e-13
    )


@pytest.mark.parametrize("name", ["dice", "tversky"])
def test_a_per_sample_quotient_divides_in_the_forward_pass(name):
    # The fused code shares the backward pass's per-sample reciprocal (`2 / d`) with the forward
    # pass; in float16 `2 / eps` overflows on a row of zeros, and `0 * inf` made the loss NaN where
    # Keras's, which divides, gives 1. The forward pass divides; the backward keeps the reciprocal.
    import keras

    spec = lossdsl.library.compile(name)
    assert "custom_gradient" in spec.python_source()
    y_true = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]], "float32")
    y_pred = np.array([[0.0, 0.0, 0.0], [0.75, 0.25, 0.5]], "float32")
    keras_fn = getattr(keras.losses, name)
    for dtype in ("float16", "float32"):
        values = spec.keras_loss(reduction=None, dtype=dtype)(y_true, y_pred)
        expected = keras_fn(y_true.astype(dtype), y_pred.astype(dtype), axis=-1)
        np.testing.assert_allclose(
            np.asarray(values, "float32"), np.asarray(expected, "float32"), rtol=2e-3
        )
        assert float(values[0]) == 1.0


@pytest.mark.parametrize(
    "source",
    [
        "y_true^y_pred",
        "sum([2, 0.5, 0] ^ y_pred)",
        "param b = 0.0\n(b + y_true)^y_pred",
    ],
)
def test_the_gradient_of_a_power_of_a_zero_base_is_zero(source):
    # d/dx b^x = b^x log(b) was printed as a product, 0 * -inf = nan at b = 0 (labels of 0), where
    # autodiff on every backend, and the limit, give 0 (found by a numeric review).
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    y_true = np.array([[0.0, 0.5, 1.0], [0.0, 2.0, 0.25]], "float32")
    y_pred = np.array([[0.5, 0.5, 0.5], [1.5, -0.5, 2.0]], "float32")
    fused, autodiff = (
        values_and_gradients(loss_class(spec, fast=fast)().call, y_true, y_pred)
        for fast in (True, False)
    )
    assert np.all(np.isfinite(fused[1]))
    np.testing.assert_allclose(fused[1], autodiff[1], rtol=1e-5, atol=1e-7)
    if source == "y_true^y_pred":
        assert fused[1][0, 0] == 0.0


# Both arguments of a max, min or clip read y_pred, and tie (for y_pred > 0 everywhere in the first
# four); powers whose base reaches 0 and whose exponent reads y_pred. Found by fuzzing: the fused
# gradient counted a tie twice (2 for 1), and was NaN at a zero base.
TIES_AND_POWERS = {
    "maximum(y_pred, relu(y_pred))": [0.0, 0.2, 0.0, 0.2, 0.2],
    "minimum(y_pred, -relu(-y_pred))": [0.2, 0.0, 0.2, 0.0, 0.0],
    "a = relu(y_pred)\nmaximum(a, y_pred)": [0.0, 0.2, 0.0, 0.2, 0.2],
    "clip(y_pred, relu(y_pred), 5)": [0.0, 0.2, 0.0, 0.2, 0.2],
    "clip(y_true, y_pred, 2 * y_pred)": None,
    # a bound that is x itself: its step cancels to H(0), which SymPy evaluates to 1/2 (0.5 for 1)
    "clip(y_pred, y_pred, 2)": [0.2, 0.2, 0.2, 0.2, 0.2],
    "clip(y_pred, 0, y_pred)": [
        0.2,
        0.2,
        0.2,
        0.2,
        0.2,
    ],  # crossed bounds: the upper one, y_pred
    "clip(y_pred, y_pred - 1, y_pred)": [0.2, 0.2, 0.2, 0.2, 0.2],
    "maximum(y_true, y_pred)": None,
    "relu(y_pred) ^ (y_pred + 2)": None,
    "abs(y_pred) ^ (y_pred^2 + 1)": None,
    "relu(e) ^ (e^2 + 1)": None,
}


@pytest.mark.skipif(
    backend() != "tensorflow", reason="tf.Variable and tf.GradientTape are TensorFlow's"
)
def test_a_zero_base_held_in_an_unselected_branch_has_a_zero_gradient():
    # d(a^g) = g a^(g - 1) a' + ...: at a = y_true = 0 (the where's other branch, a' = 0) with
    # g < 1 the fused product was inf * 0 = NaN, where autodiff's masks give 0 (found by a review).
    import tensorflow as tf

    spec = lossdsl.compile(
        "a = where(y_pred < 0.25, tanh(y_pred), y_true)\na^clip(y_pred, 0.1, 0.9)"
    )
    assert "custom_gradient" in spec.python_source()
    gradients = []
    for fast in (True, False):
        loss = loss_class(spec, fast=fast)(reduction="sum")
        y_true = tf.constant([[0.0, 0.5]])
        y_pred = tf.Variable([[0.54, 0.1]])
        with tf.GradientTape() as tape:
            value = loss(y_true, y_pred)
        gradients.append(tape.gradient(value, y_pred).numpy())
    assert gradients[0][0, 0] == 0.0
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-6)


# Near a clip bound, the backward pass compared a difference SymPy rearranged (`delta - y_pred +
# y_true >= 0`) where the forward pass compared `y_pred - y_true` with delta: one rounding apart,
# the gradient went to neither side or to both (found by a review). Points one unit in the last
# place from a tie.
NEAR_TIES = [
    ("param delta = 1.0\nclip(-(e), e, delta)", 0.9080955386161804, 1.9080955982208252),
    ("clip(y_true, y_pred - 1, y_pred + 1)", 0.11694259196519852, -0.8830574154853821),
    ("clip(e, y_true, e)", 1.3396903276443481, -1.0255730152130127),
]


@pytest.mark.skipif(
    backend() != "tensorflow", reason="tf.Variable and tf.GradientTape are TensorFlow's"
)
@pytest.mark.parametrize("source, target, prediction", NEAR_TIES)
def test_a_step_compares_what_the_forward_pass_compares(source, target, prediction):
    import tensorflow as tf

    spec = lossdsl.compile(source)
    gradients = []
    for fast in (True, False):
        loss = loss_class(spec, fast=fast)(reduction="sum")
        y_true, y_pred = (
            tf.Variable(np.array([[v]], "float32")) for v in (target, prediction)
        )
        with tf.GradientTape(persistent=True) as tape:
            value = loss(y_true, y_pred)
        gradients.append(
            [float(tape.gradient(value, v).numpy()[0, 0]) for v in (y_pred, y_true)]
        )
    assert gradients[0] == gradients[1]


@pytest.mark.skipif(
    backend() != "tensorflow",
    reason="XLA on the CPU flushes mu^2 to 0: JAX's autodiff is inf there",
)
def test_the_chain_rule_through_a_binding_divides_by_it_once():
    # Through `mu = exp(y_pred)`, `y_true / mu`'s gradient was `mu * (-y_true / mu^2 + ...)`: `1 / mu^2`
    # is inf from y_pred of about -44 (and inf - inf = NaN), where autodiff, and `-y_true / mu`, are
    # finite (the Gamma deviance with a log link; found by differential fuzzing).
    _assert_same_at(
        "mu = exp(y_pred)\n2*(y_true/mu - log(y_true/mu + eps) - 1)",
        ([[1.0, 1.0, 2.0, 0.5]], [[-44.0, -43.8, 0.5, 3.0]]),
    )


@pytest.mark.skipif(
    backend() != "tensorflow",
    reason="ties follow TensorFlow's convention; JAX and PyTorch split them",
)
@pytest.mark.parametrize("source", list(TIES_AND_POWERS))
def test_a_tie_counts_once_and_a_zero_base_has_a_finite_gradient(source):
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    y_true = np.array([[1.0, 1.0, 0.0, 2.0, 1.0]], "float32")
    y_pred = np.array([[-0.5, 0.7, -1.0, 1.5, 1.0]], "float32")
    fused, autodiff = (
        values_and_gradients(loss_class(spec, fast=fast)().call, y_true, y_pred)
        for fast in (True, False)
    )
    assert np.all(np.isfinite(fused[1])), fused[1]
    np.testing.assert_allclose(fused[0], autodiff[0], rtol=1e-6)
    np.testing.assert_allclose(fused[1], autodiff[1], rtol=1e-5, atol=1e-7)
    expected = TIES_AND_POWERS[source]
    if expected is not None:
        np.testing.assert_allclose(fused[1][0], expected, rtol=1e-6)


@pytest.mark.parametrize(
    "source",
    [
        "clip(0, e, exp(3^where(y_pred > 0, 1e10, 1)))",
        "clip(0, e, cosh(pow(3, where(y_pred > 0, 1e10, 1))))",
    ],
)
def test_a_step_whose_condition_holds_a_where_of_huge_constants_does_not_hang(source):
    # The fused gradient's select for clip's step made SymPy fold the `where` out of the
    # condition and evaluate exp(3^1e10): mpmath ran for minutes (found by a review).
    from hangguard import answers_within

    spec = lossdsl.compile(source)
    with answers_within():
        code = spec.python_source()
    assert "def backward" in code
    y_true = np.array([[0.5, -1.0, 2.0]], "float32")
    y_pred = np.array([[0.25, 1.5, -3.0]], "float32")
    fused, autodiff = (
        values_and_gradients(loss_class(spec, fast=fast)().call, y_true, y_pred)
        for fast in (True, False)
    )
    np.testing.assert_allclose(fused[0], autodiff[0], rtol=1e-6)
    np.testing.assert_allclose(fused[1], autodiff[1], rtol=1e-5)


# A function applied to a guarding `where` (`y_true / where(y_pred > 0, y_pred, 1)`): SymPy's
# Piecewise took powers into its branches, so the code divided by y_pred, or took its square root,
# in the branch the user had guarded against; autodiff's gradient there (JAX's always, the other
# backends' with fast=False) was 0 * inf = NaN (found by a review of the decisions' known issues).
# And through a `where` with a branch of 0 the gradient is a select, as autodiff's is:
# `log(where(y_pred > 0, y_pred, 0))'` is `where(c, 1, 0) / where(c, y_pred, 0)`, which the fused
# gradient computed as 0 / 0 = NaN where autodiff gives 0.
GUARDED = {
    "y_true / where(y_pred > 0, y_pred, 1)": lambda t, p: np.where(
        p > 0, -t / np.where(p > 0, p, 1) ** 2, 0
    ),
    "sqrt(where(y_pred > 0, y_pred, 1))": lambda t, p: np.where(
        p > 0, 0.5 / np.sqrt(np.where(p > 0, p, 1)), 0
    ),
    "where(y_pred > 0, y_pred, 1)^-0.5": lambda t, p: np.where(
        p > 0, -0.5 * np.where(p > 0, p, 1) ** -1.5, 0
    ),
    "y_true * where(y_pred > 0, y_pred, 1)^y_true": lambda t, p: np.where(
        p > 0, t * t * np.where(p > 0, p, 1) ** (t - 1), 0
    ),
    "log(where(y_pred > 0, y_pred, 0))": lambda t, p: np.where(
        p > 0, 1 / np.where(p > 0, p, 1), 0
    ),
    "sqrt(where(y_pred > 0, y_pred, 0))": lambda t, p: np.where(
        p > 0, 0.5 / np.sqrt(np.where(p > 0, p, 1)), 0
    ),
    "y_true / where(y_pred > 0, y_pred, 0)": lambda t, p: np.where(
        p > 0, -t / np.where(p > 0, p, 1) ** 2, 0
    ),
    "exp(y_true) * where(y_pred > 0, y_pred, 0)^0.25": lambda t, p: np.where(
        p > 0, 0.25 * np.exp(t) * np.where(p > 0, p, 1) ** -0.75, 0
    ),
}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("source", sorted(GUARDED))
def test_a_function_of_a_guarding_where_is_taken_of_the_where(source, fast):
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    loss = loss_class(spec, fast=fast)(reduction=None)
    y_true = np.array([[2.0, 3.0, 0.5, 1.0, 1.5]], dtype="float32")
    y_pred = np.array([[0.0, -1.0, 4.0, -0.0, 0.25]], dtype="float32")
    _, gradients = values_and_gradients(loss, y_true, y_pred)
    expected = (
        GUARDED[source](y_true.astype("float64"), y_pred.astype("float64"))
        / y_pred.shape[-1]
    )
    np.testing.assert_allclose(gradients, expected, rtol=1e-6, atol=1e-7)


# Found by a differential fuzzing review (2026-12-01): fused gradients that autodiff's did not equal.
AUTODIFF_POINTS = {
    # a relu inside a relu kept SymPy's derivative, 1 at 0, where TensorFlow's relu' is 0
    "relu(relu(y_pred) + 1)": ([[1.0, 1.0, 1.0, 1.0]], [[0.0, -0.0, 1.0, -1.0]]),
    "relu(relu(e)^y_true + y_pred)": ([[1.0, 2.0, 1.0, 3.0]], [[1.0, 2.0, 0.0, 4.0]]),
    # a fractional power of a product: SymPy's `1.5 b^1.5 b' / b` is 0/0 at b = 0
    "(y_pred*y_true)^1.5": ([[1.0, 0.0, 0.0, 2.0]], [[0.0, 1.0, 0.0, 0.5]]),
    "(e*y_true)^1.5": ([[1.0, 0.5, 0.0, 2.0]], [[1.0, 0.5, 0.0, 0.5]]),
    # a select times a bound exponential: the chain rule's `m0 * where(c, 1, 0)` multiplied, inf * 0
    # = NaN at y_pred = -87 (-inf * 0 in float32), where autodiff selects (differential fuzzing)
    "m0 = exp(-y_pred)\nsquare(where(y_pred > 0, m0, y_pred))": (
        [[0.0, 0.0, 0.0, 0.0]],
        [[-87.0, -1.0, 0.5, 3.0]],
    ),
    "exp(-exp(where(y_pred > 0, y_true, y_pred)))": (
        [[100.0, 0.0, 1.0, 2.0]],
        [[1.0, -1.0, 0.5, -3.0]],
    ),
}
# A maximum's step times the other side's infinite derivative (sqrt' at 0), where the step compares
# a `where`: the product was 0 * NaN, where TensorFlow's autodiff selects (found by fuzzing,
# 2026-12-03). (JAX's autodiff, which the code keeps there, gives NaN through the unselected sqrt.)
SELECTED_STEPS = {
    "maximum(y_pred, where(y_pred > 2, y_pred, sqrt(y_true*y_pred)))": (
        [[0.0, 1.0, 0.0, 4.0]],
        [[0.5, 3.0, 0.0, 0.25]],
    ),
    "minimum(-y_pred, where(y_pred > 2, -y_pred, -sqrt(y_true*y_pred)))": (
        [[0.0, 1.0, 0.0, 4.0]],
        [[0.5, 3.0, 0.0, 0.25]],
    ),
    # ... and where SymPy gathered the steps' terms over the root's derivative, `(s1/2 + s2/2) /
    # sqrt(...)`: 0 / 0 for every y_pred < 0 (a review)
    "sqrt(maximum(y_pred, where(y_pred > 2, y_pred, 0)))": (
        [[0.0, 1.0, 0.0, 4.0]],
        [[-1.0, 3.0, 0.5, -0.25]],
    ),
    "sqrt(clip(y_pred, where(y_pred > 2, y_pred, 0), 5))": (
        [[0.0, 1.0, 0.0, 4.0]],
        [[-1.0, 3.0, 0.5, -0.25]],
    ),
    "log(maximum(y_pred, where(y_pred > 2, y_pred, 0)))": (
        [[0.0, 1.0, 0.0, 4.0]],
        [[-1.0, 3.0, 0.5, -0.25]],
    ),
}
# A tie goes to the argument printed first, as TensorFlow gives it; the code's temporaries reordered
# the printed ones (JAX and PyTorch split a tie: their autodiff is not this convention).
TIES = {
    "maximum(e, -e)": ([[0.5, 1.0, 0.0, 2.0]], [[0.5, 1.0, 0.0, 1.0]]),
    "square(e) + minimum(e, -e)": ([[0.5, 1.0, 0.0, 2.0]], [[0.5, 1.0, 0.0, 1.0]]),
    "exp(2*y_pred) + maximum(2*y_pred, y_pred)": (
        [[0.5, 1.0, 0.0, 2.0]],
        [[0.0, 1.0, -0.0, -1.0]],
    ),
    # ... in SymPy's order, which counts nodes before it compares keys
    "x = exp(y_pred)\nmaximum(x, 1/x)": (
        [[0.5, 1.0, 0.0, 2.0]],
        [[0.0, 1.0, -0.0, -1.0]],
    ),
    "maximum(sigmoid(y_pred), 1 - sigmoid(y_pred))": (
        [[0.5, 1.0, 0.0, 2.0]],
        [[0.0, 1.0, -0.0, -1.0]],
    ),
}


@pytest.mark.parametrize("source", sorted(AUTODIFF_POINTS))
def test_fused_gradients_equal_autodiff_where_a_review_found_them_apart(source):
    _assert_same_at(source, AUTODIFF_POINTS[source])


@pytest.mark.skipif(
    backend() != "tensorflow",
    reason="JAX's, PyTorch's autodiff: NaN through the unselected root",
)
@pytest.mark.parametrize("source", sorted(SELECTED_STEPS))
def test_a_step_that_compares_a_where_selects(source):
    _assert_same_at(source, SELECTED_STEPS[source])


@pytest.mark.skipif(
    backend() != "tensorflow",
    reason="ties follow TensorFlow's convention; JAX and PyTorch split them",
)
@pytest.mark.parametrize("source", sorted(TIES))
def test_a_tie_goes_where_the_printed_code_gives_it(source):
    _assert_same_at(source, TIES[source])


def _assert_same_at(source: str, rows) -> None:
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    fast = loss_class(spec)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    y_true, y_pred = (np.array(r, dtype="float32") for r in rows)
    _assert_same(fast, plain, y_true, y_pred, source)
    assert np.isfinite(values_and_gradients(fast, y_true, y_pred)[1]).all()


@pytest.mark.parametrize(
    "program",
    [
        "l = log_softmax(y_pred)\n-sum(y_true * l)",
        "l = log_softmax(y_pred)\nm = l\n-sum(y_true * m)",
    ],
)
def test_a_cross_entropy_through_a_binding_fuses_as_written_inline(program):
    # The binding of the log_softmax is read through: the loss fuses as `-sum(y_true *
    # log_softmax(y_pred))` does (it kept autodiff before), the backward pass with softmax.
    spec = lossdsl.compile(program)
    source = spec.python_source()
    assert (
        "custom_gradient" in source
        and "keras.ops.softmax(y_pred, axis=-1) - y_true" in source
    )
    rng = np.random.default_rng(8)
    y_true = rng.uniform(0, 1, (B, 5)).astype("float32")
    y_pred = np.concatenate(
        [rng.normal(0, 3, (B - 2, 5)), [[60.0, -60, 0, 1, 2], [0, 0, 0, 0, 0]]]
    ).astype("float32")
    fast, plain = (
        loss_class(spec)(reduction=None),
        loss_class(spec, fast=False)(reduction=None),
    )
    _assert_same(fast, plain, y_true, y_pred, program)


def test_a_log_softmax_binding_read_elsewhere_keeps_autodiff():
    # Read outside a cross-entropy too, its gradient is no longer elementwise.
    source = lossdsl.compile(
        "l = log_softmax(y_pred)\n-sum(y_true * l) + mean(l)"
    ).python_source()
    assert "custom_gradient" not in source


@pytest.mark.parametrize(
    "name", ["mean_squared_error", "huber", "binary_crossentropy_from_logits", "hinge"]
)
def test_inputs_that_broadcast_along_an_axis_unknown_while_tracing_get_their_own_gradients(
    name,
):
    # (None, 3) and (None, 3) while tracing, (1, 3) and (4, 3) when run: the fused gradients had the
    # shape (4, 3), and TensorFlow took them for the (1, 3) input's (a review). Both inputs now go in
    # broadcast, and each gets its gradient summed back to its own shape, as autodiff gives it.
    if backend() != "tensorflow":
        pytest.skip(
            "an axis unknown while tracing is TensorFlow's (tf.function's input signature)"
        )
    import tensorflow as tf

    spec = lossdsl.library.compile(name)
    rng = np.random.default_rng(8)
    one = rng.uniform(0.1, 0.9, (1, 3)).astype("float32")
    four = rng.uniform(0.1, 0.9, (4, 3)).astype("float32")
    gradients = {}
    for fast in (True, False):
        loss = loss_class(spec, fast=fast)()

        @tf.function(input_signature=[tf.TensorSpec([None, 3])] * 2)
        def step(y_true, y_pred, loss=loss):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([y_true, y_pred])
                value = loss(y_true, y_pred)
            return value, tape.gradient(value, y_true), tape.gradient(value, y_pred)

        gradients[fast] = [
            [t.numpy() for t in step(a, b)] for a, b in ((one, four), (four, one))
        ]
    for (value, to_true, to_pred), (expected, expected_true, expected_pred), (
        a,
        b,
    ) in zip(*gradients.values(), ((one, four), (four, one)), strict=True):
        assert to_true.shape == a.shape and to_pred.shape == b.shape
        np.testing.assert_allclose(value, expected, rtol=1e-5)
        np.testing.assert_allclose(to_true, expected_true, rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(to_pred, expected_pred, rtol=2e-4, atol=1e-6)


# A fractional power of a reduction in the gradient alone (`sqrt(sum(y_pred^2))` under a division
# the forward pass takes with `+ eps`): at a row of zeros (an output layer initialised to 0) the
# chain rule's product was 0 / 0 = NaN in the fused gradient, where TensorFlow's autodiff gives
# `-y_true / eps` (its sqrt gradient of an upstream of 0 is 0): such a loss keeps autodiff. Where
# the forward pass divides by that root too, it is not finite there either, and the loss is fused.
ROW_ROOTS = {
    "1 - sum(y_true * y_pred) / (sqrt(sum(y_true^2)) * sqrt(sum(y_pred^2)) + eps)": False,
    "s = sum(y_pred^2)\nn = sqrt(s + 0.0)\n1 - sum(y_true * y_pred) / (n * sqrt(sum(y_true^2)) + eps)": False,
    "sum(y_true * y_pred) / sqrt(sum(y_pred^2) + eps)": True,
    "sqrt(sum(e^2) + 1)": True,
}


@pytest.mark.parametrize("source", sorted(ROW_ROOTS))
def test_a_root_of_a_reduction_that_only_the_gradient_divides_by_keeps_autodiff(source):
    spec = lossdsl.compile(source)
    assert ("custom_gradient" in spec.python_source()) is ROW_ROOTS[source]
    y_true = np.array([[0.5, -2.0, 1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], "float32")
    y_pred = np.array([[0.0, 0.0, 0.0], [0.25, -1.0, 2.0], [0.5, 0.5, -1.0]], "float32")
    fused, autodiff = (
        values_and_gradients(
            loss_class(spec, fast=fast)(reduction=None), y_true, y_pred
        )
        for fast in (True, False)
    )
    np.testing.assert_allclose(fused[0], autodiff[0], rtol=1e-6)
    np.testing.assert_allclose(fused[1], autodiff[1], rtol=1e-5)
    if not ROW_ROOTS[source] and backend() == "tensorflow":
        # the row of zeros: the gradient of the `+ eps` quotient alone, finite
        np.testing.assert_allclose(fused[1][0], -y_true[0] / 1e-7, rtol=1e-5)


# A number SymPy distributes over a difference (`2/3 (y_pred - y_true)` as `2 y_pred/3 - 2 y_true/3`)
# was computed so: under XLA a fused multiply-add, not 0 where y_pred equals y_true, which the
# gradient's `1 / (... + eps)` multiplied by 10^7 (0.14 at a perfect prediction for the first; a
# differential review). The code takes the number out again: the difference first, exactly 0.
PERFECT_PREDICTION = [
    "log(sum(e^2)/5 + eps)",
    "(sum(e^2) + eps)^(1/3)",
    "(sum(e^2)/3 + eps)^0.5",
    "(e^2 + eps)^0.45",
    # the pair inside a longer sum (`0.6 y_pred - 0.6 y_true + 0.4 (y_pred - y_true)^3`; a review)
    "log(mean(0.3 * e^2 + 0.1 * e^4) + eps)",
    "sqrt(0.3 * e^2 + 0.7 * y_true^2 * e^2 + eps)",
    "(0.3 * e^2 + 0.1 * e^4 + eps)^0.45",
    "3 * e^2 + 0.7 * e^2 * y_true",
    "e^2/3 + y_true*e^2/5",
]


@pytest.mark.parametrize("source", PERFECT_PREDICTION)
def test_the_gradient_is_zero_at_a_perfect_prediction_in_every_mode(source):
    spec = lossdsl.compile(source)
    assert "custom_gradient" in spec.python_source()
    rng = np.random.default_rng(7)
    y_true = rng.normal(size=(64, 5)).astype("float32") * np.float32(3.7)
    loss = loss_class(spec)(reduction=None)
    for mode in ("eager", *compiled_modes()):
        _, gradient = values_and_gradients(loss, y_true, y_true.copy(), mode)
        assert np.all(gradient == 0), (mode, np.abs(gradient).max())


# A sum of eight `where`s, written out (a binding's symbol is compared as it is): `x >= 0` folds
# into 256 cases, past the 64 a condition may hold, so the fast softplus under XLA leaves
# `softplus(x)` to Keras's own (it took 97 s to fold them, and its code was 110,000 characters);
# the rest of the loss keeps the fused gradient.
_SUM = " + ".join(f"where(y_pred > {k}, y_pred, {k + 1})" for k in range(8))
_EIGHT_WHERES = f"softplus({_SUM}) - y_true * ({_SUM})"


@pytest.mark.parametrize(
    "source, xla",
    [
        (
            "y_pred * softplus(where(cos(3*y_pred) >= cos(2*y_pred) or tan(2*y_pred) < sin(y_pred), y_pred, 3))",
            True,
        ),
        ("softplus(where(sin(y_pred) < 2, y_pred + 1, 1 - y_pred) - y_true)", True),
        (
            "where(cos(3*y_pred) >= cos(2*y_pred) or tan(2*y_pred) < sin(y_pred), y_true, 3)^y_pred",
            False,
        ),
        (_EIGHT_WHERES, True),
    ],
)
def test_a_condition_built_on_a_where_selects_as_the_written_code(source, xla):
    # The fast softplus's `x >= 0` and the guard `b > 0` of b^x's gradient, on an `x` or `b` that
    # reads a `where`, are folded as a `where`'s own condition is (not by SymPy's search, which
    # solved periodic comparisons for a minute): values and gradients as the code written out.
    spec = lossdsl.compile(source)
    fast = loss_class(spec, xla=xla)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    rng = np.random.default_rng(7)
    y_pred = rng.uniform(-4, 4, (B, C)).astype("float32")
    y_true = rng.uniform(0, 2, (B, C)).astype("float32")
    y_true[0] = 0.0  # b = 0 in b^x: the guarded log
    _assert_same(fast, plain, y_true, y_pred, source)
    if source == _EIGHT_WHERES:
        code = spec.python_source(xla=True)
        assert (
            "keras.ops.softplus(" in code
            and "keras.ops.custom_gradient(forward)" in code
        )


@pytest.mark.parametrize(
    "source, y_true",
    [
        ("where(y_true > 100, 2, y_true/7 - 3)^y_pred", [21.0, 21.000002, 14.0, 28.0]),
        (
            "where(y_true >= 0, y_true/10 - 0.3, 1)^y_pred",
            [3.0000002, 3.0, 3.0000005, 6.0],
        ),
        ("where(y_true > 100, 2, y_true/15 - 0.1)^y_pred", [1.5, 1.5000001, 3.0, 0.75]),
    ],
)
def test_the_guard_of_a_power_s_gradient_compares_the_base_as_computed(source, y_true):
    # d/dx b^x = b^x log(b) is guarded by `b > 0`; with a `where` in b the guard is folded. Folded
    # with float64's numbers (`0.14285714285714285 * y_true > 3`) it was true where the code's
    # `y_true / 7.0 - 3.0` is 0 in float32: 0 * -inf = NaN, where autodiff gives 0 (the change review).
    spec = lossdsl.compile(source)
    fast = loss_class(spec)(reduction=None)
    plain = loss_class(spec, fast=False)(reduction=None)
    y_true = np.array([y_true], dtype="float32")
    y_pred = np.full_like(y_true, 0.5)
    _, gradients = values_and_gradients(fast, y_true, y_pred)
    _, expected = values_and_gradients(plain, y_true, y_pred)
    np.testing.assert_array_equal(np.isnan(gradients), np.isnan(expected))
    np.testing.assert_allclose(gradients, expected, rtol=1e-6, atol=0)


NAN_TESTS = [
    # (program, the per-element value with t = y_true, p = y_pred, and its derivative in p)
    (
        "where(y_true != y_true, 0, e^2)",
        lambda t, p: np.where(np.isnan(t), 0, (t - p) ** 2),
        "e2",
    ),
    (
        "where(y_true == y_true, e^2, 0)",
        lambda t, p: np.where(np.isnan(t), 0, (t - p) ** 2),
        "e2",
    ),
    (
        "where(not (y_true == y_true), 0, e^2)",
        lambda t, p: np.where(np.isnan(t), 0, (t - p) ** 2),
        "e2",
    ),
    (
        "missing = y_true != y_true\nwhere(missing, 0, abs(e))",
        lambda t, p: np.where(np.isnan(t), 0, abs(t - p)),
        "abs",
    ),
    (
        "where(y_true <= y_true, e^2, 0)",
        lambda t, p: np.where(np.isnan(t), 0, (t - p) ** 2),
        "e2",
    ),
    # `not` of an ordering holds where a side is NaN (the targets below are all >= 0 or NaN)
    (
        "where(not (y_true >= 0), 0, e^2)",
        lambda t, p: np.where(np.isnan(t), 0, (t - p) ** 2),
        "e2",
    ),
    (
        "where(not (y_true < 5), 0, abs(e))",
        lambda t, p: np.where(np.isnan(t), 0, abs(t - p)),
        "abs",
    ),
]


@pytest.mark.parametrize(
    "source, reference, kind", NAN_TESTS, ids=[s for s, *_ in NAN_TESTS]
)
@pytest.mark.parametrize("xla", [False, True])
def test_a_value_compared_with_itself_masks_nan_targets(source, reference, kind, xla):
    # `x != x` is NumPy's NaN test; SymPy decided it False before any value was seen, so the
    # `where` vanished and a NaN target made the loss NaN (a review).
    spec = lossdsl.compile(source)
    y_true = np.array([[np.nan, 0.5, 1.0], [0.2, np.nan, np.nan]], dtype="float32")
    y_pred = np.array([[0.3, 0.6, 0.4], [0.1, 0.2, 0.3]], dtype="float32")
    t, p = y_true.astype("float64"), y_pred.astype("float64")
    values, gradients = values_and_gradients(
        loss_class(spec, xla=xla)(reduction=None), y_true, y_pred
    )
    np.testing.assert_allclose(values, reference(t, p).mean(axis=-1), rtol=1e-6)
    masked = np.isnan(t)
    slope = -2 * (t - p) if kind == "e2" else -np.sign(t - p)
    expected = np.where(masked, 0, slope) / y_pred.shape[-1]
    np.testing.assert_allclose(gradients[~masked], expected[~masked], rtol=1e-5)
    if backend() == "tensorflow":
        # The fused gradient is built from the symbolic one, `where(t != t, 0, ...)`: 0 where the
        # target is missing. Autodiff (JAX, PyTorch) multiplies the select's 0 by the untaken
        # branch's NaN, as it does for NumPy-style code (docs/decisions.md).
        np.testing.assert_array_equal(gradients[masked], 0.0)


def test_a_mask_written_inside_too_gives_a_zero_gradient_on_every_backend():
    # The README's spelling for autodiff: the untaken branch reads 0 where the label is missing.
    source = (
        "where(y_true != y_true, 0, (where(y_true != y_true, 0, y_true) - y_pred)^2)"
    )
    y_true = np.array([[np.nan, 0.5, 1.0], [0.2, np.nan, np.nan]], dtype="float32")
    y_pred = np.array([[0.3, 0.6, 0.4], [0.1, 0.2, 0.3]], dtype="float32")
    t, p = y_true.astype("float64"), y_pred.astype("float64")
    expected_gradients = np.where(np.isnan(t), 0, -2 * (t - p)) / 3
    for fast in (True, False):
        values, gradients = values_and_gradients(
            loss_class(lossdsl.compile(source), fast=fast)(reduction=None),
            y_true,
            y_pred,
        )
        np.testing.assert_allclose(
            values, np.where(np.isnan(t), 0, (t - p) ** 2).mean(axis=-1), rtol=1e-6
        )
        np.testing.assert_allclose(gradients, expected_gradients, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("xla", [False, True])
def test_a_condition_that_reads_a_masked_value_selects_as_numpy_does(xla):
    # SymPy's ITE decided `ITE(Ne(t, t), False, t > 0.5)` as False: the code computed abs(e)
    # everywhere, on rows with no NaN too (the change review).
    spec = lossdsl.compile(
        "where(where(y_true != y_true, 0, y_true) > 0.5, e^2, abs(e))"
    )
    y_true = np.array([[np.nan, 0.5, 1.0], [0.7, -0.3, 2.0]], dtype="float32")
    y_pred = np.array([[0.3, 0.6, 0.4], [0.9, 0.4, 0.1]], dtype="float32")
    t, p = y_true.astype("float64"), y_pred.astype("float64")
    squared = np.where(np.isnan(t), 0, t) > 0.5
    values, gradients = values_and_gradients(
        loss_class(spec, xla=xla)(reduction=None), y_true, y_pred
    )
    np.testing.assert_allclose(
        values[1], np.where(squared, (t - p) ** 2, abs(t - p))[1].mean(), rtol=1e-6
    )
    assert np.isnan(values[0])  # abs(e) of the NaN target, as NumPy's
    slope = np.where(squared, -2 * (t - p), -np.sign(t - p)) / 3
    np.testing.assert_allclose(gradients[1], slope[1], rtol=1e-5)
    np.testing.assert_allclose(gradients[0, 1:], slope[0, 1:], rtol=1e-5)


def test_not_of_an_ordering_survives_the_code_s_common_subexpressions():
    # The code's `cse` holds comparisons as inert stand-ins (past 32 of them, and always one of a
    # value that is not real); SymPy's `Not` of a stand-in flipped the ordering it came back to, so
    # the code computed `less(y_true, 0)` for `not (y_true >= 0)`, NaN at a NaN label (a review).
    terms = " + ".join(f"where(y_pred > {i}, y_pred, 0)" for i in range(16))
    masked = lossdsl.compile(f"where(not (y_true >= 0), 0, e^2) + 0.01 * ({terms})")
    unreal = lossdsl.compile(
        "where(not (log(-1 - y_pred^2) > 0), e^2, abs(e))"
    )  # the log is NaN: not holds
    y_true, y_pred = (
        np.array([[np.nan, 1.0]], "float32"),
        np.array([[0.5, 0.0]], "float32"),
    )
    for options in ({}, {"fast": False}, {"xla": True}):
        values, gradients = values_and_gradients(
            loss_class(masked, **options)(reduction=None), y_true, y_pred
        )
        np.testing.assert_allclose(values, [(0.0 + 1.0 + 0.01 * 0.5) / 2], rtol=1e-6)
        if backend() == "tensorflow" and not options:
            np.testing.assert_allclose(gradients, [[0.01 / 2, -2.0 / 2]], rtol=1e-6)
        value = loss_class(unreal, **options)(reduction=None)(
            np.array([[1.0]], "float32"), np.array([[3.0]], "float32")
        )
        np.testing.assert_allclose(np.asarray(value), [4.0])


@pytest.mark.parametrize("program", ["mean(e^2)", "mean(e)^2", "mean(abs(e))*sum(e^2)"])
def test_an_empty_last_axis_takes_autodiff(program):
    # The fused backward pass of a mean multiplies by `1 / keras.ops.shape(y_pred)[-1]`, a Python
    # ZeroDivisionError for a last axis of 0 known while tracing (a review of bad input); autodiff
    # gives what Keras's own mean squared error gives there: NaN, and an empty gradient.
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused gradient runs on TensorFlow")
    import tensorflow as tf

    spec = lossdsl.compile(program)
    assert "columns is None or columns == 0 or columns != y_true.shape[-1]" in " ".join(
        spec.python_source().split()
    )
    loss = spec.keras_loss()
    y_true = tf.zeros((4, 0))
    y_pred = tf.Variable(tf.zeros((4, 0)))

    def step():
        with tf.GradientTape() as tape:
            value = loss(y_true, y_pred)
        return value, tape.gradient(value, y_pred)

    expected = float(keras.losses.MeanSquaredError()(y_true, y_pred))
    assert np.isnan(expected)
    for run in (step, tf.function(step)):
        value, gradient = run()
        assert np.isnan(float(value))
        assert tuple(gradient.shape) == (4, 0)
