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
[-10, 10] in steps of 0.25, then beyond it at 12, 15, 20, ... 1e30 (and their
negatives): a boundary in a band narrower than the grid's step is not found.
A `where` whose condition or branches read the last axis as a whole, and that
shows no jump for a last axis of one element, is named in a note as not checked.

This module walks the program and finds, for each switch, the node above it; `jumps` judges a
jump there, `kinks` the kinks of functions such as `abs` and `relu`, and `_where_kinks` here the
kink of a `where` whose branches meet at different slopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from lossdsl import nodes
from lossdsl import symfuncs as sf
from lossdsl.checks.boundaries import (
    MAX_EVALUATIONS,
    Bend,
    Budget,
    Difference,
    OutOfBudget,
    Truth,
    Value,
    boundary_roots,
    flips_at,
)
from lossdsl.checks.domain import in_values
from lossdsl.checks.jumps import (
    OTHERS,
    STEPS,
    OverAxis,
    comparison_of,
    comparisons_of,
    jump_of,
    one_column,
    switched_context,
)
from lossdsl.checks.kinks import Signs, code_has_kinks, kink_note, smoothed_away
from lossdsl.checks.numeric import Unsupported
from lossdsl.errors import Diagnostic
from lossdsl.functions import FUNCTIONS, kind_of
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr


