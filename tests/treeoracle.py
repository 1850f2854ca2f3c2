"""A NumPy reading of a lossdsl program straight from its syntax tree: no SymPy, no rewrites.

`evaluate(resolved, y_true, y_pred)` computes the per-sample loss of a resolved program
(`spec.resolved`) node by node, each operation as NumPy computes it, in the dtype asked for
(float64, or `np.longdouble` to see how much float64's own rounding moves a value). It shares
only the parser and the name resolution with the compiler, so it finds what SymPy's forms, the
rewrites and the printers change (tests/test_differential.py). Not a test module: pytest
collects nothing from it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lossdsl import nodes
from lossdsl.semantics import BUILTIN_CONSTANTS


def _logsumexp(x):
    m = np.max(x, -1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return m + np.log(np.sum(np.exp(x - m), -1, keepdims=True))


def _softmax(x):
    z = np.exp(x - np.max(x, -1, keepdims=True))
    return z / np.sum(z, -1, keepdims=True)


def _erf(x):
    return np.vectorize(lambda v: type(v)(math.erf(v)))(x)


ELEMENTWISE = {
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "square": lambda x: x * x,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "erf": _erf,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "relu": lambda x: np.maximum(x, 0),
    "clip": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
}
# Over the last axis; each keeps it, so that the result broadcasts back along it.
OVER_THE_AXIS = {
    "sum": lambda x: np.sum(x, -1, keepdims=True),
    "mean": lambda x: np.mean(x, -1, keepdims=True),
    "max": lambda x: np.max(x, -1, keepdims=True),
    "min": lambda x: np.min(x, -1, keepdims=True),
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": lambda x: x - _logsumexp(x),
    "normalize": lambda x: (
        x / np.maximum(np.sqrt(np.sum(x * x, -1, keepdims=True)), 1e-7)
    ),
}
ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
COMPARISONS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def evaluate(resolved, y_true, y_pred, dtype=np.float64):
    """The per-sample loss of `resolved` (a `semantics.Resolved`, parameters at their defaults)."""
    y_true, y_pred = np.asarray(y_true, dtype), np.asarray(y_pred, dtype)
    shape = y_pred.shape
    params = {name: dtype(value) for name, value in resolved.params.items()}
    bound: dict[str, object] = {}

    def spread(x):
        x = np.asarray(x, dtype)
        return (
            x if x.ndim == 1 else np.broadcast_to(x, shape)
        )  # (a list keeps its own length)

    def name(node):
        kind, name = resolved.refs[id(node)]
        if kind == "input":
            return y_true if name == "y_true" else y_pred
        if kind == "param":
            return params[name]
        if kind == "binding":
            if name not in bound:
                bound[name] = value(resolved.bindings[name].value)
            return bound[name]
        if name == "e":
            return y_true - y_pred
        return dtype(math.pi if name == "pi" else BUILTIN_CONSTANTS[name])

    def call(node):
        if node.func == "where":
            return np.where(*[value(a) for a in node.args])
        if node.func == "onehot":
            return np.eye(shape[-1], dtype=dtype)[
                y_true.reshape(shape[:-1]).astype(int)
            ]
        args = [value(a) for a in node.args]
        if node.func in ("max", "min") and len(args) > 1:
            return functools.reduce(
                np.maximum if node.func == "max" else np.minimum, args
            )
        if node.func in OVER_THE_AXIS:
            return OVER_THE_AXIS[node.func](spread(args[0]))
        return ELEMENTWISE[node.func](
            *[dtype(a) if np.ndim(a) == 0 else a for a in args]
        )

    def value(node):
        kind = type(node)
        if kind is nodes.Number:
            return dtype(node.value)
        if kind is nodes.Name:
            return name(node)
        if kind is nodes.Unary:
            operand = value(node.operand)
            return -operand if node.op == "-" else operand
        if kind is nodes.Chain:
            result = value(node.operands[0])
            for op, operand in zip(node.ops, node.operands[1:], strict=True):
                result = ARITHMETIC[op](result, value(operand))
            return result
        if kind is nodes.Power:
            base = value(node.base)
            return np.power(
                dtype(base) if np.ndim(base) == 0 else base, value(node.exponent)
            )
        if kind is nodes.Compare:
            return COMPARISONS[node.op](value(node.left), value(node.right))
        if kind is nodes.BoolOp:
            combine = np.logical_and if node.op == "and" else np.logical_or
            return functools.reduce(combine, [value(o) for o in node.operands])
        if kind is nodes.Not:
            return np.logical_not(value(node.operand))
        if kind is nodes.Vector:
            return np.array(
                [np.asarray(value(item), dtype) for item in node.items], dtype
            )
        if kind is nodes.Call:
            return call(node)
        raise TypeError(f"no value for {node!r}")

    with np.errstate(all="ignore"):
        result = np.broadcast_to(np.asarray(value(resolved.result), dtype), shape)
        return result[..., 0] if resolved.per_sample else np.mean(result, -1)
