"""Jumps: where a `where`, `sign`, `floor`, `ceil` or `round` whose boundary moves with y_pred
makes the node above it change by a step. Points of the boundary are found by bisection along
y_pred (`boundaries`), and a jump is confirmed, and sized, by that node across the point
(`jump_of`); `smoothness` finds the node above and says what was not checked."""

from __future__ import annotations

import contextlib
import math

import sympy as sp

from lossdsl import nodes, rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.boundaries import (
    FAR_GRIDS,
    GRID,
    Across,
    Budget,
    Difference,
    Gated,
    Switched,
    Truth,
    Value,
    boundary_roots,
    flips_at,
    operation_count,
    root_rounding,
    touches_zero,
)
from lossdsl.checks.numeric import Unsupported, compiled
from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# From 0 outwards, each side, up to 8 roots in each (then 3 further out): a step function has a
# root at every integer (of its argument), and the jumps near 0 are those a loss is most likely
# to show. At two values of y_true (not five): each root is a bisection, and a step has many.
_OUTWARDS = ((GRID[40:], 8), (GRID[40::-1], 8), *((grid, 3) for grid in FAR_GRIDS))


_STEP_OTHERS = (-1.3, 0.4)


OTHERS = (-1.3, 0.0, 0.4, 1.0, 2.7)


_FAR_OTHERS = (-9.5, 9.5)


# A compound condition's equalities are judged by rebuilding it with each taken as true and as
# false only up to this many comparisons (SymPy re-evaluates the whole `or` each time: 200
# equalities took minutes); past it, by the points beside each root.
_MAX_TAKEN = 16


# Comparisons that hold on their boundary alone (or, a value with itself, on no boundary).
_EQUALITIES = (sp.Eq, sp.Ne, sf.SelfComparison)


class OverAxis(Exception):
    """A `where`, `sign` or step whose boundary moves with y_pred, but of which a part over the last
    axis (a reduction, a vector function, `onehot`, a list) is not evaluated at a point."""


def comparison_of(resolved: Resolved, cond: nodes.Node) -> nodes.Compare | None:
    """The comparison a condition comes down to, through condition bindings and `not`."""
    while (
        True
    ):  # ends: `not` has finite depth and a binding refers only to earlier bindings
        if isinstance(cond, nodes.Not):
            cond = cond.operand
        elif isinstance(cond, nodes.Name) and resolved.binding_value(cond) is not None:
            cond = resolved.binding_value(cond)
        else:
            return cond if isinstance(cond, nodes.Compare) else None


def comparisons_of(resolved: Resolved, cond: nodes.Node) -> list[nodes.Compare] | None:
    """The comparisons a compound condition (`and`, `or`, `not`) is made of, or None if not all are."""
    found: list[nodes.Compare] = []
    stack = [cond]
    while stack:  # ends: a binding refers only to earlier bindings
        current = stack.pop()
        if isinstance(current, nodes.BoolOp):
            stack.extend(reversed(current.operands))
        elif isinstance(current, nodes.Not):
            stack.append(current.operand)
        elif (
            isinstance(current, nodes.Name)
            and resolved.binding_value(current) is not None
        ):
            stack.append(resolved.binding_value(current))
        elif isinstance(current, nodes.Compare):
            found.append(current)
        else:
            return None
    return found


