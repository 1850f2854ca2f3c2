"""Check: no dead terms.

A term is dead when it depends on y_pred only through step functions
(`sign`, `floor`, `ceil`, `round`, a power of 0: `0^x` is 0, 1 or inf) or
through a `where` whose branches do not depend on y_pred: its derivative with
respect to y_pred is zero almost everywhere, so it adds nothing to the gradient. Terms are found by walking
down from the loss through sums, differences, signs, `sum`/`mean`,
bindings and the branches of `where`; the maximal dead term is reported,
pointing at the step that kills it, with a smooth surrogate to use instead.

So is a term that reads y_pred only through pieces that are constant over every
value their arguments can take (interval arithmetic, every parameter anywhere):
`relu(x)` of an `x <= 0`, `maximum(x, c)` of an `x <= c`, `minimum` likewise,
`clip(x, lo, hi)` of an `x` outside `[lo, hi]` or with `lo >= hi`, and a `where`
whose condition holds everywhere or nowhere (`sigmoid(y_pred) > 2`), taking a
branch that does not read y_pred.
"""

from __future__ import annotations

import sympy as sp

from lossdsl import nodes
from lossdsl.checks.domain import value_ranges
from lossdsl.checks.intervals import Interval, compared, extreme, settles
from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, SymbolicLoss, node_expr

