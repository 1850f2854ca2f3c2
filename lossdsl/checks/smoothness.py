"""Check: kinks are noted; a `where` whose branches disagree at its boundary is a warning.

A kink (`abs`, `relu`, `max`, `min`, `maximum`, `minimum`, `clip` of
something that moves with y_pred) is fine for training and only noted. A
jump is worse: the gradient cannot see it. For `where(l op r, a, b)` the
check finds points on the boundary `l = r` numerically (bisection along
y_pred) and compares the two branches there; where they differ, the jump is
confirmed, and sized, by the node above the `where` (`_gates`: through
arithmetic, bindings and the branches of other `where`s that switch with
y_pred) changing across the point, one side against the other: an outer
`where` may read the other branch there (a dead zone), or what holds it may
close the gap (`where(e >= 0, e + 1, e - 1)^2`). The condition may be written
through a condition binding or under `not`; for a compound condition (`and`,
`or`) the boundaries of each comparison in it are found, and those where the
whole condition flips are compared. A boundary that does not move with y_pred (a condition
on y_true alone, as in class weights `where(y_true > 0.5, 2 * e^2, e^2)`) is
no jump for training: for each sample one branch holds, whatever y_pred does.

A `where` with no jump whose branches meet at different slopes is a kink, noted as `relu`'s is:
`where(e > 0, e, 0)`, the epsilon-insensitive loss, or branches free of y_pred that the node above
turns into one (`e*where(e > 0, 1, -1)`). At the boundary points of each comparison in its
condition (not an equality) where the whole condition flips, the node above it must change its
slope, and so must that node with the `where` taken as one branch less with it taken as the other
(`Bend`, over widths of about 1e-8): the Huber loss's join of `0.5 x^2` and `|x| - 0.5`, where only
the curvature changes, is no kink, nor is `where(e > 0, e, 0)^2`, nor a smooth bend near the
boundary (`-log(where(e > 0, e^2, 0) + 1e-7)`), nor a kink of the node above on the same boundary
(`where(e <= 0, e^2, 0) + abs(e)`: the `abs`'s note).

A `where` that y_pred reaches through its condition only (`where(y_pred > 0, 1, 2) * e^2`)
has branches that agree or not whatever the loss does with them: it is checked in the outermost
elementwise node above it (the loss, or the argument of a reduction), computed with the `where`
taken as each branch, so that `abs(where(y_pred > 0, 1, -1) * e)` passes and
`(1 + where(y_pred > 0, 1, 0)) * e^2` does not. One warning per `where`. A reduction of such a
`where` (`sum(where(y_pred > 0, 1, 2)) * e^2`) is a switch too, the same in every element: the
climb goes on above it to the loss itself (an outer `softmax` or `x - mean(x)` cancels such a
shift). A node that holds reductions or vector functions is computed for a last axis of one
element (a jump there is one the loss has for that shape).

Limits: the bisections evaluate the condition's two sides at hundreds of
points (`boundaries`), so each kind of check may spend at most MAX_EVALUATIONS node evaluations
(an operation of the expression at one point); a program that needs
more (dozens of `where`s on a long condition) has its remaining `where`s left
unchecked, and says so in a note. Boundaries are looked for along y_pred in
[-10, 10] in steps of 0.25, then beyond it at 12, 15, 20, ... 1e6 (and their
negatives): a boundary in a band narrower than the grid's step is not found.
A `where` whose condition or branches read the last axis as a whole, and that
shows no jump for a last axis of one element, is named in a note as not checked.
"""

from __future__ import annotations

import contextlib
import math

import sympy as sp

from lossdsl import nodes, rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.boundaries import (
    FAR_GRIDS,
    GRID,
    MAX_EVALUATIONS,
    Across,
    Bend,
    Budget,
    Difference,
    Gated,
    OutOfBudget,
    Switched,
    Truth,
    Value,
    boundary_roots,
    flips_at,
    operation_count,
    root_rounding,
    touches_zero,
)
from lossdsl.checks.domain import in_values, value_ranges
from lossdsl.checks.intervals import one_settles
from lossdsl.checks.numeric import Unsupported, compiled, evaluate
from lossdsl.errors import Diagnostic
from lossdsl.functions import FUNCTIONS, kind_of
from lossdsl.rewrites import reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# From 0 outwards, each side, up to 8 roots in each (then 3 further out): a step function has a
# root at every integer (of its argument), and the jumps near 0 are those a loss is most likely
# to show. At two values of y_true (not five): each root is a bisection, and a step has many.
_OUTWARDS = ((GRID[40:], 8), (GRID[40::-1], 8), *((grid, 3) for grid in FAR_GRIDS))
_STEP_OTHERS = (-1.3, 0.4)
_OTHERS = (-1.3, 0.0, 0.4, 1.0, 2.7)
_FAR_OTHERS = (-9.5, 9.5)
# A compound condition's equalities are judged by rebuilding it with each taken as true and as
# false only up to this many comparisons (SymPy re-evaluates the whole `or` each time: 200
# equalities took minutes); past it, by the points beside each root.
_MAX_TAKEN = 16
# Comparisons that hold on their boundary alone (or, a value with itself, on no boundary).
_EQUALITIES = (sp.Eq, sp.Ne, sf.SelfComparison)