def switched_context(
    symbolic: SymbolicLoss,
    node: nodes.Call,
    context: nodes.Node,
    budget: Budget,
    branches: tuple | None = None,
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
        raise OverAxis
    switch, whole = node_expr(symbolic, node), node_expr(symbolic, context)
    if branches is not None:  # a step function's values beside a step
        a, b = branches
    elif node.func == "sign":
        a, b = sp.Integer(1), sp.Integer(-1)
        scale, inner = switch.as_coeff_Mul()
        if scale.is_number and scale != 1 and isinstance(inner, sp.sign):
            # SymPy's `sign(-x)` is `-sign(x)`: the `sign` left in `context` is switched, taking the
            # values that give the written one 1 and -1 (`sign(-y_pred) * (y_pred + 1)` jumps by 2;
            # it was not looked at, nor its kink; the change review)
            switch, a, b = inner, 1 / scale, -1 / scale
    else:
        a, b = (node_expr(symbolic, branch) for branch in node.args[1:])
    budget.spend(operation_count(whole))
    if a == b or not whole.has(switch):
        return None
    original = whole
    if whole.has(*_ONE_COLUMN):
        # the `where` named before the reductions go (taken out, they let SymPy merge nested ones)
        named = sp.Dummy("switched", real=True)
        original = one_column(whole)
        switch, whole = named, one_column(whole.xreplace({switch: named}))
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


def one_column(expr: sp.Basic) -> sp.Basic:
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


def jump_of(
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
    if node.func in STEPS:
        return _step_jump(resolved, symbolic, node, budget, context)
    cond = comparison_of(resolved, node.args[0])
    compound = None
    if cond is None:
        compound = comparisons_of(resolved, node.args[0])
        if not compound:
            return None
    try:
        for index, (checked, form) in enumerate(
            _attempts(symbolic, node, context, valued)
        ):
            try:
                point = _where_point(
                    symbolic, node, budget, checked, valued, cond, compound, form
                )
            except Unsupported:
                continue
            if index and point is None and not _pointwise(symbolic, node):
                # none there, but the `where` itself reads the last axis: named as not checked (it
                # passed silently: `where(e^2 > mean(e^2), e^2, 0)` jumps; a review)
                raise OverAxis
            break
        else:
            raise OverAxis
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    shown = node.args[0] if compound is not None else cond
    where = f"`{resolved.text(shown)}` flips"
    advice = "both branches agree at the boundary"
    return _jump_warning(
        resolved, node, node if valued else context, point, where, advice
    )


def _attempts(
    symbolic: SymbolicLoss, node: nodes.Call, context: nodes.Node, valued: bool
):
    """The ways `jump_of` evaluates a `where`, in order, each the fallback of the one before where that
    meets a part it does not evaluate at a point (a reduction, a softmax, `onehot`, a list): (the node
    judged, the form each part is taken through). First `context` as it is. With `valued`, then
    `context` for a last axis of one element, a jump there being one a loss over that shape has;
    then the `where` on its own, where only the node above it holds such a part (`onehot` or a list
    in an outer condition; it was named as not checked; a review)."""
    yield context, None
    if valued:
        yield context, one_column
        if context is not node and _pointwise(symbolic, node):
            yield node, None


def _breaks(expr: sp.Basic) -> bool:
    """Whether `expr` may be discontinuous: it holds a `where`, a step or a rounding."""
    return expr.has(sp.Piecewise, sp.Heaviside, sp.sign, sp.floor, sp.ceiling, sf.Round)


def _pointwise(symbolic: SymbolicLoss, node: nodes.Call) -> bool:
    """Whether a `where`'s condition and branches are evaluated at a point (no function over the last
    axis, `onehot` or list in them)."""
    return not any(
        node_expr(symbolic, part).has(sf.TensorFunction, sf.Vector)
        for part in node.args
    )


def _where_point(
    symbolic: SymbolicLoss,
    node: nodes.Call,
    budget: Budget,
    context,
    valued,
    cond,
    compound,
    form,
):
    """`_boundary_jump` of a `where` (see `jump_of`), each part of it taken through `form` (None: as it is)."""

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
        equality = any(
            p.op in ("==", "!=") for p in ([cond] if compound is None else compound)
        )
        if context is node and not _breaks(expr(a)) and not _breaks(expr(b)):
            diff = own  # (exact at the root, however steep the branches: `root_rounding` judges them)
        elif equality:
            outer = (
                None
                if context is node or form is not None
                else switched_context(symbolic, node, context, budget)
            )
            diff = (
                own
                if context is node
                else Gated(own, outer or Across(expr(context), budget))
            )
        else:
            diff = Gated(own, Across(expr(context), budget))
        # (its own branches may hold thresholds; far targets, for a term such as `relu(y_true - 3)`)
        others = OTHERS + _FAR_OTHERS + _gate_targets(symbolic, expr(context))
    else:
        switched = switched_context(symbolic, node, context, budget)
        if switched is None:
            return None
        # (an equality holds at its root alone: across it the node does not change; as before)
        equality = any(
            p.op in ("==", "!=") for p in ([cond] if compound is None else compound)
        )
        diff = (
            switched if equality else Gated(switched, Across(switched.original, budget))
        )
    if compound is None:
        relation = expr(cond)
        if isinstance(
            relation, sp.logic.boolalg.BooleanAtom
        ):  # SymPy decided it (`exp(y_pred) >= 0`): no boundary
            return None
        gap = Difference(expr(cond.left), expr(cond.right), budget)
        # a root of the gap where the condition does not flip is no boundary: `tanh(y_pred) <= 1`
        # at y_pred = 20, where tanh is 1.0 in floats (a review); an equality holds at its root
        # alone, which bisection finds only approximately: not confirmed so
        flips = None if isinstance(relation, _EQUALITIES) else Truth(relation, budget)
        return _boundary_jump(
            symbolic, gap, diff, flips=flips, far_targets=False, others=others
        )
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
        if (
            isinstance(relation, _EQUALITIES)
            and len(compound) <= _MAX_TAKEN
            and condition.has(relation)
        ):
            taken = (
                condition.xreplace({relation: value}) for value in (sp.true, sp.false)
            )
            sides = tuple(Truth(side, budget) for side in taken)
        point = point or _boundary_jump(
            symbolic,
            gap,
            diff,
            flips=whole,
            sides=sides,
            others=None if others is None else others + _FAR_OTHERS,
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
                with contextlib.suppress(
                    Unsupported, TypeError, ValueError, ArithmeticError
                ):
                    value = compiled(side)(env)
                    found += (
                        [value, value + 0.5, value - 0.5]
                        if math.isfinite(value)
                        else []
                    )
    return tuple(dict.fromkeys(found))[:12]


def _sign_jump(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    node: nodes.Call,
    budget: Budget,
    context: nodes.Node,
) -> Diagnostic | None:
    """A warning where `context`, above a `sign(x)` (a switch between 1 and -1), differs between the
    two where x is 0: `sign(e) * (e + 1)` jumps by 2 there (it was not looked at; a user test),
    `sign(e) * e` (SymPy's `|e|`) does not."""
    try:
        switched = switched_context(symbolic, node, context, budget)
        if switched is None:
            return None
        diff = Gated(switched, Across(switched.original, budget))
        x = node_expr(symbolic, node.args[0])
        gap = Difference(x, sp.Integer(0), budget)
        point = _boundary_jump(
            symbolic,
            gap,
            diff,
            flips=Truth(sp.StrictGreaterThan(x, 0), budget),
            far_targets=False,
        )
    except Unsupported:
        raise OverAxis from None
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    where = f"`{resolved.text(node.args[0])}` changes sign"
    return _jump_warning(
        resolved, node, context, point, where, "both sides agree where it is 0"
    )


# A step function of x: the value just past one of its steps, and just before, each in terms of x
# there (floor steps from k - 1 to k where x reaches an integer k, ceil from k to k + 1 where x
# passes it, round from k to k + 1 at k + 1/2), and a function of x that changes sign at each step.
_HALF = sp.Rational(1, 2)


STEPS = {
    "floor": (lambda x: x, lambda x: x - 1, lambda x: sp.sin(sp.pi * x), "an integer"),
    "ceil": (lambda x: x + 1, lambda x: x, lambda x: sp.sin(sp.pi * x), "an integer"),
    "round": (
        lambda x: x + _HALF,
        lambda x: x - _HALF,
        lambda x: sp.cos(sp.pi * x),
        "a half-integer",
    ),
}


def _step_jump(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    node: nodes.Call,
    budget: Budget,
    context: nodes.Node,
) -> Diagnostic | None:
    """A warning where `context`, above a `floor`, `ceil` or `round` of x, changes by a step across
    one of the step function's steps: `e * floor(y_pred)` jumps by e at every integer (it had no
    diagnostic, its derivative being -floor(y_pred), not 0; a review), `sin(pi * y_pred) *
    floor(y_pred)` does not. The size is that of `context` itself just past the step less just
    before it (two steps that cancel, `ceil(x) - floor(x)`, are none), at steps where the step
    function's value does change (not where x only touches an integer, `floor(clip(y_pred, 0,
    0.5))`), looked for outwards from y_pred = 0 (a step at every integer would use the roots up
    from -10 alone; a review)."""
    after, before, crossing, what = STEPS[node.func]
    try:
        x = node_expr(symbolic, node.args[0])
        if (
            switched_context(
                symbolic, node, context, budget, branches=(after(x), before(x))
            )
            is None
        ):
            return None
        whole = node_expr(symbolic, context)
        if whole.has(*_ONE_COLUMN):
            whole = one_column(whole)
        gap = Difference(crossing(x), sp.Integer(0), budget)
        steps = Value(node_expr(symbolic, node), budget)
        point = _boundary_jump(
            symbolic,
            gap,
            Across(whole, budget),
            flips=steps,
            grids=_OUTWARDS,
            others=_STEP_OTHERS,
        )
    except Unsupported:
        raise OverAxis from None
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    where = f"`{resolved.text(node.args[0])}` passes {what}"
    advice = f"it agree on both sides of each step, or use a smooth stand-in for `{node.func}`"
    return _jump_warning(resolved, node, context, point, where, advice)


def _jump_warning(
    resolved: Resolved,
    node: nodes.Call,
    context: nodes.Node,
    point,
    where: str,
    advice: str,
):
    """The warning at `node` of a jump of `context` by the size at `point` (None where none was found)."""
    if point is None:
        return None
    t, p, size = point
    message = (
        f"`{resolved.text(context)}` jumps by {size:.3g} where {where} (e.g. at y_true={t:.3g},"
        f" y_pred={p:.3g}); the gradient cannot see the jump, so make {advice}"
    )
    span = node.span
    return Diagnostic.at("warning", "jump", message, span, resolved.source)


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
    for fixed in others or (
        OTHERS + _FAR_OTHERS if flips is not None and far_targets else OTHERS
    ):
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
            if (
                math.isfinite(size)
                and size > 1e-6 * scale
                and not root_rounding(diff, env, axis, root, size, fixed)
            ):
                return (env[Y_TRUE], env[Y_PRED], size)
    return None
