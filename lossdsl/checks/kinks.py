"""Notes for kinks in y_pred: a function with a kink (`abs`, `relu`, `maximum`, `clip`, ...) whose
value reaches the loss, unless what holds it smooths it away (a power above 1 of a value that is 0
at the kink, a `where` that reads it only away from the kink, the stable rewrites). The kink of a
`where` whose branches meet at different slopes is `smoothness`'s own."""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import nodes, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.domain import value_ranges
from lossdsl.checks.intervals import one_settles
from lossdsl.checks.numeric import Unsupported, evaluate
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# The functions whose code has a kink (or a jump) somewhere.
_KINKED = (
    sp.Abs,
    sp.Max,
    sp.Min,
    sf.Relu,
    sf.Clip,
    sf.ReduceMax,
    sf.ReduceMin,
    sp.Piecewise,
    sp.Heaviside,
    sp.sign,
)


def code_has_kinks(symbolic: SymbolicLoss) -> bool:
    """Whether the loss as its code computes it (the stable rewrites applied) holds a function with a
    kink, through the bindings the result reads. The stable binary cross-entropy on logits, `relu(x) -
    x y + log(1 + exp(-abs(x)))`, is `softplus_pair`'s smooth form there: its two kinks cancel, and
    the notes said they did not (a review)."""
    statements, result = reshared_stable_form(symbolic)
    values = {symbol: value for _, symbol, value in statements if symbol is not None}
    stack, read = [result], set()
    while stack:
        expr = stack.pop()
        if expr in read:
            continue
        read.add(expr)
        stack += [
            values[symbol] for symbol in subtrees.free_symbols(expr) if symbol in values
        ]
    softpluses = set().union(*(subtrees.atoms(expr, sf.Softplus) for expr in read))
    paired = {
        x for f in softpluses if (x := sf.negative_abs_argument(f.args[0])) is not None
    }
    return any(
        not _pair_select(k, paired)
        for expr in read
        for k in subtrees.atoms(expr, *_KINKED)
    )


def _pair_select(node: sp.Basic, paired: set) -> bool:
    """Whether `node` is a select of `symfuncs.softplus_pair`'s form, `where(x >= 0, ...)` beside its
    `softplus(-|x|)` (`paired` holds those x): the form is smooth (`relu(x) - x y + softplus(-|x|)`)."""
    if not isinstance(node, sp.Piecewise):
        return False
    condition = node.args[0].cond
    return (
        isinstance(condition, sp.GreaterThan)
        and condition.rhs == 0
        and condition.lhs in paired
    )


class Signs:
    """Whether a kink's pieces never meet, where it has none: an `abs` or `relu` of one sign
    (`abs(exp(x))`, `relu(y_pred^2)`), a `maximum`, `minimum`, `max` or `min` of several whose one
    argument is never passed (`maximum(e^2, 0)`), a `clip` whose argument keeps between its bounds
    (they were noted as kinks; a review of the checks)."""

    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.ranges = None

    def constant(self, node: nodes.Call) -> bool:
        if (
            node.func not in ("abs", "relu", "clip", "maximum", "minimum")
            and len(node.args) < 2
        ):
            return False  # `max(x)` over the last axis: a kink where two elements tie
        if self.ranges is None:  # computed once, where a program has such a call
            self.ranges = value_ranges(self.resolved)
        args = [self.ranges(a) for a in node.args]
        if node.func in ("abs", "relu"):
            return args[0].lo >= 0 or args[0].hi <= 0
        if node.func == "clip":
            x, lo, hi = args
            return x.lo >= lo.hi and x.hi <= hi.lo
        return one_settles(node.func, args)


def smoothed_away(
    resolved: Resolved, symbolic: SymbolicLoss, kink: nodes.Call, parents: dict
) -> bool:
    """Whether every use of a kink takes it where the loss's gradient is continuous all the same. A use
    in a condition passes no gradient. A kink whose value at the kink is 0 (`abs(u)`, `relu(u)`,
    `maximum(u, 0)`), raised to a constant power above 1: `maximum(1 - y_true * y_pred, 0)^2`, the
    squared hinge, has a gradient `p |u|^(p - 1) u'` that tends to 0 from both sides. A kink read
    through arithmetic only in a branch of a `where` whose condition, a function of the kink's value,
    takes its other branch about the kink (`_Unread`): the Huber loss written out,
    `where(abs(e) <= 1, 0.5*e^2, abs(e) - 0.5)`, reads its second `abs` only where |e| > 1. A
    binding's value is followed to each place that reads the binding."""
    bare = _zero_at_kink(symbolic, kink)
    unread = _Unread(symbolic, kink)
    # each entry: a node that holds the kink, and whether it is the kink's value itself (through
    # bindings), which a power above 1 smooths
    stack, seen = [(kink, bare)], set()
    while stack:
        node, bare = stack.pop()
        if (id(node), bare) in seen:
            continue
        seen.add((id(node), bare))
        uses = parents.get(id(node), [])
        if not uses:
            return False  # the loss itself
        for use in uses:
            if isinstance(use, nodes.Name):
                stack.append((use, bare))  # a binding read: its own uses
            elif isinstance(use, (nodes.Compare, nodes.BoolOp, nodes.Not)):
                continue  # a condition passes no gradient
            elif bare and _raised(resolved, symbolic, use, node):
                continue
            elif (
                isinstance(use, nodes.Call)
                and use.func == "where"
                and unread.by(use, node)
            ):
                continue
            else:
                stack.append((use, False))
    return True


