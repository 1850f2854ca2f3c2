"""A float evaluator for SymPy trees of lossdsl's elementwise functions.

The checks sample expressions at points (boundaries of `where`, dependence
probes). This walks the tree with Python's `math`: no code generation, no
`lambdify`. Tensor operations raise `Unsupported`; domain errors give NaN.
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import symfuncs as sf
from lossdsl.functions import float_sigmoid, float_softplus


class Unsupported(Exception):
    """The expression holds an operation this evaluator does not compute."""


def _heaviside(x: float) -> float:
    return 1.0 if x > 0 else (0.0 if x < 0 else 0.5)


UNARY = {
    sp.exp: math.exp,
    sp.log: math.log,
    sp.Abs: abs,
    sp.sin: math.sin,
    sp.cos: math.cos,
    sp.tan: math.tan,
    sp.sinh: math.sinh,
    sp.cosh: math.cosh,
    sp.tanh: math.tanh,
    sp.asin: math.asin,
    sp.acos: math.acos,
    sp.atan: math.atan,
    sp.erf: math.erf,
    sp.sign: lambda x: float((x > 0) - (x < 0)),
    sp.floor: math.floor,
    sp.ceiling: math.ceil,
    sp.Heaviside: _heaviside,
    sf.Sigmoid: float_sigmoid,
    sf.Softplus: float_softplus,
    sf.Relu: lambda x: max(x, 0.0),
    sf.Log1p: math.log1p,
    sf.Expm1: math.expm1,
    sf.Round: round,
}

RELATIONS = {
    sp.StrictLessThan: lambda a, b: a < b,
    sp.LessThan: lambda a, b: a <= b,
    sp.StrictGreaterThan: lambda a, b: a > b,
    sp.GreaterThan: lambda a, b: a >= b,
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
}


def evaluate(expr: sp.Basic, env: dict[sp.Symbol, float]) -> float:
    """The value of `expr` with its symbols set from `env` (NaN outside a domain)."""
    try:
        return float(_eval(expr, env))
    except (ValueError, ZeroDivisionError):
        return math.nan
    except OverflowError:
        return math.inf


def _eval(expr, env):
    if expr.is_Symbol:
        if expr not in env:
            raise Unsupported(f"no value for {expr}")
        return env[expr]
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        return float(expr)
    if expr is sp.true:
        return True
    if expr is sp.false:
        return False
    func = expr.func
    if func is sp.Add:
        return math.fsum(_eval(a, env) for a in expr.args)
    if func is sp.Mul:
        result = 1.0
        for a in expr.args:
            result *= _eval(a, env)
        return result
    if func is sp.Pow:
        base, exponent = (_eval(a, env) for a in expr.args)
        if base == 0 and exponent < 0:
            return math.inf
        return math.pow(base, exponent)
    if func in UNARY:
        return UNARY[func](_eval(expr.args[0], env))
    if func is sp.Max:
        return max(_eval(a, env) for a in expr.args)
    if func is sp.Min:
        return min(_eval(a, env) for a in expr.args)
    if func is sf.Clip:
        x, lo, hi = (_eval(a, env) for a in expr.args)
        return min(max(x, lo), hi)
    if func is sp.Piecewise:
        for value, cond in expr.args:
            if _eval(cond, env):
                return _eval(value, env)
        return math.nan
    if func in RELATIONS:
        return RELATIONS[func](_eval(expr.args[0], env), _eval(expr.args[1], env))
    if func is sp.And:
        return all(_eval(a, env) for a in expr.args)
    if func is sp.Or:
        return any(_eval(a, env) for a in expr.args)
    if func is sp.Not:
        return not _eval(expr.args[0], env)
    raise Unsupported(f"cannot evaluate {func}")