class _OverAxis(Exception):
    """A `where`, `sign` or step whose boundary moves with y_pred, but of which a part over the last
    axis (a reduction, a vector function, `onehot`, a list) is not evaluated at a point."""


def check_smoothness(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """Notes for kinks in y_pred, warnings for `where` jumps."""
    found: list[Diagnostic] = []
    seen: set[int] = set()
    # Conditions that come down to one comparison first, then compound ones (`and`, `or`), then the
    # `where`s whose branches do not read y_pred (`_switch_contexts`), each kind with a budget of its
    # own: the many comparisons of a compound condition cannot use up the budget of a plain `where`
    # met after it. Each entry: a `where` and the node whose jump is checked (the `where` itself, or
    # for a switch, a node above it).
    plain: list[tuple[nodes.Call, nodes.Node]] = []
    compound: list[tuple[nodes.Call, nodes.Node]] = []
    switched: list[tuple[nodes.Call, nodes.Node]] = []
    parents: dict[int, list[nodes.Node]] = {}
    # from the loss, through the bindings it reads: a binding nothing reads is not in the code
    # (`a = where(y_pred > 0, e^2 + 1, e^2)` then `e^2` was warned of a jump; a review)
    stack: list[nodes.Node] = [resolved.result]
    switches: list[nodes.Call] = []
    signs = _Signs(resolved)
    valued = in_values(resolved)  # a kink that feeds only a `where` condition passes no gradient
    kinks: list[nodes.Call] = []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.children)
        for child in node.children:
            parents.setdefault(id(child), []).append(node)
        if isinstance(node, nodes.Name) and resolved.binding_value(node) is not None:
            parents.setdefault(id(resolved.binding_value(node)), []).append(node)
            stack.append(resolved.binding_value(node))
        if not isinstance(node, nodes.Call) or node.func not in FUNCTIONS:
            continue
        info = resolved.of(node)
        if info.ok and not info.live and info.pred and node.func in ("where", "sign", *_STEPS):
            switches.append(node)
        if not (info.ok and info.live):
            continue
        if (
            FUNCTIONS[node.func].smooth == "kink"
            and (node.span.start, node.span.end) in valued
            and not signs.constant(node)
        ):
            kinks.append(node)
        if node.func == "where":
            (plain if _comparison(resolved, node.args[0]) is not None else compound).append((node, node))
    # A `where` in a branch of another is checked in the outermost `where` that holds it (after the
    # walk, which completes `parents`): the inner boundary may lie where the outer one reads the
    # other branch (a dead zone, `where(abs(e) <= m, 0, where(e > 0, 2*(e - m), -e - m))`).
    plain, compound = (
        [(n, c) for n, _ in wheres for c in _gates(resolved, n, parents)] for wheres in (plain, compound)
    )
    # (nor one that another on the same condition decides wherever the loss reads it)
    decided = {id(n) for n, _ in plain + compound if _decided(resolved, symbolic, n, parents)}
    plain, compound = ([(n, c) for n, c in wheres if id(n) not in decided] for wheres in (plain, compound))
    # (after the walk: whether a kink is squared away depends on every use of it)
    if kinks and not _code_has_kinks(symbolic):
        kinks = []  # the stable rewrites took them away: `relu(x) + log(1 + exp(-abs(x)))` is `softplus(x)`
    found += [_note(resolved, node) for node in kinks if not _smoothed_away(resolved, symbolic, node, parents)]
    for node in sorted(switches, key=lambda n: n.span.start):
        if node.func != "where" or not _decided(resolved, symbolic, node, parents):
            switched += [(node, context) for context in _switch_contexts(resolved, node, parents)]
    unchecked: dict[int, nodes.Call] = {}
    over_axis: dict[int, nodes.Call] = {}
    warned: set[int] = set()
    for wheres in (plain, compound, switched):
        budget = Budget(MAX_EVALUATIONS)
        for index, (node, context) in enumerate(wheres):
            if id(node) in warned:
                continue  # one warning for each `where`
            try:
                # (the warning quotes the node whose value jumps: for a `where` held in another's
                # branch, the inner one, which is where the two sides disagree)
                jump = _jump(resolved, symbolic, node, budget, context, valued=wheres is not switched)
            except OutOfBudget:
                unchecked.update((id(where), where) for where, _ in wheres[index:] if id(where) not in warned)
                break
            except _OverAxis:
                over_axis[id(node)] = node
                continue
            if jump:
                found.append(jump)
                warned.add(id(node))
    skipped = warned | unchecked.keys() | over_axis.keys()
    # (in the order written: the budget, if spent, leaves out the last ones)
    wheres = sorted(plain + compound + switched, key=lambda pair: pair[0].span.start)
    found += [_note(resolved, node) for node in _where_kinks(resolved, symbolic, wheres, skipped, valued)]
    if unchecked:
        found.append(_unchecked_note(resolved, unchecked, "the program is too large to check them all"))
    # (one of several contexts may have been checked, and warned of)
    over_axis = {key: node for key, node in over_axis.items() if key not in warned and key not in unchecked}
    if over_axis:
        reason = (
            "they read the last axis as a whole (a reduction, a softmax, `onehot` or a list),"
            " which the check does not evaluate at a point"
        )
        found.append(_unchecked_note(resolved, over_axis, reason))
    return found