def check_smoothness(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """Notes for kinks in y_pred, warnings for `where` jumps."""
    found: list[Diagnostic] = []
    walked = _walk(resolved)
    parents, valued, kinks = walked.parents, walked.valued, walked.kinks
    # A `where` in a branch of another is checked in the outermost `where` that holds it (after the
    # walk, which completes `parents`): the inner boundary may lie where the outer one reads the
    # other branch (a dead zone, `where(abs(e) <= m, 0, where(e > 0, 2*(e - m), -e - m))`).
    plain, compound = (
        [(n, c) for n, _ in wheres for c in _gates(resolved, n, parents)]
        for wheres in (walked.plain, walked.compound)
    )
    # (after the walk: whether a kink is squared away depends on every use of it)
    if kinks and not code_has_kinks(symbolic):
        kinks = []  # the stable rewrites took them away: `relu(x) + log(1 + exp(-abs(x)))` is `softplus(x)`
    found += [
        kink_note(resolved, node)
        for node in kinks
        if not smoothed_away(resolved, symbolic, node, parents)
    ]
    switched: list[tuple[nodes.Call, nodes.Node]] = []
    for node in sorted(walked.switches, key=lambda n: n.span.start):
        switched += [
            (node, context) for context in _switch_contexts(resolved, node, parents)
        ]
    jumps = _Jumps(resolved, symbolic, (plain, compound, switched))
    found += jumps.found
    warned, unchecked = jumps.warned, jumps.unchecked
    # (nor, for a kink, one that another on the same condition decides wherever the loss reads it;
    # its jump is still looked for: the outer `where` is judged at its boundary, where the inner one
    # reads its other branch, and a jump of the inner one's branch showed in none (the change review))
    decided = {
        id(n)
        for n, _ in plain + compound + switched
        if _decided(resolved, symbolic, n, parents)
    }
    skipped = warned | unchecked.keys() | jumps.over_axis.keys() | decided
    # (in the order written: the budget, if spent, leaves out the last ones)
    wheres = sorted(plain + compound + switched, key=lambda pair: pair[0].span.start)
    found += [
        switch_kink_note(resolved, node)
        if not resolved.of(node).live
        else kink_note(resolved, node)
        for node in _where_kinks(resolved, symbolic, wheres, skipped, valued)
    ]
    if unchecked:
        found.append(
            _unchecked_note(
                resolved, unchecked, "the program is too large to check them all"
            )
        )
    # (one of several contexts may have been checked, and warned of)
    over_axis = {
        key: node
        for key, node in jumps.over_axis.items()
        if key not in warned and key not in unchecked
    }
    if over_axis:
        reason = (
            "they read the last axis as a whole (a reduction, a softmax, `onehot` or a list),"
            " which the check does not evaluate at a point"
        )
        found.append(_unchecked_note(resolved, over_axis, reason))
    return found


@dataclass
class _Walked:
    """What the walk from the loss finds. Conditions that come down to one comparison first
    (`plain`), then compound ones (`and`, `or`), then the `where`s whose branches do not read
    y_pred (`switches`, checked in `_switch_contexts`), each kind with a budget of its own: the
    many comparisons of a compound condition cannot use up the budget of a plain `where` met
    after it. Each entry of `plain` and `compound`: a `where` and the node whose jump is
    checked (the `where` itself, or for a switch, a node above it)."""

    plain: list[tuple[nodes.Call, nodes.Node]] = field(default_factory=list)
    compound: list[tuple[nodes.Call, nodes.Node]] = field(default_factory=list)
    switches: list[nodes.Call] = field(default_factory=list)
    kinks: list[nodes.Call] = field(default_factory=list)
    parents: dict[int, list[nodes.Node]] = field(default_factory=dict)
    valued: set = field(default_factory=set)


def _walk(resolved: Resolved) -> _Walked:
    """The `where`s, steps and kinks the loss reads, from the loss through the bindings it reads:
    a binding nothing reads is not in the code (`a = where(y_pred > 0, e^2 + 1, e^2)` then `e^2`
    was warned of a jump; a review)."""
    # a kink that feeds only a `where` condition passes no gradient
    walked = _Walked(valued=in_values(resolved))
    parents = walked.parents
    signs = Signs(resolved)
    seen: set[int] = set()
    stack: list[nodes.Node] = [resolved.result]
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
        if (
            info.ok
            and not info.live
            and info.pred
            and node.func in ("where", "sign", *STEPS)
        ):
            walked.switches.append(node)
        if not (info.ok and info.live):
            continue
        if (
            FUNCTIONS[node.func].smooth == "kink"
            and (node.span.start, node.span.end) in walked.valued
            and not signs.constant(node)
        ):
            walked.kinks.append(node)
        if node.func == "where":
            plain = comparison_of(resolved, node.args[0]) is not None
            (walked.plain if plain else walked.compound).append((node, node))
    return walked


class _Jumps:
    """The jump warnings of each kind of `where` in turn, each kind within a budget of its own:
    `found`, the warnings; `warned`, the `where`s warned of (one warning each); `unchecked`,
    those the budget left; `over_axis`, those that read the last axis as a whole."""

    def __init__(self, resolved: Resolved, symbolic: SymbolicLoss, kinds) -> None:
        self.found: list[Diagnostic] = []
        self.unchecked: dict[int, nodes.Call] = {}
        self.over_axis: dict[int, nodes.Call] = {}
        self.warned: set[int] = set()
        switched = kinds[-1]
        for wheres in kinds:
            budget = Budget(MAX_EVALUATIONS)
            for index, (node, context) in enumerate(wheres):
                if id(node) in self.warned:
                    continue  # one warning for each `where`
                try:
                    # (the warning quotes the node whose value jumps: for a `where` held in
                    # another's branch, the inner one, which is where the two sides disagree)
                    jump = jump_of(
                        resolved,
                        symbolic,
                        node,
                        budget,
                        context,
                        valued=wheres is not switched,
                    )
                except OutOfBudget:
                    self.unchecked.update(
                        (id(where), where)
                        for where, _ in wheres[index:]
                        if id(where) not in self.warned
                    )
                    break
                except OverAxis:
                    self.over_axis[id(node)] = node
                    continue
                if jump:
                    self.found.append(jump)
                    self.warned.add(id(node))


def _unchecked_note(
    resolved: Resolved, unchecked: dict[int, nodes.Call], reason: str
) -> Diagnostic:
    span = min(unchecked.values(), key=lambda n: n.span.start).span
    kinds = "/".join(
        f"`{func}`" for func in sorted({n.func for n in unchecked.values()})
    )
    message = f"{len(unchecked)} {kinds}(s) were not checked for jumps: {reason}"
    return Diagnostic.at("note", "jump-unchecked", message, span, resolved.source)


def _switch_contexts(
    resolved: Resolved, node: nodes.Call, parents: dict[int, list[nodes.Node]]
) -> list[nodes.Node]:
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
            kind = (
                kind_of(parent.func, len(parent.args))
                if isinstance(parent, nodes.Call)
                else None
            )
            if parent is None or (kind in ("reduction", "vector") and not uniform):
                top = (
                    resolved.binding_value(current)
                    if isinstance(current, nodes.Name)
                    else current
                )
                info = resolved.of(top) if top is not None else None
                if info is not None and info.ok and info.live:
                    found[id(top)] = top
                elif kind == "reduction":
                    stack.append(
                        (parent, True)
                    )  # `sum(where(y_pred > 0, 1, 2)) * e^2`: a switch still
            elif isinstance(parent, nodes.Call) and parent.func == "sign":
                continue  # as a condition: that `sign` is checked itself, at its argument's change of
                # sign (`sign(sign(y_pred)) * y_pred` had a note of each; the change review). Not a
                # step's: its check looks for an argument passing an integer, which one that jumps
                # from -1 to 1 never does (`floor(sign(y_pred)) * (y_pred + 1)`; the second review)
            elif isinstance(
                parent, (nodes.Chain, nodes.Unary, nodes.Power, nodes.Call, nodes.Name)
            ):
                stack.append((parent, uniform))
            # else: a comparison, `and`, `or`, `not` (a value in a condition reaches a `where` only
            # through one of them), a list: not followed
    return list(found.values())


def _gates(
    resolved: Resolved, node: nodes.Call, parents: dict[int, list[nodes.Node]]
) -> list[nodes.Node]:
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
            if (
                gate
                or isinstance(
                    parent, (nodes.Name, nodes.Unary, nodes.Chain, nodes.Power)
                )
                or _elementwise(parent)
            ):
                stack.append(parent)
            elif not isinstance(parent, (nodes.Compare, nodes.BoolOp, nodes.Not)):
                found.setdefault(id(current), current)
            # (a value in a condition passes no value on: `where(d > 0, d, -d)` of a `where` `d`
            # that jumps by 2 is |d|, continuous; judged on its own, it was a jump; a review)
        if not above:
            found.setdefault(id(current), current)
    # (a binding's name stands for its value: a context that is a name is the value it reads)
    return list(
        {id(_named(resolved, c)): _named(resolved, c) for c in found.values()}.values()
    )


def _decided(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    node: nodes.Call,
    parents: dict[int, list[nodes.Node]],
) -> bool:
    """Whether every way the loss reads the `where` `node` passes, through elementwise arithmetic,
    functions and bindings, into a branch of another `where` on the same condition: there the
    condition is the same at each element, so `node` always takes the one branch and neither jumps
    nor bends by itself: no kink of its own. A guard of a domain inside a branch, `where(y_pred > 0,
    sqrt(where(y_pred > 0, y_pred, 1)), 0)` (as the domain check advises), was noted as a kink beside
    the outer `where`. Not past a reduction or a vector function, which reads the other elements
    too. (Its jump is still looked for: see `check_smoothness`.)"""
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
            if isinstance(parent, nodes.Call) and kind_of(
                parent.func, len(parent.args)
            ) in ("reduction", "vector"):
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
    return (
        (resolved.binding_value(node) or node) if isinstance(node, nodes.Name) else node
    )


def _where_kinks(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    wheres: list,
    skipped: set[int],
    valued: set,
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
        if (
            id(node) in skipped
            or id(node) in kinked
            or (node.span.start, node.span.end) not in valued
        ):
            continue
        try:
            if _bends(resolved, symbolic, node, context, budget):
                kinked[id(node)] = node
        except OutOfBudget:
            break
        except (
            OverAxis,
            Unsupported,
            TypeError,
            ValueError,
            ArithmeticError,
            AttributeError,
        ):
            continue
    return list(kinked.values())


def switch_kink_note(resolved: Resolved, node: nodes.Call) -> Diagnostic:
    """The kink note of a switch (a `where` whose branches do not read y_pred, a `sign`) that puts a
    kink in the node above it: the switch itself is a step, the kink is the product's (`where(e > 0,
    1, -1) * e` was said to have the kink; a review). It quotes the switch: the node above may be
    the whole loss, or a binding's value on another line (the change review)."""
    if node.func == "sign":
        where = f"`{resolved.text(node.args[0])}` changes sign"
    else:
        where = f"`{resolved.text(node.args[0])}` changes"
    span = node.span
    message = (
        f"`{resolved.text(node)}` switches where {where} and puts a kink in the loss there: its gradient"
        " changes abruptly (usually fine for training; a smooth alternative avoids it)"
    )
    return Diagnostic.at("note", "kink", message, span, resolved.source)


def _bends(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    node: nodes.Call,
    context: nodes.Node,
    budget: Budget,
) -> bool:
    """Whether the `where` `node` puts a kink in `context` (`Bend`) at a point along y_pred where its
    condition flips, on the boundary of one of its comparisons (not an equality), at the values of
    y_true that the jump check tries: see `_where_kinks`. A `sign` is a `where` on its argument
    above 0: `sign(y_pred) * sin(y_pred)` is `|sin(y_pred)|` near 0."""
    if node.func == "sign":
        x = node_expr(symbolic, node.args[0])
        condition, sides = sp.StrictGreaterThan(x, 0), [(">", x, sp.Integer(0))]
    else:
        comparisons = comparisons_of(resolved, node.args[0])
        if not comparisons:
            return False
        condition = node_expr(symbolic, node.args[0])
        sides = [
            (c.op, node_expr(symbolic, c.left), node_expr(symbolic, c.right))
            for c in comparisons
        ]
    if condition.has(sf.TensorFunction) or any(
        side.has(sf.TensorFunction) for _, *pair in sides for side in pair
    ):
        condition = one_column(condition)
        sides = [(op, one_column(left), one_column(right)) for op, left, right in sides]
    parts = [condition, *(side for _, *pair in sides for side in pair)]
    if isinstance(condition, sp.logic.boolalg.BooleanAtom) or any(
        p.has(sf.TensorFunction, sf.Vector) for p in parts
    ):
        return False
    # (an equality holds at its boundary alone: no side to take a slope on; a class condition,
    # `y_true > 0.5`, keeps one branch for each sample whatever y_pred does)
    gaps = [
        Difference(left, right, budget)
        for op, left, right in sides
        if op not in ("==", "!=") and Y_PRED in (left.free_symbols | right.free_symbols)
    ]
    if not gaps:
        return False
    # (the node above for a last axis of one element where it reads one, as the jump check takes it:
    # `where(e > 0, e, 0) * mean(y_pred)`)
    switched = switched_context(symbolic, node, context, budget)
    if switched is None or switched.original.has(sf.TensorFunction, sf.Vector):
        return False
    flips, bend = (
        Truth(condition, budget),
        Bend(Value(switched.original, budget), switched),
    )
    env = symbolic.defaults()
    for gap in gaps:
        for fixed in OTHERS:
            env[Y_TRUE] = fixed
            for root in boundary_roots(gap, Y_PRED, env):
                if flips_at(flips, env, Y_PRED, root):
                    env[Y_PRED] = root
                    if bend.at(env):
                        return True
    return False
