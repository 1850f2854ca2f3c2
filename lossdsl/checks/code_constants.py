"""Check: the loss as the code computes it holds only real constants.

The stable rewrites (rewrites.py) write `log(1 + x)` as `log1p(x)`, `exp(x) - 1`
as `expm1(x)`, `log(sigmoid(x))` as `-softplus(-x)`, and so on. Where a program
spells one function both ways, SymPy sees two functions in its own form and
one in the code's, so a difference of the two spellings is 0 there: a division
by it is `zoo` (`y_pred / (log(1 + y_pred) - log1p(y_pred))`), which no code can
compute. The front end folds a division by a constant 0 that SymPy sees
(`LossLimitError`, "division by the constant 0"); this is the same error for
one that only the code's form shows. The loss as a whole cancelling there is
the dependence check's (checks/dependence.py).
"""

from __future__ import annotations

import sympy as sp

from lossdsl import subtrees
from lossdsl import symfuncs as sf
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import inlined_code_form, reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import SymbolicLoss

_NOT_REAL = (sp.S.ComplexInfinity, sp.S.NaN, sp.S.Infinity, sp.S.NegativeInfinity)


def check_code_constants(
    resolved: Resolved, symbolic: SymbolicLoss
) -> list[Diagnostic]:
    """An error when the code's form of the loss, through the bindings it reads, holds zoo, nan or
    oo; placed at the first binding that holds one, or at the loss."""
    statements, result = reshared_stable_form(symbolic)  # as the emitter re-shares them
    # binding symbol -> (index of the first statement that holds one, the constant, the user's binding
    # there: "" for one the rewrites made, whose value a user's later binding reads)
    holding: dict[sp.Symbol, tuple[int, sp.Basic, str]] = {}
    for index, (name, symbol, value) in enumerate(statements):
        constant = _not_real(value)
        held = (
            (index, constant, name) if constant is not None else _first(holding, value)
        )
        if held is not None:
            # (a user's binding that reads a rewrite's holds it itself, at its own place)
            holding[symbol] = held if held[2] else (index, held[1], name)
    constant = _not_real(result)
    where = ""
    if constant is None:
        read = _first(holding, result)
        if read is not None:
            _, constant, where = read
    if constant is None:
        # through the bindings: `d = log(1 + y_pred) - log1p(y_pred)` is 0, and `y_pred / d` divides
        # by it; `a - b` of two bindings that spell one function is 0 in the code too
        inlined = inlined_code_form(symbolic)
        # (only the infinite ones: the code prints the bindings, not this form, and a root of a
        # rounding residue here may be an exact 0 there, `a = log(cosh(y_pred))`, `b = y_pred +
        # softplus(-2*y_pred) - log(2)`, `sqrt(a - b)`: both subtract the same float; the change review)
        constant = None if inlined is None else _not_real(inlined, complex_too=False)
        if constant is None:
            return []
    statement = resolved.bindings.get(where) if where else None
    span = statement.span if statement is not None else resolved.result.span
    what = (
        "division by, or the logarithm of, the constant 0"
        if constant in _NOT_REAL
        else "a root or logarithm of a constant below 0"
    )
    return [
        Diagnostic.at(
            "error",
            "limit",
            f"{what} once the code writes the loss's terms"
            " in their stable forms (`log(1 + x)` as `log1p(x)`, `exp(x) - 1` as `expm1(x)`, ...),"
            " where two spellings of one function cancel: the code would hold"
            f" {constant}, which is not a real number",
            span,
            resolved.source,
        )
    ]


def _first(holding: dict, expr: sp.Basic) -> tuple | None:
    """Of the bindings `expr` reads that hold a constant, the entry of the earliest statement."""
    read = [holding[s] for s in expr.free_symbols if s in holding]
    return min(read, key=lambda entry: (entry[0], entry[2])) if read else None


def _not_real(expr: sp.Basic, complex_too: bool = True):
    """The first of zoo, nan, oo, -oo that `expr` holds, or else (`complex_too`) a constant root or
    logarithm in it that is not a real number, or None."""
    if not expr.has(*_NOT_REAL):
        return _complex_constant(expr) if complex_too else None
    for constant in _NOT_REAL:
        if expr.has(constant):
            return constant
    return None


def _complex_constant(expr: sp.Basic) -> sp.Basic | None:
    """The first constant part of `expr` (in the order of its arguments) that is not a real number:
    a fractional power or a logarithm of a number below 0, which the printer cannot write as a float
    (`KerasEmitError`). The cancelled difference of two spellings is a rounding error, 0 or just
    below: `sqrt(0.693147180559945 - log(2))` of `log(cosh(x))` written beside its rewrite, where the
    front end folded one `log(2)` to a float and the rewrite keeps it exact; a log of it is SymPy's
    `log(...) + I*pi` (a review). Walked once per distinct part, down to the constants."""
    if not expr.has(sp.Pow, sp.log, sp.I):
        return None
    for node in subtrees.preorder(expr, descend=lambda node: not sf.is_literal(node)):
        if sf.is_literal(node) and (
            node.has(sp.I) or (node.has(sp.Pow, sp.log) and not _real(node))
        ):
            return node
    return None


def _real(number: sp.Expr) -> bool:
    try:
        float(sp.N(number))
    except (TypeError, ValueError):
        return False
    return True