# The functions whose code has a kink (or a jump) somewhere.
_KINKED = (sp.Abs, sp.Max, sp.Min, sf.Relu, sf.Clip, sf.ReduceMax, sf.ReduceMin, sp.Piecewise, sp.Heaviside, sp.sign)


def _code_has_kinks(symbolic: SymbolicLoss) -> bool:
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
        stack += [values[symbol] for symbol in subtrees.free_symbols(expr) if symbol in values]
    softpluses = set().union(*(subtrees.atoms(expr, sf.Softplus) for expr in read))
    paired = {x for f in softpluses if (x := sf.negative_abs_argument(f.args[0])) is not None}
    return any(not _pair_select(k, paired) for expr in read for k in subtrees.atoms(expr, *_KINKED))


def _pair_select(node: sp.Basic, paired: set) -> bool:
    """Whether `node` is a select of `symfuncs.softplus_pair`'s form, `where(x >= 0, ...)` beside its
    `softplus(-|x|)` (`paired` holds those x): the form is smooth (`relu(x) - x y + softplus(-|x|)`)."""
    if not isinstance(node, sp.Piecewise):
        return False
    condition = node.args[0].cond
    return isinstance(condition, sp.GreaterThan) and condition.rhs == 0 and condition.lhs in paired


def _unchecked_note(resolved: Resolved, unchecked: dict[int, nodes.Call], reason: str) -> Diagnostic:
    span = min(unchecked.values(), key=lambda n: n.span.start).span
    kinds = "/".join(f"`{func}`" for func in sorted({n.func for n in unchecked.values()}))
    message = f"{len(unchecked)} {kinds}(s) were not checked for jumps: {reason}"
    return Diagnostic("note", message, span.line, span.column, "jump-unchecked", span, resolved.source)


class _Signs:
    """Whether a kink's pieces never meet, where it has none: an `abs` or `relu` of one sign
    (`abs(exp(x))`, `relu(y_pred^2)`), a `maximum`, `minimum`, `max` or `min` of several whose one
    argument is never passed (`maximum(e^2, 0)`), a `clip` whose argument keeps between its bounds
    (they were noted as kinks; a review of the checks)."""

    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.ranges = None

    def constant(self, node: nodes.Call) -> bool:
        if node.func not in ("abs", "relu", "clip", "maximum", "minimum") and len(node.args) < 2:
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


def _smoothed_away(resolved: Resolved, symbolic: SymbolicLoss, kink: nodes.Call, parents: dict) -> bool:
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
            elif isinstance(use, nodes.Call) and use.func == "where" and unread.by(use, node):
                continue
            else:
                stack.append((use, False))
    return True


def _zero_at_kink(symbolic: SymbolicLoss, kink: nodes.Call) -> bool:
    """Whether the kink's value at its kink is 0: `abs(u)`, `relu(u)`, or a two-argument `maximum`,
    `minimum`, `max` or `min` one of whose arguments is the constant 0 (`clip(x, lo, hi)`: the kinks
    are at lo and hi)."""
    if kink.func in ("maximum", "minimum", "max", "min"):
        return len(kink.args) == 2 and any(_constant(symbolic.resolved, symbolic, a) == 0 for a in kink.args)
    return kink.func in ("abs", "relu")


def _raised(resolved: Resolved, symbolic: SymbolicLoss, use: nodes.Node, node: nodes.Node) -> bool:
    """Whether `use` raises `node` to a constant power above 1: `square`, a power, or a product
    that multiplies by it twice or more and divides by it nowhere (`a*a`, a binding read twice, or
    `abs(e)*abs(e)`: operands compared as trees)."""
    if isinstance(use, nodes.Call) and use.func == "square":
        return True
    if isinstance(use, nodes.Chain) and use.kind == "mul":
        ops = ("*", *use.ops)
        same = [op for op, operand in zip(ops, use.operands, strict=True) if operand == node]
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
            except (TypeError, ValueError, ArithmeticError, AttributeError, RecursionError):
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
                bounds = [_constant(symbolic.resolved, symbolic, a) for a in kink.args[1:]]
                found = [] if None in bounds else bounds
            self._values = (node_expr(symbolic, kink), found)
        return self._values


def _constant(resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Node) -> float | None:
    """The value of a node that is a constant (not a parameter, which a user may change), or None."""
    info = resolved.of(node)
    if info.pred or info.true or info.length is not None:  # (a list literal is no one number)
        return None
    value = node_expr(symbolic, node)  # (a parameter stays a symbol)
    if isinstance(value, sp.Expr) and value.is_number and value.is_extended_real and value.is_finite:
        return float(value)
    return None


def _note(resolved: Resolved, node: nodes.Call) -> Diagnostic:
    span = node.span
    message = (
        f"`{resolved.text(node)}` has a kink: its gradient changes abruptly there"
        " (usually fine for training; a smooth alternative avoids it)"
    )
    return Diagnostic("note", message, span.line, span.column, "kink", span, resolved.source)


def _comparison(resolved: Resolved, cond: nodes.Node) -> nodes.Compare | None:
    """The comparison a condition comes down to, through condition bindings and `not`."""
    while True:  # ends: `not` has finite depth and a binding refers only to earlier bindings
        if isinstance(cond, nodes.Not):
            cond = cond.operand
        elif isinstance(cond, nodes.Name) and resolved.binding_value(cond) is not None:
            cond = resolved.binding_value(cond)
        else:
            return cond if isinstance(cond, nodes.Compare) else None