# Step functions, the smooth surrogate each one suggests ({x} is the argument, {operand} the
# argument in brackets unless a name, number or call) and a remark.
SURROGATES = {
    "sign": ("tanh({operand} / 0.1)", ""),
    "floor": ("{x}", " (or a straight-through estimator)"),
    "ceil": ("{x}", " (or a straight-through estimator)"),
    "round": ("{x}", " (or a straight-through estimator)"),
}
_LINEAR_CALLS = ("sum", "mean")
# Pieces that are constant where their arguments keep to one side (`_flat`).
_CAPPED = ("relu", "clip", "maximum", "minimum", "max", "min")
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def check_dead_terms(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """An error for the loss, or each of its terms, whose gradient is zero almost everywhere.

    A term that reads y_pred outside conditions only until SymPy cancels it (`where(y_pred > 0.5,
    y_pred - y_pred, 2)`) is dead too: it is judged on its SymPy form in `symbolic`."""
    found: list[Diagnostic] = []
    seen: set[int] = set()
    flat = _FlatPieces(resolved)
    stack: list[nodes.Node] = [resolved.result]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        info = resolved.of(node)
        if not info.ok:
            continue
        if info.pred and not info.live:
            found.append(_dead(resolved, node, whole=node is resolved.result))
            continue
        culprit = _flat_once_simplified(resolved, symbolic, node) if info.pred else None
        if culprit is None and info.pred:
            culprit = flat.culprit(node)
        if culprit is not None:
            whole = node is resolved.result
            found.append(_dead(resolved, node, whole, culprit, flat.decided))
            continue
        stack.extend(reversed(_terms(resolved, node)))
    return found


class _FlatPieces:
    """The `relu`, `clip`, `maximum` and `minimum` calls of a program that are constant over every
    value their arguments take, and whether y_pred reaches a node other than through them."""

    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        calls = [n for n in nodes.walk(resolved.program) if isinstance(n, nodes.Call)]
        capped = [n for n in calls if n.func in _CAPPED and resolved.of(n).pred]
        switches = [
            n for n in calls if n.func == "where" and resolved.of(n.args[0]).pred
        ]
        ranges = value_ranges(resolved) if capped or switches else None
        self.flat = {id(n) for n in capped if _flat(resolved, n, ranges)}
        # A `where` whose condition holds everywhere or nowhere: whether it holds, and the branch
        # taken; flat where that branch does not read y_pred (`e^2 + where(sigmoid(y_pred) > 2,
        # y_pred, 1)` is `e^2 + 1`, and passed; a review of the language).
        self.decided: dict[int, tuple[bool, nodes.Node]] = {}
        for n in switches:
            holds = _truth(resolved, n.args[0], ranges)
            if holds is not None:
                taken = n.args[1] if holds else n.args[2]
                self.decided[id(n)] = (holds, taken)
                if not resolved.of(taken).pred:
                    self.flat.add(id(n))
        self._live: dict[int, bool] = {}

    def culprit(self, node: nodes.Node) -> nodes.Call | None:
        """The first flat piece in `node` where y_pred reaches `node` through no other differentiable path."""
        if not self.flat or self.live(node):
            return None
        return next(p for p in self.r.parts_reading_pred(node) if id(p) in self.flat)

    def live(self, node: nodes.Node) -> bool:
        """y_pred reaches `node` through a differentiable path that passes no flat piece."""
        key = id(node)
        if key not in self._live:
            self._live[key] = (
                False  # (a cycle cannot occur: bindings read only earlier ones)
            )
            info = self.r.of(node)
            if key in self.flat or not info.live:
                live = False
            elif isinstance(node, nodes.Name):
                value = self.r.binding_value(node)
                live = True if value is None else self.live(value)
            elif isinstance(node, nodes.Call) and node.func == "where":
                decided = self.decided.get(key)
                taken = node.args[1:] if decided is None else decided[1:]
                live = any(self.live(branch) for branch in taken)
            elif node.children:
                live = any(self.live(child) for child in node.children)
            else:
                live = True
            self._live[key] = live
        return self._live[key]


def _truth(resolved: Resolved, cond: nodes.Node, ranges, depth: int = 0) -> bool | None:
    """Whether `cond` holds for every input and parameter value (True), for none (False), or
    neither (None), by the ranges of its comparisons' sides, through condition bindings, `not`,
    `and` and `or`."""
    if depth > 50:
        return None
    if isinstance(cond, nodes.Name):
        value = resolved.binding_value(cond)
        return None if value is None else _truth(resolved, value, ranges, depth + 1)
    if isinstance(cond, nodes.Not):
        inner = _truth(resolved, cond.operand, ranges, depth + 1)
        return None if inner is None else not inner
    if isinstance(cond, nodes.Compare):
        return compared(cond.op, ranges(cond.left), ranges(cond.right))
    if isinstance(cond, nodes.BoolOp):
        parts = [_truth(resolved, o, ranges, depth + 1) for o in cond.operands]
        # an `or` with a true operand holds; an `and` with a false one fails
        decisive = cond.op == "or"
        if decisive in parts:
            return decisive
        return None if None in parts else not decisive
    return None


def _flat(resolved: Resolved, call: nodes.Call, ranges) -> bool:
    """`call` (a relu, clip, maximum or minimum) is constant over every value its arguments take."""
    reads = [resolved.of(a).pred for a in call.args]
    spans: list[Interval] = [ranges(a) for a in call.args]
    if call.func == "relu":
        return spans[0].hi <= 0
    if call.func == "clip" and len(spans) == 3 and reads == [True, False, False]:
        x, lo, hi = spans
        return lo.lo >= hi.hi or x.hi <= lo.lo or x.lo >= hi.hi
    if call.func == "clip" or len(spans) < 2 or all(reads):
        return False
    # the arguments that do not read y_pred always win over those that do
    constant = extreme(
        call.func, [s for s, pred in zip(spans, reads, strict=True) if not pred]
    )
    varying = extreme(
        call.func, [s for s, pred in zip(spans, reads, strict=True) if pred]
    )
    return settles(call.func, constant, varying)


def _flat_once_simplified(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Node
) -> nodes.Node | None:
    """The `where` condition or power of 0 in `node` that reads y_pred, where the SymPy form of
    `node` reads y_pred nowhere else (or None)."""
    culprit = _deciding_where(resolved, node) or _zero_power(resolved, symbolic, node)
    if culprit is None:
        return None
    expr = node_expr(symbolic, node)
    stack, seen = [expr], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue  # a shared part (bindings that double): once
        seen.add(current)
        if current == Y_PRED:
            return None
        if isinstance(current, sp.logic.boolalg.Boolean) or (
            isinstance(current, sp.Pow) and current.base.is_zero
        ):
            continue  # a condition, a power of 0: flat in y_pred almost everywhere
        if isinstance(current, sp.functions.elementary.piecewise.ExprCondPair):
            stack.append(current.expr)
            continue
        stack.extend(current.args)
    return culprit if Y_PRED in expr.free_symbols else None


def _deciding_where(resolved: Resolved, node: nodes.Node) -> nodes.Call | None:
    """The first `where` in `node` (through bindings) whose condition reads y_pred, or None."""
    for current in resolved.parts_reading_pred(node):
        if (
            isinstance(current, nodes.Call)
            and current.func == "where"
            and resolved.of(current.args[0]).pred
        ):
            return current
    return None


def _zero_power(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Node
) -> nodes.Power | None:
    """The first power in `node` (through bindings) whose exponent reads y_pred and whose base is 0."""
    for current in resolved.parts_reading_pred(node):
        if isinstance(current, nodes.Power) and resolved.of(current.exponent).pred:
            base = node_expr(symbolic, current.base)
            if isinstance(base, sp.Expr) and base.is_zero:
                return current
    return None


def _terms(resolved: Resolved, node: nodes.Node) -> list[nodes.Node]:
    """The sub-terms of `node` that are terms of the loss in their own right."""
    if isinstance(node, nodes.Chain) and node.kind == "add":
        return list(node.operands)
    if isinstance(node, nodes.Unary):
        return [node.operand]
    if isinstance(node, nodes.Call) and node.func in _LINEAR_CALLS:
        return list(node.args)
    if isinstance(node, nodes.Call) and node.func == "where":
        return list(node.args[1:])
    if isinstance(node, nodes.Name):
        value = resolved.binding_value(node)
        return [value] if value is not None else []
    return []


def _culprit(resolved: Resolved, node: nodes.Node) -> nodes.Node:
    """The step function or constant-branch `where` inside a dead term. A `where` is the culprit
    where its branches do not read y_pred (its condition does); one whose branch reads y_pred,
    dead, is not (`where(y_true > 0, sign(y_pred), 0)`: the `sign` is; the `where` was named, with
    a surrogate that kept the `sign`; a review)."""
    for current in resolved.parts_reading_pred(node):
        if isinstance(current, nodes.Call):
            info = resolved.of(current)
            if current.func in SURROGATES and info.pred:
                return current
            if (
                current.func == "where"
                and info.pred
                and not info.live
                and not any(resolved.of(branch).pred for branch in current.args[1:])
            ):
                return current
    return node


def _dead(
    resolved: Resolved,
    term: nodes.Node,
    whole: bool,
    culprit: nodes.Node | None = None,
    decided: dict | None = None,
) -> Diagnostic:
    culprit = culprit or _culprit(resolved, term)
    term_text = resolved.text(term)
    culprit_text = resolved.text(culprit)
    if whole:
        head = f"the loss `{term_text}` has zero gradient with respect to y_pred almost everywhere"
    else:
        head = f"the term `{term_text}` has zero gradient with respect to y_pred almost everywhere"
    if decided and id(culprit) in decided:
        # (a `where` that always takes one branch: no surrogate of a step to offer)
        holds, taken = decided[id(culprit)]
        message = (
            f"{head}: `{resolved.text(culprit.args[0])}` {'always' if holds else 'never'} holds,"
            f" so this `where` is always `{resolved.text(taken)}`; write a condition that can"
            " change with y_pred, or leave the term out"
        )
        return Diagnostic.at(
            "error", "not-differentiable", message, culprit.span, resolved.source
        )
    why, surrogate, remark = _explain(resolved, culprit)
    message = f"{head}: {why}; use a smooth surrogate such as `{surrogate}`{remark} in place of `{culprit_text}`"
    span = culprit.span
    return Diagnostic.at("error", "not-differentiable", message, span, resolved.source)


def _explain(resolved: Resolved, culprit: nodes.Node) -> tuple[str, str, str]:
    """(why the term is dead, the surrogate to write, a remark after it)."""
    if isinstance(culprit, nodes.Call) and culprit.func in SURROGATES:
        why = f"`{culprit.func}` is a step function (flat between its jumps)"
        surrogate, remark = SURROGATES[culprit.func]
        x = culprit.args[0]
        return (
            why,
            surrogate.format(x=resolved.text(x), operand=_operand(resolved, x)),
            remark,
        )
    if isinstance(culprit, nodes.Call) and culprit.func == "where":
        why = "this `where` picks between branches that do not depend on y_pred, so it is a step function"
        return why, _soft_where(resolved, culprit), ""
    if isinstance(culprit, nodes.Call) and culprit.func in _CAPPED:
        return _explain_flat(resolved, culprit)
    if isinstance(culprit, nodes.Power):
        x = resolved.text(culprit.exponent)
        if not isinstance(culprit.exponent, (nodes.Name, nodes.Number, nodes.Call)):
            x = f"({x})"
        why = "a power of 0 is a step function of its exponent (0 where it is positive, 1 at 0, inf below)"
        return why, f"exp(-{x} / 0.1)", ""
    return (
        "it depends on y_pred only through flat pieces",
        "a smooth function of y_pred",
        "",
    )


def _explain_flat(resolved: Resolved, call: nodes.Call) -> tuple[str, str, str]:
    """(why, surrogate, remark) for a relu, clip, maximum or minimum that is constant."""
    texts = [resolved.text(a) for a in call.args]
    pred = [t for a, t in zip(call.args, texts, strict=True) if resolved.of(a).pred]
    rest = [t for a, t in zip(call.args, texts, strict=True) if not resolved.of(a).pred]
    x = pred[0]
    # `other` and `x` inside a larger expression: parenthesised unless a name, number or call
    simple = {
        t
        for a, t in zip(call.args, texts, strict=True)
        if isinstance(a, (nodes.Name, nodes.Number, nodes.Call))
    }
    if call.func == "relu":
        return f"`{x}` is never above 0, where relu is 0", f"softplus({x})", ""
    if call.func == "clip":
        lo, hi = rest
        why = f"`{x}` never lies between the bounds {lo} and {hi}, so the clip is always a bound"
        return why, x, " (or bounds that it lies between)"
    other = rest[0] if len(rest) == 1 else f"{call.func}({', '.join(rest)})"
    if len(rest) > 1:
        simple.add(other)
    inner_x, inner_other = (t if t in simple else f"({t})" for t in (x, other))
    if call.func in ("maximum", "max"):
        why = f"`{x}` is never above `{other}`, so the {call.func} is always `{other}`"
        return (
            why,
            f"softplus({x})"
            if other == "0"
            else f"{other} + softplus({x} - {inner_other})",
            "",
        )
    why = f"`{x}` is never below `{other}`, so the {call.func} is always `{other}`"
    return (
        why,
        f"-softplus(-{inner_x})"
        if other == "0"
        else f"{other} - softplus({other} - {inner_x})",
        "",
    )


def _soft_where(resolved: Resolved, call: nodes.Call) -> str:
    """`where(l > r, a, b)` -> `b + (a - b) * sigmoid((l - r) / 0.1)`, simplified for 1 and 0; a
    condition through a binding, `not`, `and`, `or`, `==` or `!=` gets its soft truth value too
    (see `_soft_truth`; each was offered the placeholder `sigmoid(k * (...))`; a review)."""
    cond, a, b = call.args
    soft = _soft_truth(resolved, cond)
    if soft is None:
        return "sigmoid(k * (...)) for a soft step"
    step, kind = soft
    a_text, b_text = resolved.text(a), resolved.text(b)
    if (a_text, b_text) == ("1", "0"):
        return step
    if (a_text, b_text) == ("0", "1"):
        return f"1 - {_wrapped(step, kind)}"
    return f"{b_text} + ({a_text} - {_operand(resolved, b)}) * {_wrapped(step, kind)}"


def _soft_truth(
    resolved: Resolved, cond: nodes.Node, depth: int = 0
) -> tuple[str, str] | None:
    """A smooth stand-in in [0, 1] for a condition, as text, and its kind ("atom", "product" or
    "sum": what it needs brackets in): `sigmoid((l - r) / 0.1)` for `l > r`, `exp(-((l - r) /
    0.1)^2)` for `l == r`, one less it for `not` and `!=`, a product for `and`, `1 - (1 - s)(1 - t)`
    for `or`. None past a few levels, or for what is no condition."""
    if depth > 8:
        return None
    if isinstance(cond, nodes.Name):
        value = resolved.binding_value(cond)
        return None if value is None else _soft_truth(resolved, value, depth + 1)
    if (
        isinstance(cond, nodes.Not)
        and isinstance(cond.operand, nodes.Compare)
        and cond.operand.op in _FLIP
    ):
        flipped = cond.operand
        return _soft_compare(resolved, flipped.right, flipped.left, flipped.op)
    if isinstance(cond, nodes.Not):
        inner = _soft_truth(resolved, cond.operand, depth + 1)
        return None if inner is None else (f"1 - {_wrapped(*inner)}", "sum")
    if isinstance(cond, nodes.Compare) and cond.op in _FLIP:
        return _soft_compare(resolved, cond.left, cond.right, cond.op)
    if isinstance(cond, nodes.Compare) and cond.op in ("==", "!="):
        near = f"exp(-(({resolved.text(cond.left)} - {_operand(resolved, cond.right)}) / 0.1)^2)"
        return (near, "atom") if cond.op == "==" else (f"1 - {near}", "sum")
    if isinstance(cond, nodes.BoolOp):
        parts = [_soft_truth(resolved, operand, depth + 1) for operand in cond.operands]
        if any(part is None for part in parts):
            return None
        if cond.op == "and":
            return " * ".join(_wrapped(*part) for part in parts), "product"
        return "1 - " + " * ".join(f"(1 - {_wrapped(*part)})" for part in parts), "sum"
    return None


def _soft_compare(
    resolved: Resolved, left: nodes.Node, right: nodes.Node, op: str
) -> tuple[str, str]:
    if op in ("<", "<="):
        left, right = right, left
    # what follows a `-` or a `/` in brackets unless a name, number or call: the surrogate of
    # `where(y_pred > y_true + 1, 1, 0)` read `sigmoid((y_pred - y_true + 1) / 0.1)` (a review)
    return (
        f"sigmoid(({resolved.text(left)} - {_operand(resolved, right)}) / 0.1)",
        "atom",
    )


def _wrapped(text: str, kind: str) -> str:
    """`text` in brackets where it is a sum (as a factor, or after a `-`)."""
    return f"({text})" if kind == "sum" else text


def _operand(resolved: Resolved, node: nodes.Node) -> str:
    """The text of `node` as the operand of a `-`, `*` or `/`: in brackets unless a name, number or call."""
    text = resolved.text(node)
    return (
        text
        if isinstance(node, (nodes.Name, nodes.Number, nodes.Call))
        else f"({text})"
    )
