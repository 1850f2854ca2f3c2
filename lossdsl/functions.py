"""The builtin functions: one table of name, arity, kind, smoothness, SymPy builder and folder.

`kind` is one of:

* "elementwise": same shape in, same shape out;
* "reduction": one value per sample (over the last axis);
* "vector": a vector function over the last axis (same shape out);
* "labels": `onehot(y_true)`;
* "where": `where(cond, a, b)`, the one place a condition may stand.

`max` and `min` are reductions with one argument and elementwise with two or
more. `smooth` is "smooth", "kink" (continuous, with a kink) or "step"
(zero derivative almost everywhere). `fold` computes the function on Python
floats for constant folding (None where there is nothing to fold).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from lossdsl import construct, hyperbolic
from lossdsl import symfuncs as sf


@dataclass(frozen=True)
class Function:
    """One builtin function."""

    name: str
    min_args: int
    max_args: int | None
    kind: str
    smooth: str
    build: Callable[..., sp.Expr]
    fold: Callable[..., float] | None = None
    doc: str = ""

    def arity_text(self) -> str:
        """How many arguments the function takes, in words."""
        if self.max_args == self.min_args:
            n = self.min_args
            return f"{n} argument{'s' if n != 1 else ''}"
        if self.max_args is None:
            return f"{self.min_args} or more arguments"
        return f"{self.min_args} to {self.max_args} arguments"


def float_sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def float_softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def float_sign(x: float) -> float:
    return float((x > 0) - (x < 0))


def _elementwise(name, build, fold, smooth="smooth", n=1, doc=""):
    return Function(name, n, n, "elementwise", smooth, build, fold, doc)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _elementwise("abs", construct.absolute, abs, "kink"),
        _elementwise("exp", sp.exp, math.exp),
        # HAZARD: log of a value that can reach 0 gives -inf; see checks/domain.py.
        _elementwise("log", sp.log, math.log),
        _elementwise("log1p", sf.Log1p, math.log1p),
        _elementwise("expm1", sf.Expm1, math.expm1),
        # HAZARD: the gradient of sqrt is infinite at 0.
        _elementwise("sqrt", sp.sqrt, math.sqrt),
        _elementwise("square", lambda x: x**2, lambda x: x * x),
        _elementwise("sin", sp.sin, math.sin),
        _elementwise("cos", sp.cos, math.cos),
        _elementwise("tan", sp.tan, math.tan),
        _elementwise("sinh", hyperbolic.sinh, math.sinh),
        _elementwise("cosh", hyperbolic.cosh, math.cosh),
        _elementwise("tanh", hyperbolic.tanh, math.tanh),
        _elementwise("arcsin", sp.asin, math.asin),
        _elementwise("arccos", sp.acos, math.acos),
        _elementwise("arctan", sp.atan, math.atan),
        _elementwise("erf", sp.erf, math.erf),
        _elementwise("sigmoid", sf.Sigmoid, float_sigmoid),
        _elementwise("softplus", sf.Softplus, float_softplus),
        _elementwise("relu", sf.Relu, lambda x: max(x, 0.0), "kink"),
        _elementwise(
            "clip", sf.Clip, lambda x, lo, hi: min(max(x, lo), hi), "kink", n=3
        ),
        _elementwise(
            "pow",
            lambda a, b: sp.Integer(1) if b.is_Number and b.is_zero else a**b,
            math.pow,
            n=2,
        ),
        _elementwise("maximum", construct.maximum, max, "kink", n=2),
        _elementwise("minimum", construct.minimum, min, "kink", n=2),
        Function("max", 1, None, "elementwise", "kink", construct.maximum, max),
        Function("min", 1, None, "elementwise", "kink", construct.minimum, min),
        # Step functions parse so that the compiler can explain why they are rejected.
        _elementwise("sign", sp.sign, float_sign, "step"),
        _elementwise("floor", sp.floor, math.floor, "step"),
        _elementwise("ceil", sp.ceiling, math.ceil, "step"),
        _elementwise("round", sf.Round, round, "step"),
        Function("sum", 1, 1, "reduction", "smooth", sf.ReduceSum),
        Function("mean", 1, 1, "reduction", "smooth", sf.ReduceMean),
        Function("logsumexp", 1, 1, "reduction", "smooth", sf.LogSumExp),
        Function("softmax", 1, 1, "vector", "smooth", sf.Softmax),
        Function("log_softmax", 1, 1, "vector", "smooth", sf.LogSoftmax),
        Function("normalize", 1, 1, "vector", "smooth", sf.Normalize),
        Function("onehot", 1, 1, "labels", "smooth", sf.OneHot),
        Function("where", 3, 3, "where", "step", construct.where),
    )
}

# One-argument `max` and `min` reduce over the last axis.
REDUCING_FORMS = {"max": sf.ReduceMax, "min": sf.ReduceMin}


def kind_of(name: str, nargs: int) -> str:
    """The kind of a call of `name` with `nargs` arguments."""
    if name in REDUCING_FORMS and nargs == 1:
        return "reduction"
    return FUNCTIONS[name].kind


def builder(name: str, nargs: int) -> Callable[..., sp.Expr]:
    """The SymPy builder for a call of `name` with `nargs` arguments."""
    if name in REDUCING_FORMS and nargs == 1:
        return REDUCING_FORMS[name]
    return FUNCTIONS[name].build