def _comparisons(resolved: Resolved, cond: nodes.Node) -> list[nodes.Compare] | None:
    """The comparisons a compound condition (`and`, `or`, `not`) is made of, or None if not all are."""
    found: list[nodes.Compare] = []
    stack = [cond]
    while stack:  # ends: a binding refers only to earlier bindings
        current = stack.pop()
        if isinstance(current, nodes.BoolOp):
            stack.extend(reversed(current.operands))
        elif isinstance(current, nodes.Not):
            stack.append(current.operand)
        elif isinstance(current, nodes.Name) and resolved.binding_value(current) is not None:
            stack.append(resolved.binding_value(current))
        elif isinstance(current, nodes.Compare):
            found.append(current)
        else:
            return None
    return found


def _switch_contexts(resolved: Resolved, node: nodes.Call, parents: dict[int, list[nodes.Node]]) -> list[nodes.Node]:
    """Where to check a `where` that y_pred reaches through its condition only (`where(y_pred > 0, 1,
    2) * e^2`): the outermost nodes above it, climbing through sums, products, powers, signs,
    elementwise functions, the branches of a `where` and bindings (to each place one is read), up
    to the loss itself or the argument of a reduction or vector function; of those, the ones y_pred
    reaches through a differentiable path. None where it stands in a condition (the `where` that
    reads that condition is checked itself) or in a list.

    A reduction of a node y_pred does not reach that way (`sum(where(y_pred > 0, 1, 2))`) switches
    too, and the same in every element: a shift or scale that an outer `softmax`, `log_softmax`,
    `normalize` or `x - mean(x)` may cancel. Past it the climb goes on to the loss itself."""
    found: dict[int, nodes.Node] = {}
    seen: set[tuple[int, bool]] = set()
    # (node, whether the climb passed a reduction of a switch: then only the loss itself is checked)
    stack: list[tuple[nodes.Node, bool]] = [(node, False)]
    while stack:
        current, uniform = stack.pop()
        if (id(current), uniform) in seen:
            continue
        seen.add((id(current), uniform))
        above = parents.get(id(current), [])
        if current is resolved.result:
            above = [*above, None]  # the top
        for parent in above:
            if isinstance(parent, nodes.Call) and parent.func not in FUNCTIONS:
                continue
            kind = kind_of(parent.func, len(parent.args)) if isinstance(parent, nodes.Call) else None
            if parent is None or (kind in ("reduction", "vector") and not uniform):
                top = resolved.binding_value(current) if isinstance(current, nodes.Name) else current
                info = resolved.of(top) if top is not None else None
                if info is not None and info.ok and info.live:
                    found[id(top)] = top
                elif kind == "reduction":
                    stack.append((parent, True))  # `sum(where(y_pred > 0, 1, 2)) * e^2`: a switch still
            elif isinstance(parent, (nodes.Chain, nodes.Unary, nodes.Power, nodes.Call, nodes.Name)):
                stack.append((parent, uniform))
            # else: a comparison, `and`, `or`, `not` (a value in a condition reaches a `where` only
            # through one of them), a list: not followed
    return list(found.values())


def _gates(resolved: Resolved, node: nodes.Call, parents: dict[int, list[nodes.Node]]) -> list[nodes.Node]:
    """Where to check a `where` whose branches read y_pred: the outermost nodes reached by climbing
    from it through bindings (to each place one is read), elementwise arithmetic and functions, and
    the branches of other `where`s whose condition reads y_pred (gates, which may read another
    branch on one side of its boundary), up to the loss, the argument of a reduction or vector
    function, a condition, or a `where` whose condition does not read y_pred (a class condition,
    `where(y_true == 2, ...)`: each sample takes one branch whatever y_pred does, and the values of
    y_true tried may never take this one). What holds the `where` may close its gap:
    `where(e >= 0, e + 1, e - 1)^2` is `(|e| + 1)^2` (each was a jump; reviews)."""
    found: dict[int, nodes.Node] = {}
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        above = parents.get(id(current), [])
        for parent in above:
            gate = (
                isinstance(parent, nodes.Call)
                and parent.func == "where"
                and parent.args[0] is not current
                and resolved.of(parent.args[0]).pred
            )
            if gate or isinstance(parent, (nodes.Name, nodes.Unary, nodes.Chain, nodes.Power)) or _elementwise(parent):
                stack.append(parent)
            elif not isinstance(parent, (nodes.Compare, nodes.BoolOp, nodes.Not)):
                found.setdefault(id(current), current)
            # (a value in a condition passes no value on: `where(d > 0, d, -d)` of a `where` `d`
            # that jumps by 2 is |d|, continuous; judged on its own, it was a jump; a review)
        if not above:
            found.setdefault(id(current), current)
    # (a binding's name stands for its value: a context that is a name is the value it reads)
    return list({id(_named(resolved, c)): _named(resolved, c) for c in found.values()}.values())


