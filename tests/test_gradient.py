"""`spec.gradient()` is the derivative of the loss, through every reduction and vector function.

The gradient and the loss are both evaluated here on numbers, element by
element, with the reductions over the last axis computed from their
definitions (a small evaluator below, no TensorFlow), and the gradient is
compared with central differences of the loss: for a per-sample loss, of its
value; for an elementwise loss, of its sum over the last axis (see
lossdsl/gradient.py). SymPy's own `diff` knew one element only: the variance
`mean((y_pred - mean(y_pred))^2)` had a factor `1 - 1/C` too many, the
normalised categorical cross-entropy missed the normalisation's own term, and
softmax, log_softmax and normalize stayed unevaluated derivatives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import lossdsl
from lossdsl import library
from lossdsl import symfuncs as sf

C = 4  # the last axis, unless a list literal sets it
WIDTH = (
    "<C>"  # where `values` holds the last axis's size (not a name a program can use)
)
STEP = 1e-6

PROGRAMS = [
    # a reduction read by an elementwise term, or inside another reduction
    "(y_pred - mean(y_pred))^2",
    "mean((y_pred - mean(y_pred))^2)",
    "sum(sum(y_pred)*y_pred)",
    "y_pred*sum(y_pred)",
    "sum(y_pred*sum(y_pred*y_true))",
    "e^2 + sum(y_pred)^2",
    "sum(e^2)*sum(y_pred)",
    "sum(where(y_pred > mean(y_pred), y_pred^2, y_true*y_pred))",
    "mean(abs(e)) * max(y_pred) + logsumexp(e)",
    "logsumexp(y_pred*sum(y_pred))",
    "y_pred - mean(y_pred - mean(y_pred))",
    "logsumexp(y_pred - logsumexp(y_pred - logsumexp(y_pred)))",
    "sum(exp(y_pred - logsumexp(y_pred)) * y_true)",
    # vector functions
    "-sum(y_true*log(softmax(y_pred)))",
    "sum(y_true*softmax(y_pred))",
    "sum(y_true*softmax(softmax(y_pred)))",
    "-sum(y_true*log_softmax(y_pred))",
    "sum(log_softmax(y_pred))",
    "log_softmax(y_pred)*y_true",
    "softmax(y_pred)^2",
    "sum(softmax(y_pred)*y_pred)",
    "sum(y_true*normalize(y_pred))",
    "normalize(y_pred)*y_true",
    "sum(normalize(softmax(y_pred)) * y_true)",
    # extremes over the last axis
    "max(y_pred)",
    "min(y_pred*y_true)",
    "max(y_pred - mean(y_pred))",
    # ties that last: the elements at the extreme share its gradient (found by a fuzzing helper:
    # each got all of it, k times the derivative), and a max of a where (SymPy folded the condition
    # of the indicator without end: "too intricate", or 25 s)
    "max(minimum(y_pred, mean(y_pred)))",
    "max(y_pred - y_pred + logsumexp(y_pred))",
    "max(where(y_true > 0.5, y_pred, 0))",
    "min(where(y_pred > 0.5, y_pred, 2*y_pred))",
    # no reduction of y_pred at all: SymPy's derivative, unchanged
    "e^2",
    "mean(e^2)",
    "1 - 2*sum(y_true*y_pred)/(sum(y_true)+sum(y_pred))",
    # abs of what SymPy does not know to be real: sign(u) u', not its complex formula
    "abs(y_pred^0.5)",
    "abs(sqrt(y_pred))",
    "abs(log(y_pred))",
    # a `where` inside a condition: SymPy's ITE
    "where(where(y_pred > 0, y_pred, y_true) > 1, y_pred, 0)",
    "where(where(1e-3 >= y_true, 0.5, y_pred) >= 1, 3*y_pred, y_pred)",
]


def evaluate(expr: sp.Basic, values: dict[str, np.ndarray], k: int):
    """`expr` at element k of the last axis; reductions and vector functions from their definitions."""
    if isinstance(expr, sp.Symbol):
        if expr == sf.C:
            return float(values[WIDTH])
        value = values[expr.name]
        return value[k] if isinstance(value, np.ndarray) else value
    if isinstance(expr, (sf.TensorFunction, sf.Vector)):
        return _tensor(expr, values, k)
    if expr.is_Number:
        return float(expr)
    if expr in (sp.true, sp.false):
        return bool(expr)
    if isinstance(expr, sp.Piecewise):
        for value, condition in expr.args:
            if evaluate(condition, values, k):
                return evaluate(value, values, k)
        raise ValueError(f"no case of {expr} holds")
    args = [evaluate(a, values, k) for a in expr.args]
    if isinstance(expr, sp.Add):
        return math.fsum(args)
    if isinstance(expr, sp.Mul):
        return math.prod(args)
    if isinstance(expr, sp.Pow):
        return args[0] ** args[1]
    if isinstance(expr, sp.Heaviside):
        return (
            1.0
            if args[0] > 0
            else (0.0 if args[0] < 0 else (args[1] if len(args) > 1 else 0.5))
        )
    return ELEMENTWISE[type(expr)](*args)


ELEMENTWISE = {
    sp.exp: math.exp,
    sp.log: math.log,
    sp.Abs: abs,
    sp.sign: lambda x: float(np.sign(x)),
    sp.floor: math.floor,
    sp.ceiling: math.ceil,
    sp.tanh: math.tanh,
    sp.cosh: math.cosh,
    sp.sinh: math.sinh,
    sp.Max: max,
    sp.Min: min,
    sp.Eq: lambda a, b: a == b,
    sp.Ne: lambda a, b: a != b,
    sp.Lt: lambda a, b: a < b,
    sp.Le: lambda a, b: a <= b,
    sp.Gt: lambda a, b: a > b,
    sp.Ge: lambda a, b: a >= b,
    sp.And: lambda *a: all(a),
    sp.Or: lambda *a: any(a),
    sp.Not: lambda a: not a,
    sp.ITE: lambda c, a, b: a if c else b,
}


def _tensor(expr: sp.Basic, values: dict, k: int):
    if isinstance(expr, sf.Vector):
        return float(expr.args[k])
    vector = np.array(
        [evaluate(expr.args[0], values, c) for c in range(values[WIDTH])], dtype=float
    )
    if isinstance(expr, sf.ReduceSum):
        return math.fsum(vector)
    if isinstance(expr, sf.ReduceMean):
        return math.fsum(vector) / values[WIDTH]
    if isinstance(expr, sf.ReduceMax):
        return vector.max()
    if isinstance(expr, sf.ReduceMin):
        return vector.min()
    if isinstance(expr, sf.LogSumExp):
        return math.log(math.fsum(np.exp(vector)))
    if isinstance(expr, sf.Softmax):
        return math.exp(vector[k]) / math.fsum(np.exp(vector))
    if isinstance(expr, sf.LogSoftmax):
        return vector[k] - math.log(math.fsum(np.exp(vector)))
    if isinstance(expr, sf.Normalize):
        return vector[k] / math.sqrt(math.fsum(vector**2))
    if isinstance(expr, sf.OneHot):
        return 1.0 if vector[k] == k else 0.0
    raise TypeError(type(expr).__name__)


def loss_value(spec, values: dict) -> float:
    """The per-sample loss, or the elementwise loss summed over the last axis."""
    if spec.per_sample:
        return evaluate(spec.expr, values, 0)
    return math.fsum(evaluate(spec.expr, values, c) for c in range(values[WIDTH]))


def points(spec, seed: int):
    rng = np.random.default_rng(seed)
    vectors = spec.expr.atoms(sf.Vector)
    width = len(next(iter(vectors)).args) if vectors else C
    for _ in range(3):
        y_true = rng.uniform(0.1, 0.9, width)
        if spec.expr.has(sf.OneHot):
            y_true = np.full(
                width, float(rng.integers(0, width))
            )  # a class id, the same along the axis
        yield {WIDTH: width, "y_true": y_true, "y_pred": rng.uniform(0.1, 0.9, width)}


def assert_gradient_matches_differences(source: str) -> None:
    spec = lossdsl.compile(source)
    gradient = spec.gradient()
    assert not gradient.has(sp.Derivative, sp.Subs), gradient
    for point in points(spec, seed=len(source)):
        values = {**spec.params, **point}
        y_pred = point["y_pred"]
        symbolic = [evaluate(gradient, values, j) for j in range(point[WIDTH])]
        numeric = []
        for j in range(point[WIDTH]):
            up, down = y_pred.copy(), y_pred.copy()
            up[j] += STEP
            down[j] -= STEP
            numeric.append(
                (
                    loss_value(spec, {**values, "y_pred": up})
                    - loss_value(spec, {**values, "y_pred": down})
                )
                / (2 * STEP)
            )
        np.testing.assert_allclose(
            symbolic, numeric, rtol=1e-5, atol=1e-6, err_msg=f"{source} at {point}"
        )


@pytest.mark.parametrize("source", PROGRAMS)
def test_the_gradient_is_the_derivative_of_the_loss(source):
    assert_gradient_matches_differences(source)


@pytest.mark.parametrize("name", library.names())
def test_the_gradient_of_every_bundled_loss_is_its_derivative(name):
    assert_gradient_matches_differences(library.source(name))


Y_TRUE, Y_PRED = sp.Symbol("y_true"), sp.Symbol("y_pred")


@pytest.mark.parametrize(
    "source, expected",
    [
        # an elementwise loss that reads a sum: every element's term reads it
        ("y_pred*sum(y_pred)", 2 * sf.ReduceSum(Y_PRED)),
        # the softmax cross-entropy: softmax(y_pred) sum(y_true) - y_true
        (
            "-sum(y_true*log_softmax(y_pred))",
            sf.ReduceSum(Y_TRUE) * sf.Softmax(Y_PRED) - Y_TRUE,
        ),
        (
            "-sum(y_true*log(softmax(y_pred)))",
            sf.ReduceSum(Y_TRUE) * sf.Softmax(Y_PRED) - Y_TRUE,
        ),
        # no reduction: SymPy's derivative as before
        ("e^2", 2 * Y_PRED - 2 * Y_TRUE),
    ],
    ids=["elementwise-reading-a-sum", "log_softmax", "log-of-softmax", "no-reduction"],
)
def test_the_gradient_in_closed_form(source, expected):
    gradient = lossdsl.compile(source).gradient()
    assert sp.expand(gradient - expected) == 0, gradient


def test_a_parameter_named_c_is_not_the_size_of_the_last_axis():
    # The gradient of a mean divides by the size of the last axis, `symfuncs.C`; a parameter named `C`
    # printed the same (`C*(2*y_pred - 2*y_true)/C`, two symbols that do not cancel). That size is
    # `C_` there, and `C__` where a parameter takes `C_` too.
    gradient = lossdsl.compile("param C = 2\nC*mean(e^2)").gradient()
    assert str(gradient) == "C*(2*y_pred - 2*y_true)/C_"
    assert sorted(s.name for s in gradient.free_symbols) == [
        "C",
        "C_",
        "y_pred",
        "y_true",
    ]
    size = next(s for s in gradient.free_symbols if s.name == "C_")
    assert (
        sp.expand(gradient.subs({sp.Symbol("C"): 2, size: 4}) - (Y_PRED - Y_TRUE)) == 0
    )
    gradient = lossdsl.compile("param C = 2\nparam C_ = 3\nC*C_*mean(e^2)").gradient()
    assert sorted(s.name for s in gradient.free_symbols) == [
        "C",
        "C_",
        "C__",
        "y_pred",
        "y_true",
    ]
    # without such a parameter it is `C`, `symfuncs.C` itself
    assert lossdsl.compile("param k = 2\nk*mean(e^2)").gradient().has(sf.C)


@pytest.mark.parametrize(
    "source",
    [
        "abs(y_pred^0.5)",
        "abs(sqrt(y_pred))",
        "abs(log(y_pred))",
        "abs(exp(y_pred) - 2)",
    ],
)
def test_the_gradient_of_abs_is_real(source):
    # Every value of a loss is real: |u|' is sign(u) u', without SymPy's re, im, arg or atan2.
    gradient = lossdsl.compile(source).gradient()
    assert not gradient.has(sp.re, sp.im, sp.arg, sp.atan2, sp.conjugate), gradient


@pytest.mark.parametrize(
    "source, expected",
    [
        ("y_pred * floor(sum(y_pred))", sp.floor(sf.ReduceSum(Y_PRED))),
        (
            "mean(floor(min(0.5 * y_pred)) * y_pred)",
            sp.floor(sf.ReduceMin(sp.Float(0.5) * Y_PRED)) / sf.C,
        ),
        ("y_pred * ceil(max(y_pred))", sp.ceiling(sf.ReduceMax(Y_PRED))),
        ("y_pred * sign(mean(y_pred))", sp.sign(sf.ReduceMean(Y_PRED))),
        ("y_pred * floor(y_pred) + e^2", sp.floor(Y_PRED) + 2 * Y_PRED - 2 * Y_TRUE),
        ("y_pred * sign(y_pred - 0.5)", sp.sign(Y_PRED - 0.5)),
    ],
)
def test_a_step_passes_no_gradient(source, expected):
    # Steps are flat almost everywhere, and TensorFlow's gradient of each is 0 (as of `round`).
    # The gradient of a step of a reduction was a LossInternalError ("Can't calculate
    # derivative wrt ReduceSum(y_pred)"); of an elementwise one, an unevaluated Derivative
    # (floor, ceil) or a DiracDelta (sign). Found by a helper's fuzzing.
    spec = lossdsl.compile(source)
    gradient = spec.gradient()
    assert sp.expand(gradient - expected) == 0, gradient
    assert not gradient.has(sp.Derivative, sp.DiracDelta)
    assert r"\frac{d}{d" not in spec.latex(
        gradient=True
    ) and r"\delta" not in spec.latex(gradient=True)
    assert_gradient_matches_differences(source)


def test_a_gradient_that_doubles_with_each_nested_softmax_is_a_limit_error():
    # Each softmax's vector-Jacobian product reads its upstream twice: 40 nested ones would be 2^40 terms.
    source = "sum(y_true*" + "softmax(" * 40 + "y_pred" + ")" * 40 + ")"
    spec = lossdsl.compile(source)
    with pytest.raises(
        lossdsl.LossLimitError, match="gradient of this loss would hold more than"
    ):
        spec.gradient()
    # The limit falls between 10 nested softmaxes and 11 (docs/decisions.md).
    nested = {
        n: "sum(y_true*" + "softmax(" * n + "y_pred" + ")" * n + ")" for n in (10, 11)
    }
    assert lossdsl.compile(nested[10]).gradient().has(sf.Softmax)
    with pytest.raises(lossdsl.LossLimitError):
        lossdsl.compile(nested[11]).gradient()


def test_a_sum_of_reductions_differentiates_each_stand_in_in_the_terms_that_hold_it(
    monkeypatch,
):
    # The whole sum was differentiated once for each of its reductions: 600 `max(k*y_pred)`, 9 s.
    from lossdsl import gradient as module

    sizes = []
    real = module.differentiated

    def counting(expr, symbol):
        sizes.append(len(sp.Add.make_args(expr)))
        return real(expr, symbol)

    monkeypatch.setattr(module, "differentiated", counting)
    source = " - ".join(f"max({k}*y_pred)" for k in range(1, 41))
    gradient = lossdsl.compile(source).gradient()
    # once for y_pred (the whole sum), once for each stand-in (its own term), once inside each max
    assert sizes[0] == 40 and sorted(sizes[1:]) == [1] * 80
    assert (
        gradient.count(sf.ReduceMax) == 80
    )  # each max's step reads it twice (gap and tie count)


def test_the_gradient_pass_counts_sizes_as_a_walk_does():
    from lossdsl.gradient import _Sizes

    a = sp.Symbol("a")
    shared = sp.exp(a) + sp.sin(a)
    for expr in (
        a,
        shared,
        shared * (shared + 1) ** 2,
        sf.ReduceSum(shared) * shared - a,
    ):
        assert _Sizes().of(expr) == sum(1 for _ in sp.preorder_traversal(expr))
