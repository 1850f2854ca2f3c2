"""Check: the loss depends on `y_pred`.

Judged on SymPy's canonical form, in which `y_pred - y_pred` has already
cancelled, and for a small polynomial in y_pred on its expansion, where
`(y_pred + 1)^2 - y_pred^2 - 2 y_pred` cancels too. (Numeric probing was
rejected: a loss such as `where(y_pred > 100, y_pred, 0)` is flat at any
finite set of sample points and still depends on y_pred.)
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, SymbolicLoss

# Expanded only up to this many nodes and this power: (a + b + c)^n has (n + 1)(n + 2)/2 terms.
MAX_EXPANDED_NODES = 200
MAX_EXPANDED_POWER = 12


def check_dependence(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """An error when the loss does not depend on y_pred."""
    result = resolved.result
    if Y_PRED in symbolic.core.free_symbols and not _cancels_when_expanded(symbolic.core):
        return []
    mentioned = resolved.of(result).pred
    reason = "its terms in y_pred cancel" if mentioned else "y_pred does not appear in it"
    return [
        Diagnostic(
            "error",
            f"the loss does not depend on y_pred ({reason}), so training cannot move the predictions",
            result.span.line,
            result.span.column,
            "no-prediction",
            result.span,
            resolved.source,
        )
    ]


def _cancels_when_expanded(expr: sp.Basic) -> bool:
    """`expr` is a small polynomial in y_pred whose expansion does not hold y_pred."""
    size = 0
    for node in sp.preorder_traversal(expr):
        size += 1
        if size > MAX_EXPANDED_NODES:
            return False
        if isinstance(node, sp.Pow) and not (node.exp.is_Integer and 0 < node.exp <= MAX_EXPANDED_POWER):
            return False
    if not (isinstance(expr, sp.Expr) and expr.is_polynomial(Y_PRED)):
        return False
    if _expanded_terms(expr) > MAX_EXPANDED_TERMS:
        # A product of powers of sums (`(e + 1)^9 (y_true + y_pred + 5)^9 ...`) expands to
        # millions of terms (15 s for five factors): too large to be a cancellation anyone wrote.
        return False
    return Y_PRED not in sp.expand(expr, power_base=False, power_exp=False, log=False).free_symbols


MAX_EXPANDED_TERMS = 5_000


def _expanded_terms(expr: sp.Basic) -> int:
    """An upper bound on the number of terms of `expr` expanded (a sum's add, a product's
    multiply), past MAX_EXPANDED_TERMS reported as just past it."""
    if isinstance(expr, sp.Add):
        total = sum(_expanded_terms(a) for a in expr.args)
    elif isinstance(expr, sp.Mul):
        total = 1
        for a in expr.args:
            total *= _expanded_terms(a)
            if total > MAX_EXPANDED_TERMS:
                break
    elif isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        base = _expanded_terms(expr.base)  # (a_1 + ... + a_n)^k has at most C(n + k - 1, k) terms
        total = math.comb(base + int(expr.exp) - 1, int(expr.exp)) if base < MAX_EXPANDED_TERMS else base
    else:
        total = 1
    return min(total, MAX_EXPANDED_TERMS + 1)