def _decided(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Call, parents: dict[int, list[nodes.Node]]
) -> bool:
    """Whether every way the loss reads the `where` `node` passes, through elementwise arithmetic,
    functions and bindings, into a branch of another `where` on the same condition: there the
    condition is the same at each element, so `node` always takes the one branch and neither jumps
    nor bends by itself. A guard of a domain inside a branch, `where(y_pred > 0, sqrt(where(y_pred
    > 0, y_pred, 1)), 0)` (as the domain check advises), was noted as a kink and, beside a jump of
    the outer `where`, warned of as a jump of its own. Not past a reduction or a vector function,
    which reads the other elements too."""
    condition = node_expr(symbolic, node.args[0])
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        above = parents.get(id(current), [])
        if current is resolved.result or not above:
            return False
        for parent in above:
            if isinstance(parent, nodes.Call) and kind_of(parent.func, len(parent.args)) in ("reduction", "vector"):
                return False
            same = (
                isinstance(parent, nodes.Call)
                and parent.func == "where"
                and parent.args[0] is not current
                and node_expr(symbolic, parent.args[0]) == condition
            )
            if not same:
                stack.append(parent)
    return True


def _elementwise(node: nodes.Node) -> bool:
    """A call of an elementwise function other than `where` (whose condition is no value)."""
    return (
        isinstance(node, nodes.Call)
        and node.func in FUNCTIONS
        and node.func != "where"
        and kind_of(node.func, len(node.args)) not in ("reduction", "vector")
    )


def _named(resolved: Resolved, node: nodes.Node) -> nodes.Node:
    return (resolved.binding_value(node) or node) if isinstance(node, nodes.Name) else node


def _switched(
    symbolic: SymbolicLoss, node: nodes.Call, context: nodes.Node, budget: Budget, branches: tuple | None = None
) -> Switched | None:
    """`context` with the `where` `node` taken as its first branch, less with it taken as its second
    (a `sign` as 1 and as -1); None where the condition does not read y_pred (no boundary to find
    along it) or reads it through a function over the last axis (not evaluated at a point), the
    branches are the same, or the `where` is not in `context` as written (SymPy folded it:
    `sign(e) * e` is `|e|`)."""
    condition = node_expr(symbolic, node.args[0])
    if Y_PRED not in condition.free_symbols:
        return None
    if condition.has(sf.TensorFunction, sf.Vector):
        raise _OverAxis
    switch, whole = node_expr(symbolic, node), node_expr(symbolic, context)
    if branches is not None:  # a step function's values beside a step
        a, b = branches
    elif node.func == "sign":
        a, b = sp.Integer(1), sp.Integer(-1)
    else:
        a, b = (node_expr(symbolic, branch) for branch in node.args[1:])
    budget.spend(operation_count(whole))
    if a == b or not whole.has(switch):
        return None
    original = whole
    if whole.has(*_ONE_COLUMN):
        # the `where` named before the reductions go (taken out, they let SymPy merge nested ones)
        named = sp.Dummy("switched", real=True)
        original = _one_column(whole)
        switch, whole = named, _one_column(whole.xreplace({switch: named}))
        if not whole.has(switch):
            return None
    return Switched(whole, switch, a, b, budget, original)


# For a last axis of one element: a reduction is its argument, a softmax 1, its logarithm 0, and
# `normalize` the sign.
_ONE_COLUMN = {
    sf.ReduceSum: lambda x: x,
    sf.ReduceMean: lambda x: x,
    sf.ReduceMax: lambda x: x,
    sf.ReduceMin: lambda x: x,
    sf.LogSumExp: lambda x: x,
    sf.Softmax: lambda x: sp.Integer(1),
    sf.LogSoftmax: lambda x: sp.Integer(0),
    sf.Normalize: sp.sign,
}


def _one_column(expr: sp.Basic) -> sp.Basic:
    """`expr` for a last axis of one element (C is 1): a jump there is one a loss over that shape
    has. `onehot` and lists stay (not evaluated at a point), and so does a function over the axis of
    one (`softmax([1, 2, 3])` is no 1: a list fixes the axis's length; the change review). Each Max
    and Min is rebuilt unevaluated: SymPy's `replace` and `xreplace` build them again, comparing
    their arguments (`max(..., pow(e, 447))` took seconds; found by fuzzing)."""

    def taken(whole: sp.Basic) -> sp.Basic:
        return whole.replace(
            lambda e: type(e) in _ONE_COLUMN and not e.args[0].has(sf.Vector),
            lambda e: _ONE_COLUMN[type(e)](e.args[0]),
        ).xreplace({sf.C: sp.Integer(1)})

    return rebuild.with_inert_minmax(taken, expr)