def _zero_at_kink(symbolic: SymbolicLoss, kink: nodes.Call) -> bool:
    """Whether the kink's value at its kink is 0: `abs(u)`, `relu(u)`, or a two-argument `maximum`,
    `minimum`, `max` or `min` one of whose arguments is the constant 0 (`clip(x, lo, hi)`: the kinks
    are at lo and hi)."""
    if kink.func in ("maximum", "minimum", "max", "min"):
        return len(kink.args) == 2 and any(
            _constant(symbolic.resolved, symbolic, a) == 0 for a in kink.args
        )
    return kink.func in ("abs", "relu")


def _raised(
    resolved: Resolved, symbolic: SymbolicLoss, use: nodes.Node, node: nodes.Node
) -> bool:
    """Whether `use` raises `node` to a constant power above 1: `square`, a power, or a product
    that multiplies by it twice or more and divides by it nowhere (`a*a`, a binding read twice, or
    `abs(e)*abs(e)`: operands compared as trees)."""
    if isinstance(use, nodes.Call) and use.func == "square":
        return True
    if isinstance(use, nodes.Chain) and use.kind == "mul":
        ops = ("*", *use.ops)
        same = [
            op for op, operand in zip(ops, use.operands, strict=True) if operand == node
        ]
        return len(same) >= 2 and "/" not in same
    if isinstance(use, nodes.Power) and use.base is node:
        exponent = _constant(resolved, symbolic, use.exponent)
    elif isinstance(use, nodes.Call) and use.func == "pow" and use.args[0] is node:
        exponent = _constant(resolved, symbolic, use.args[1])
    else:
        return False
    return exponent is not None and exponent > 1


class _Unread:
    """Whether a `where` reads a kink it holds in a branch only away from the kink: its condition
    reads y_pred and y_true only through the kink's own value (`abs(e) <= delta`, the Huber loss's;
    the kink's expression, bindings inlined), and with that value at the kink, and just beside it
    on each side, takes its other branch (the parameters at their defaults). Decided at the
    kink's values, not at sampled points: a condition that reads the inputs otherwise (`e > 1`, a
    band of y_true) keeps the note (points sampled along y_pred at a few values of y_true missed
    bands of y_true and y_pred where the kink is read; a review)."""

    def __init__(self, symbolic: SymbolicLoss, kink: nodes.Call) -> None:
        self.symbolic, self.kink = symbolic, kink
        self.known: dict[tuple[int, int], bool] = {}
        self._values = None

    def by(self, where: nodes.Call, node: nodes.Node) -> bool:
        if where.args[1] is node and where.args[2] is node:
            return False
        branch = 1 if where.args[1] is node else 2
        key = (id(where), branch)
        if key not in self.known:
            try:
                self.known[key] = self._unread(where, branch)
            except (
                TypeError,
                ValueError,
                ArithmeticError,
                AttributeError,
                RecursionError,
            ):
                self.known[key] = False
        return self.known[key]

    def _unread(self, where: nodes.Call, branch: int) -> bool:
        kink, values = self.values()
        if not values:
            return False
        symbolic = self.symbolic
        env = symbolic.defaults()
        held = sp.Dummy("kink", real=True)
        condition = node_expr(symbolic, where.args[0]).xreplace({kink: held})
        if condition.has(Y_PRED, Y_TRUE):
            return False
        # (in floats: SymPy took `sin(cosh(m))` at m = 1e20 to the precision of its argument, a hang; a review)
        for value in values:
            step = 1e-6 * (1 + abs(value))
            for x in (value - step, value, value + step):
                env[held] = x
                try:
                    taken = evaluate(condition, env)
                except Unsupported:
                    return False
                if math.isnan(taken) or bool(taken) != (branch == 2):
                    return False
        return True

    def values(self) -> tuple[sp.Basic, list[float]]:
        """The kink's expression, and its values at its kinks where those are constants: 0 for
        `abs(u)`, `relu(u)` and a two-argument `max`/`min` with the constant 0; a `clip`'s bounds."""
        if self._values is None:
            symbolic, kink = self.symbolic, self.kink
            found: list[float] = []
            if _zero_at_kink(symbolic, kink):
                found = [0.0]
            elif kink.func == "clip":
                bounds = [
                    _constant(symbolic.resolved, symbolic, a) for a in kink.args[1:]
                ]
                found = [] if None in bounds else bounds
            self._values = (node_expr(symbolic, kink), found)
        return self._values


def _constant(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Node
) -> float | None:
    """The value of a node that is a constant (not a parameter, which a user may change), or None."""
    info = resolved.of(node)
    if (
        info.pred or info.true or info.length is not None
    ):  # (a list literal is no one number)
        return None
    value = node_expr(symbolic, node)  # (a parameter stays a symbol)
    if (
        isinstance(value, sp.Expr)
        and value.is_number
        and value.is_extended_real
        and value.is_finite
    ):
        return float(value)
    return None


def kink_note(resolved: Resolved, node: nodes.Call) -> Diagnostic:
    span = node.span
    message = (
        f"`{resolved.text(node)}` has a kink: its gradient changes abruptly there"
        " (usually fine for training; a smooth alternative avoids it)"
    )
    return Diagnostic.at("note", "kink", message, span, resolved.source)
