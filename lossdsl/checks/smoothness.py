"""Check: kinks are noted; a `where` whose branches disagree at its boundary is a warning.

A kink (`abs`, `relu`, `max`, `min`, `maximum`, `minimum`, `clip` of
something that moves with y_pred) is fine for training and only noted. A
jump is worse: the gradient cannot see it. For `where(l op r, a, b)` the
check finds points on the boundary `l = r` numerically (bisection along
y_pred, or along y_true when the boundary does not move with y_pred) and
compares the two branches there.
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import nodes
from lossdsl.checks.numeric import Unsupported, evaluate
from lossdsl.errors import Diagnostic
from lossdsl.functions import FUNCTIONS
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

_GRID = [x / 4 for x in range(-40, 41)]
_OTHERS = (-1.3, 0.0, 0.4, 1.0, 2.7)


def check_smoothness(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """Notes for kinks in y_pred, warnings for `where` jumps."""
    found: list[Diagnostic] = []
    seen: set[int] = set()
    stack: list[nodes.Node] = [resolved.result, *(st.value for st in resolved.bindings.values())]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.children)
        if not isinstance(node, nodes.Call) or node.func not in FUNCTIONS:
            continue
        info = resolved.of(node)
        if not (info.ok and info.live):
            continue
        if FUNCTIONS[node.func].smooth == "kink":
            found.append(_note(resolved, node))
        if node.func == "where":
            jump = _jump(resolved, symbolic, node)
            if jump:
                found.append(jump)
    return found


def _note(resolved: Resolved, node: nodes.Call) -> Diagnostic:
    span = node.span
    message = (
        f"`{resolved.text(node)}` has a kink: its gradient changes abruptly there"
        " (usually fine for training; a smooth alternative avoids it)"
    )
    return Diagnostic("note", message, span.line, span.column, "kink", span, resolved.source)


def _jump(resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Call) -> Diagnostic | None:
    cond, a, b = node.args
    if not isinstance(cond, nodes.Compare):
        return None
    try:
        gap = node_expr(symbolic, cond.left) - node_expr(symbolic, cond.right)
        diff = node_expr(symbolic, a) - node_expr(symbolic, b)
        point = _boundary_jump(symbolic, gap, diff)
    except (Unsupported, TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    if point is None:
        return None
    span = node.span
    t, p, size = point
    message = (
        f"`{resolved.text(node)}` jumps by {size:.3g} where `{resolved.text(cond)}` flips"
        f" (e.g. at y_true={t:.3g}, y_pred={p:.3g}); the gradient cannot see the jump,"
        " so make both branches agree at the boundary"
    )
    return Diagnostic("warning", message, span.line, span.column, "jump", span, resolved.source)


def _boundary_jump(symbolic: SymbolicLoss, gap: sp.Expr, diff: sp.Expr):
    """A (y_true, y_pred, |jump|) on the boundary gap == 0 where diff is not 0, or None."""
    env = {s: float(v) for s, v in zip(symbolic.params.values(), symbolic.resolved.params.values())}
    free = gap.free_symbols
    if Y_PRED in free:
        axis, other = Y_PRED, Y_TRUE
    elif Y_TRUE in free:
        axis, other = Y_TRUE, Y_PRED
    else:
        return None
    for fixed in _OTHERS:
        env[other] = fixed
        for root in _roots(gap, axis, env):
            env[axis] = root
            size = abs(evaluate(diff, env))
            scale = 1.0 + abs(root) + abs(fixed)
            if math.isfinite(size) and size > 1e-6 * scale:
                return (env[Y_TRUE], env[Y_PRED], size)
    return None


def _roots(gap: sp.Expr, axis: sp.Symbol, env: dict) -> list[float]:
    values = []
    for x in _GRID:
        env[axis] = x
        values.append(evaluate(gap, env))
    roots = []
    for (x0, g0), (x1, g1) in zip(zip(_GRID, values), zip(_GRID[1:], values[1:])):
        if not (math.isfinite(g0) and math.isfinite(g1)):
            continue
        if g0 == 0:
            roots.append(x0)
        elif g0 * g1 < 0:
            lo, hi, glo = x0, x1, g0
            for _ in range(60):
                mid = (lo + hi) / 2
                env[axis] = mid
                gm = evaluate(gap, env)
                if not math.isfinite(gm):
                    break
                if (gm < 0) == (glo < 0):
                    lo, glo = mid, gm
                else:
                    hi = mid
            roots.append((lo + hi) / 2)
        if len(roots) >= 3:
            break
    return roots