def _jump(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    node: nodes.Call,
    budget: Budget,
    context: nodes.Node,
    valued: bool = False,
) -> Diagnostic | None:
    """A warning where the `where` `node` makes the loss jump somewhere on the boundary of its
    condition. With `valued` (its branches read y_pred): where its branches differ at a point of
    the boundary and `context`, the node above it that `_gates` found (or the `where` itself),
    changes across that point too; the message quotes the `where`. Else (a switch, branches free of
    y_pred): where `context`, a node above it, differs with the `where` taken as each branch."""
    if node.func == "sign":
        return _sign_jump(resolved, symbolic, node, budget, context)
    if node.func in _STEPS:
        return _step_jump(resolved, symbolic, node, budget, context)
    cond = _comparison(resolved, node.args[0])
    compound = None
    if cond is None:
        compound = _comparisons(resolved, node.args[0])
        if not compound:
            return None
    try:
        for index, (checked, form) in enumerate(_attempts(symbolic, node, context, valued)):
            try:
                point = _where_point(symbolic, node, budget, checked, valued, cond, compound, form)
            except Unsupported:
                continue
            if index and point is None and not _pointwise(symbolic, node):
                # none there, but the `where` itself reads the last axis: named as not checked (it
                # passed silently: `where(e^2 > mean(e^2), e^2, 0)` jumps; a review)
                raise _OverAxis
            break
        else:
            raise _OverAxis
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    shown = node.args[0] if compound is not None else cond
    where = f"`{resolved.text(shown)}` flips"
    advice = "both branches agree at the boundary"
    return _jump_warning(resolved, node, node if valued else context, point, where, advice)


def _attempts(symbolic: SymbolicLoss, node: nodes.Call, context: nodes.Node, valued: bool):
    """The ways `_jump` evaluates a `where`, in order, each the fallback of the one before where that
    meets a part it does not evaluate at a point (a reduction, a softmax, `onehot`, a list): (the node
    judged, the form each part is taken through). First `context` as it is. With `valued`, then
    `context` for a last axis of one element, a jump there being one a loss over that shape has;
    then the `where` on its own, where only the node above it holds such a part (`onehot` or a list
    in an outer condition; it was named as not checked; a review)."""
    yield context, None
    if valued:
        yield context, _one_column
        if context is not node and _pointwise(symbolic, node):
            yield node, None


def _breaks(expr: sp.Basic) -> bool:
    """Whether `expr` may be discontinuous: it holds a `where`, a step or a rounding."""
    return expr.has(sp.Piecewise, sp.Heaviside, sp.sign, sp.floor, sp.ceiling, sf.Round)


def _pointwise(symbolic: SymbolicLoss, node: nodes.Call) -> bool:
    """Whether a `where`'s condition and branches are evaluated at a point (no function over the last
    axis, `onehot` or list in them)."""
    return not any(node_expr(symbolic, part).has(sf.TensorFunction, sf.Vector) for part in node.args)


def _where_point(symbolic: SymbolicLoss, node: nodes.Call, budget: Budget, context, valued, cond, compound, form):
    """`_boundary_jump` of a `where` (see `_jump`), each part of it taken through `form` (None: as it is)."""

    def expr(part: nodes.Node) -> sp.Basic:
        value = node_expr(symbolic, part)
        return value if form is None else form(value)

    _, a, b = node.args
    others = None
    # Differences are taken in floats: SymPy's `l - r` would re-simplify deep operands.
    if valued:
        # Where the branches differ at the root, the node above across it (one-sided: at the root
        # itself, a `where` in a branch on the same boundary reads either side; `where(abs(e) <= m,
        # 0, where(e > m, e - m, -e - m))` was a jump of 1); for an equality, which holds at its
        # root alone (never just beside it), that node at the root with the `where` taken as each
        # branch.
        own = Difference(expr(a), expr(b), budget)
        equality = any(p.op in ("==", "!=") for p in ([cond] if compound is None else compound))
        if context is node and not _breaks(expr(a)) and not _breaks(expr(b)):
            diff = own  # (exact at the root, however steep the branches: `root_rounding` judges them)
        elif equality:
            outer = None if context is node or form is not None else _switched(symbolic, node, context, budget)
            diff = own if context is node else Gated(own, outer or Across(expr(context), budget))
        else:
            diff = Gated(own, Across(expr(context), budget))
        # (its own branches may hold thresholds; far targets, for a term such as `relu(y_true - 3)`)
        others = _OTHERS + _FAR_OTHERS + _gate_targets(symbolic, expr(context))
    else:
        switched = _switched(symbolic, node, context, budget)
        if switched is None:
            return None
        # (an equality holds at its root alone: across it the node does not change; as before)
        equality = any(p.op in ("==", "!=") for p in ([cond] if compound is None else compound))
        diff = switched if equality else Gated(switched, Across(switched.original, budget))
    if compound is None:
        relation = expr(cond)
        if isinstance(relation, sp.logic.boolalg.BooleanAtom):  # SymPy decided it (`exp(y_pred) >= 0`): no boundary
            return None
        gap = Difference(expr(cond.left), expr(cond.right), budget)
        # a root of the gap where the condition does not flip is no boundary: `tanh(y_pred) <= 1`
        # at y_pred = 20, where tanh is 1.0 in floats (a review); an equality holds at its root
        # alone, which bisection finds only approximately: not confirmed so
        flips = None if isinstance(relation, _EQUALITIES) else Truth(relation, budget)
        return _boundary_jump(symbolic, gap, diff, flips=flips, far_targets=False, others=others)
    condition = expr(node.args[0])
    if isinstance(condition, sp.logic.boolalg.BooleanAtom):
        return None
    whole = Truth(condition, budget)
    point = None
    for part in compound:
        gap = Difference(expr(part.left), expr(part.right), budget)
        relation = expr(part)
        # Where the part holds on its boundary only (an equality), no point beside the
        # bisected root shows the condition flip: compare the condition with the part
        # taken as true and as false instead, where SymPy kept the part as written.
        sides = None
        if isinstance(relation, _EQUALITIES) and len(compound) <= _MAX_TAKEN and condition.has(relation):
            taken = (condition.xreplace({relation: value}) for value in (sp.true, sp.false))
            sides = tuple(Truth(side, budget) for side in taken)
        point = point or _boundary_jump(
            symbolic, gap, diff, flips=whole, sides=sides, others=None if others is None else others + _FAR_OTHERS
        )
    return point


