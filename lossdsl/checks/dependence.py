"""Check: the loss depends on `y_pred`.

Judged on SymPy's canonical form, in which `y_pred - y_pred` has already
cancelled, and for a small polynomial in y_pred on its expansion, where
`(y_pred + 1)^2 - y_pred^2 - 2 y_pred` cancels too: an error. An identity
SymPy does not apply (`sin(y_pred)^2 + cos(y_pred)^2`, `sigmoid(y_pred) +
sigmoid(-y_pred)`) is found by evaluating the loss at y_pred from -1e9 to 1e9:
the same value at every point is a warning, not an error, since a loss flat
at any finite set of points may still depend on y_pred (`where(y_pred > 1e10,
y_pred, 0)`).
"""

from __future__ import annotations

import contextlib
import math

import sympy as sp

from lossdsl.checks.numeric import Unsupported, compiled
from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss

# Expanded only up to this many nodes and this power: (a + b + c)^n has (n + 1)(n + 2)/2 terms.
MAX_EXPANDED_NODES = 200
MAX_EXPANDED_POWER = 12


def check_dependence(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """An error when the loss does not depend on y_pred; a warning when it looks constant."""
    result = resolved.result
    if Y_PRED in symbolic.core.free_symbols and not _cancels_when_expanded(symbolic.core):
        if not _looks_constant(symbolic):
            return []
        return [
            Diagnostic(
                "warning",
                f"the loss has the same value at all {len(PROBE_PREDICTIONS)} values of y_pred tried"
                " (from -1e9 to 1e9, for several y_true and parameter values): it looks constant in"
                " y_pred (terms that cancel?), so training cannot move the predictions",
                result.span.line,
                result.span.column,
                "no-prediction",
                result.span,
                resolved.source,
            )
        ]
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


# The values of y_pred at which a loss is evaluated, for each of the y_true values and parameter
# shifts below; both signs, from far below 1 to far above, and the values of a probability.
PROBE_PREDICTIONS = tuple(
    sign * x
    for x in (0.0, 1e-6, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0, 1.5, 2.0, 3.0, 7.0, 30.0, 1e3, 1e6, 1e9)
    for sign in ((1.0,) if x == 0 else (1.0, -1.0))
)
PROBE_TRUES = (0.0, 1.0, 0.4, -1.3, 2.7)
# ... and each number the program holds (a parameter's default among them), and it plus and
# minus 0.5: a loss may be flat in y_pred except where y_true passes one (`where(y_true > 3, ...)`,
# `where(y_true == k, ...)`).
PROBE_OFFSETS = (0.0, 0.5, -0.5)
# A (y_true, parameters) pair shows a loss flat only with this many finite values.
MIN_FINITE = 3
PARAM_SHIFTS = (0.0, 0.37)
# A probe stops at the first two values that differ (at once for almost every loss); a loss that
# looks constant costs every point: at most this many node evaluations in all (a larger program
# that looks constant is not reported).
MAX_PROBE_EVALUATIONS = 100_000
# Values this close, relative to the largest of them and of the loss's terms, are the same value
# up to rounding (`softplus(x) - softplus(-x) - x` is 1.4e-15 off 0 at x = 30, with terms of 30);
# `1e13 + sigmoid(y_pred)` varies by 0.5, more than 1e-14 of 1e13.
SAME_VALUE = 1e-14
# Targets taken from the program's numbers and comparisons, at most (each costs a pass of the probe).
MAX_THRESHOLDS = 24


def _looks_constant(symbolic: SymbolicLoss) -> bool:
    """True if, for each y_true and parameter value tried, the loss has one value (up to rounding)
    at every y_pred in PROBE_PREDICTIONS where it is finite, and at MIN_FINITE of them at least
    for one of those.

    False too where the probe cannot tell: an operation over the last axis, no finite value, or
    a program too large to evaluate everywhere within MAX_PROBE_EVALUATIONS.
    """
    expr = symbolic.core
    params = list(symbolic.params.values())
    if not expr.free_symbols <= {Y_TRUE, Y_PRED, *params}:
        return False
    size = 0
    for _ in sp.preorder_traversal(expr):
        size += 1
        if size > MAX_PROBE_EVALUATIONS // 20:
            return False  # not even 20 points within the budget
    budget = MAX_PROBE_EVALUATIONS
    value_at = compiled(expr)
    # Each term of the sum too: rounding scales with the largest of them (`100 sigmoid(x) +
    # 100 sigmoid(-x) - 100` is 100 times 1e-16 off 0).
    terms = [compiled(term) for term in sp.Add.make_args(expr)] if isinstance(expr, sp.Add) else []
    size *= 2 if terms else 1
    defaults = [float(v) for v in symbolic.resolved.params.values()]
    env = {symbol: default for symbol, default in zip(params, defaults, strict=True)}
    trues = sorted({*PROBE_TRUES, *(t + d for t in _thresholds(expr, env) for d in PROBE_OFFSETS)})
    flat = False
    try:
        for shift in PARAM_SHIFTS:
            env = {symbol: default + shift for symbol, default in zip(params, defaults, strict=True)}
            for y_true in trues:
                env[Y_TRUE] = y_true
                first, finite = None, 0
                for y_pred in PROBE_PREDICTIONS:
                    env[Y_PRED] = y_pred
                    budget -= size
                    if budget < 0:
                        return False
                    value = value_at(env)
                    if not math.isfinite(value):
                        continue
                    finite += 1
                    scale = max([abs(value), *(abs(term(env)) for term in terms)])
                    if first is None:
                        first, first_scale = value, scale
                    elif abs(value - first) > SAME_VALUE * max(scale, first_scale, abs(first)):
                        return False
                flat = flat or finite >= MIN_FINITE
    except Unsupported:
        return False
    return flat


def _thresholds(expr: sp.Basic, env: dict) -> list[float]:
    """Targets where a loss flat elsewhere may change: the numbers of the program, with both signs
    (SymPy writes `y_true - 7` as `y_true + (-7)`), and the sides of its comparisons that hold
    neither y_true nor y_pred (`y_true > 2 k`), at the parameters' defaults; at most
    MAX_THRESHOLDS of them, the comparisons' first."""
    found: list[float] = []
    for relation in expr.atoms(sp.Rel):
        for side in relation.args:
            if not side.has(Y_TRUE, Y_PRED):
                with contextlib.suppress(Unsupported, TypeError, ValueError, OverflowError):
                    found.append(compiled(side)(env))
    found += [float(n) for n in expr.atoms(sp.Number) if n.is_finite]
    found += list(env.values())
    signed = dict.fromkeys(x for value in found if math.isfinite(value) and abs(value) < 1e300 for x in (value, -value))
    return list(signed)[:MAX_THRESHOLDS]