def _gate_targets(symbolic: SymbolicLoss, context: sp.Basic) -> tuple[float, ...]:
    """Values of y_true where an outer `where` may read the one it holds: each side of a comparison
    in it that reads y_true but not y_pred (`y_true > 3 and e > 0`) that reads neither input, and that
    plus and minus 0.5, at the parameters' defaults (the values tried alone left such a `where`
    never read, and its jump unseen; a review). At most 12."""
    env = symbolic.defaults()
    found: list[float] = []
    for relation in subtrees.atoms(context, sp.Rel):
        if not relation.has(Y_TRUE) or relation.has(Y_PRED):
            continue  # (a comparison that reads y_pred moves with it over the values tried)
        for side in relation.args:
            if not side.has(Y_TRUE, Y_PRED):
                with contextlib.suppress(Unsupported, TypeError, ValueError, ArithmeticError):
                    value = compiled(side)(env)
                    found += [value, value + 0.5, value - 0.5] if math.isfinite(value) else []
    return tuple(dict.fromkeys(found))[:12]


def _sign_jump(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Call, budget: Budget, context: nodes.Node
) -> Diagnostic | None:
    """A warning where `context`, above a `sign(x)` (a switch between 1 and -1), differs between the
    two where x is 0: `sign(e) * (e + 1)` jumps by 2 there (it was not looked at; a user test),
    `sign(e) * e` (SymPy's `|e|`) does not."""
    try:
        switched = _switched(symbolic, node, context, budget)
        if switched is None:
            return None
        diff = Gated(switched, Across(switched.original, budget))
        x = node_expr(symbolic, node.args[0])
        gap = Difference(x, sp.Integer(0), budget)
        point = _boundary_jump(symbolic, gap, diff, flips=Truth(sp.StrictGreaterThan(x, 0), budget), far_targets=False)
    except Unsupported:
        raise _OverAxis from None
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    where = f"`{resolved.text(node.args[0])}` changes sign"
    return _jump_warning(resolved, node, context, point, where, "both sides agree where it is 0")


# A step function of x: the value just past one of its steps, and just before, each in terms of x
# there (floor steps from k - 1 to k where x reaches an integer k, ceil from k to k + 1 where x
# passes it, round from k to k + 1 at k + 1/2), and a function of x that changes sign at each step.
_HALF = sp.Rational(1, 2)
_STEPS = {
    "floor": (lambda x: x, lambda x: x - 1, lambda x: sp.sin(sp.pi * x), "an integer"),
    "ceil": (lambda x: x + 1, lambda x: x, lambda x: sp.sin(sp.pi * x), "an integer"),
    "round": (lambda x: x + _HALF, lambda x: x - _HALF, lambda x: sp.cos(sp.pi * x), "a half-integer"),
}


def _step_jump(
    resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Call, budget: Budget, context: nodes.Node
) -> Diagnostic | None:
    """A warning where `context`, above a `floor`, `ceil` or `round` of x, changes by a step across
    one of the step function's steps: `e * floor(y_pred)` jumps by e at every integer (it had no
    diagnostic, its derivative being -floor(y_pred), not 0; a review), `sin(pi * y_pred) *
    floor(y_pred)` does not. The size is that of `context` itself just past the step less just
    before it (two steps that cancel, `ceil(x) - floor(x)`, are none), at steps where the step
    function's value does change (not where x only touches an integer, `floor(clip(y_pred, 0,
    0.5))`), looked for outwards from y_pred = 0 (a step at every integer would use the roots up
    from -10 alone; a review)."""
    after, before, crossing, what = _STEPS[node.func]
    try:
        x = node_expr(symbolic, node.args[0])
        if _switched(symbolic, node, context, budget, branches=(after(x), before(x))) is None:
            return None
        whole = node_expr(symbolic, context)
        if whole.has(*_ONE_COLUMN):
            whole = _one_column(whole)
        gap = Difference(crossing(x), sp.Integer(0), budget)
        steps = Value(node_expr(symbolic, node), budget)
        point = _boundary_jump(symbolic, gap, Across(whole, budget), flips=steps, grids=_OUTWARDS, others=_STEP_OTHERS)
    except Unsupported:
        raise _OverAxis from None
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    where = f"`{resolved.text(node.args[0])}` passes {what}"
    advice = f"it agree on both sides of each step, or use a smooth stand-in for `{node.func}`"
    return _jump_warning(resolved, node, context, point, where, advice)


def _where_kinks(
    resolved: Resolved, symbolic: SymbolicLoss, wheres: list, skipped: set[int], valued: set
) -> list[nodes.Call]:
    """The `where`s among `wheres` (each with the node above it that `_gates` or, for branches free
    of y_pred, `_switch_contexts` found) where that node, with no jump, changes its slope at a
    boundary of the condition that moves with y_pred (`Bend`): `where(e > 0, e, 0)` as `relu(e)`,
    where Huber's join of `0.5 x^2` and `|x| - 0.5` keeps its slope, and `where(e > 0, e, 0)^2`
    squares the kink away. Not those in `skipped` (warned of a jump, or not checked), nor those
    that only feed a condition; on a budget of their own, the rest left unnoted once it is spent."""
    budget = Budget(MAX_EVALUATIONS)
    kinked: dict[int, nodes.Call] = {}
    for node, context in wheres:
        if id(node) in skipped or id(node) in kinked or (node.span.start, node.span.end) not in valued:
            continue
        try:
            if _bends(resolved, symbolic, node, context, budget):
                kinked[id(node)] = node
        except OutOfBudget:
            break
        except (_OverAxis, Unsupported, TypeError, ValueError, ArithmeticError, AttributeError):
            continue
    return list(kinked.values())


def _bends(resolved: Resolved, symbolic: SymbolicLoss, node: nodes.Call, context: nodes.Node, budget: Budget) -> bool:
    """Whether the `where` `node` puts a kink in `context` (`Bend`) at a point along y_pred where its
    condition flips, on the boundary of one of its comparisons (not an equality), at the values of
    y_true that the jump check tries: see `_where_kinks`."""
    comparisons = _comparisons(resolved, node.args[0])
    if not comparisons:
        return False
    parts = [node_expr(symbolic, node.args[0])]
    for comparison in comparisons:
        parts += [node_expr(symbolic, comparison.left), node_expr(symbolic, comparison.right)]
    if any(part.has(sf.TensorFunction) for part in parts):
        parts = [_one_column(part) for part in parts]
    if isinstance(parts[0], sp.logic.boolalg.BooleanAtom) or any(p.has(sf.TensorFunction, sf.Vector) for p in parts):
        return False
    # (an equality holds at its boundary alone: no side to take a slope on; a class condition,
    # `y_true > 0.5`, keeps one branch for each sample whatever y_pred does)
    gaps = [
        Difference(left, right, budget)
        for comparison, left, right in zip(comparisons, parts[1::2], parts[2::2], strict=True)
        if comparison.op not in ("==", "!=") and Y_PRED in (left.free_symbols | right.free_symbols)
    ]
    if not gaps:
        return False
    # (the node above for a last axis of one element where it reads one, as the jump check takes it:
    # `where(e > 0, e, 0) * mean(y_pred)`)
    switched = _switched(symbolic, node, context, budget)
    if switched is None or switched.original.has(sf.TensorFunction, sf.Vector):
        return False
    flips, bend = Truth(parts[0], budget), Bend(Value(switched.original, budget), switched)
    env = symbolic.defaults()
    for gap in gaps:
        for fixed in _OTHERS:
            env[Y_TRUE] = fixed
            for root in boundary_roots(gap, Y_PRED, env):
                if flips_at(flips, env, Y_PRED, root):
                    env[Y_PRED] = root
                    if bend.at(env):
                        return True
    return False


def _jump_warning(resolved: Resolved, node: nodes.Call, context: nodes.Node, point, where: str, advice: str):
    """The warning at `node` of a jump of `context` by the size at `point` (None where none was found)."""
    if point is None:
        return None
    t, p, size = point
    message = (
        f"`{resolved.text(context)}` jumps by {size:.3g} where {where} (e.g. at y_true={t:.3g},"
        f" y_pred={p:.3g}); the gradient cannot see the jump, so make {advice}"
    )
    span = node.span
    return Diagnostic("warning", message, span.line, span.column, "jump", span, resolved.source)


def _boundary_jump(
    symbolic: SymbolicLoss,
    gap: Difference,
    diff: Difference,
    flips: Truth | None = None,
    sides: tuple[Truth, Truth] | None = None,
    far_targets: bool = True,
    grids: tuple | None = None,
    others: tuple[float, ...] | None = None,
):
    """A (y_true, y_pred, |jump|) on the boundary gap == 0 where diff is not 0, or None.

    With `flips` (a compound condition of which gap is one comparison): only where that
    condition takes different values on the two sides of the boundary; with `sides` (that
    condition with the comparison taken as true, and as false): only where those differ.
    """
    env = symbolic.defaults()
    if Y_PRED not in gap.free_symbols:
        return None
    axis, other = Y_PRED, Y_TRUE
    # A compound condition may hold only for larger targets (`y_pred > 1 and y_true > 5`).
    for fixed in others or (_OTHERS + _FAR_OTHERS if flips is not None and far_targets else _OTHERS):
        env[other] = fixed
        for root in boundary_roots(gap, axis, env, grids):
            if sides is not None:
                env[axis] = root
                if sides[0].at(env) == sides[1].at(env):
                    continue
            elif flips is not None and not flips_at(flips, env, axis, root):
                continue
            elif flips is None and not touches_zero(gap, env, axis, root):
                continue  # an equality's sides pass each other in a jump there, never equal
            env[axis] = root
            size = abs(diff.at(env))
            scale = 1.0 + abs(root) + abs(fixed)
            if math.isfinite(size) and size > 1e-6 * scale and not root_rounding(diff, env, axis, root, size, fixed):
                return (env[Y_TRUE], env[Y_PRED], size)
    return None
