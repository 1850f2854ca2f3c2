"""Rebuilding SymPy trees bottom-up, without recursion and without SymPy's costly re-evaluation.

`substitute` replaces nodes and builds what changed through `construct` (a Max is not compared
again); `inlined` builds it as it stands; `xreplaced` builds what `with sympy.evaluate(False)`
builds of an `xreplace`, without clearing SymPy's cache, and `replaced` what SymPy's `replace`
builds, each node once; `cse` and the `with_inert_*` wrappers pass Max, Min and
steps through SymPy's own transformations as inert stand-ins; `plain` writes lossdsl's heads as
ordinary SymPy, and `as_sympy_piecewise` each `Where` as SymPy's own Piecewise.
"""

from __future__ import annotations

import sympy as sp

from lossdsl import hyperbolic, subtrees
from lossdsl.construct import (
    SettlingPiecewise,
    absolute,
    folded_condition,
    minmax,
    piecewise,
    power,
    relation,
    scaled,
)
from lossdsl.symfuncs import Head, Round, Where, step


def inlined(expr: sp.Basic, definitions: dict, memo: dict | None = None) -> sp.Basic:
    """`expr` with the symbols of `definitions` replaced by their values, and theirs in turn: for
    questions about its value (sign, order), not for printing. A Max, Min, comparison or `where`
    whose arguments changed is built as it stands, not compared or folded again (with `xreplace`,
    SymPy compared each rebuilt `maximum(x, y_true)` of a nested program's large `x`: minutes for
    four levels of `softplus(maximum(...))`); sums, products and the rest are built as SymPy builds
    them, so that `sympy.ordered` sorts what was built before as it did then.

    `memo`, a dict a caller keeps for one `definitions`, holds each node's rebuilt form from one
    call to the next (each node's is a function of the node alone), so that asking of each part
    of a tree in turn rebuilds each node once, not once per question."""
    done = {} if memo is None else memo
    for _ in range(len(definitions) + 1):
        replaced = _bottom_up(expr, definitions, _as_it_stands, done=done)
        if replaced == expr:
            break
        expr = replaced
    return expr


def _as_it_stands(node: sp.Basic, args: list) -> sp.Basic:
    if isinstance(node, (sp.Max, sp.Min, sp.core.relational.Relational)):
        return node.func(*args, evaluate=False)
    if isinstance(node, (sp.Piecewise, sp.functions.elementary.piecewise.ExprCondPair)):
        return sp.Basic.__new__(
            type(node), *args
        )  # (SymPy folds a `where` in a condition)
    if type(node) is sp.Heaviside:
        return step(*args)
    return node.func(*args)


def substitute(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """`expr.xreplace(mapping)`, without recursion, rebuilding Max and Min through `minmax`,
    comparisons through `relation` and Abs through `absolute`.

    (`xreplace` rebuilds a changed node with `func(*args)`, which would hand a Max of
    many arguments back to SymPy's pairwise comparisons.)
    """
    if not mapping:
        return expr
    return _bottom_up(expr, mapping, _constructed)


def _constructed(node: sp.Basic, args: list) -> sp.Basic:
    """`node.func(*args)`, a Max or Min through `minmax`, a comparison through `relation`, a
    `where` through `piecewise` and Abs through `absolute`."""
    if isinstance(node, (sp.Max, sp.Min)):
        return minmax(type(node), args)
    if isinstance(node, sp.core.relational.Relational):
        return relation(type(node), *args)
    if isinstance(node, sp.Piecewise):
        return piecewise([pair.args for pair in args])
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
        return node.func(args[0], folded_condition(args[1]))
    if type(node) is sp.Heaviside:
        return step(*args)
    if type(node) is sp.Abs:
        return absolute(*args)
    if type(node) is sp.Pow:
        return power(*args)
    if type(node) is sp.Mul and len(args) == 2:
        return scaled(*args)
    return node.func(*args)


def changed_bottom_up(
    expr: sp.Basic, change, kept: frozenset | set = frozenset()
) -> sp.Basic:
    """`expr` with each node, its arguments changed first, replaced by `change(node)` where that is
    not None, and every node above a change built as `substitute` builds it; each distinct node
    once, without recursion. A node that a change leaves as one `change` changes again (a power of
    a power SymPy multiplies out) is changed again. The nodes of `expr` in `kept` are not changed
    (only built again where their arguments changed)."""

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        original = node
        if not unchanged(args, node.args):
            node = _constructed(node, args)
        if original in kept:
            return node
        for _ in range(8):
            new = change(node)
            if new is None:
                break
            node = new
        return node

    return _bottom_up(expr, {}, rebuild, every=True)


def substitute_in_turn(expr: sp.Basic, pairs) -> sp.Basic:
    """`expr` with `substitute(expr, {value: replacement})` applied for each `(value, replacement)`
    of `pairs` in order. A value that is not a subexpression of `expr` as it then stands is
    skipped without walking and rebuilding the tree (the substitution would change nothing)."""
    present = _subexpressions(expr)
    for value, replacement in pairs:
        if value in present:
            expr = substitute(expr, {value: replacement})
            present = _subexpressions(expr)
    return expr


def _subexpressions(expr: sp.Basic) -> set:
    """Every node of `expr`, without recursion."""
    found = {expr}
    stack = [expr]
    while stack:
        for arg in stack.pop().args:
            if arg not in found:
                found.add(arg)
                stack.append(arg)
    return found


class _CannotRebuild(Exception):
    """`_bottom_up`'s rebuild function has no way to rebuild a node."""


def _bottom_up(
    expr: sp.Basic,
    mapping: dict,
    rebuild,
    every: bool = False,
    done: dict | None = None,
) -> sp.Basic:
    """`expr` with the nodes in `mapping` replaced, every changed node above them (every node
    with arguments, if `every`) made again by `rebuild(node, new_args)` (which may raise
    `_CannotRebuild`), without recursion. `done` holds what earlier calls with the same mapping
    and rebuild made, and takes what this one makes."""
    if done is None:
        done = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        if node in mapping:
            done[node] = mapping[node]
        elif not node.args:
            done[node] = node
        elif not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in done)
        else:
            args = [done[a] for a in node.args]
            same = unchanged(args, node.args)
            done[node] = node if same and not every else rebuild(node, args)
    return done[expr]


def each_rebuilt(expr: sp.Basic, rebuild) -> sp.Basic:
    """`expr` bottom-up, every node with arguments made by `rebuild(node, new_args)`, each distinct
    node once (`Basic.replace` walks a shared one at every use), without recursion."""
    return _bottom_up(expr, {}, rebuild, every=True)


def replaced(expr: sp.Basic, query, value) -> sp.Basic:
    """`expr.replace(query, value)` for a callable `query` and `value`: bottom-up, a node whose
    arguments changed built again with `func(*args)` (with SymPy's check that it is not what one of
    them was changed from), then `value(node)` where `query(node)` holds and that is another
    expression. As SymPy's, but each distinct subexpression once (`Basic.replace` walks a shared
    one at every use, and asks `query` of it again) and without recursion: the same result, node
    for node (each node's is a function of the node alone)."""
    done: dict[sp.Basic, sp.Basic] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        args = getattr(node, "args", None)
        if args is None:  # (not a SymPy node: as SymPy's, left as it is)
            done[node] = node
            continue
        if args and not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(args) if a not in done)
            continue
        rv = node
        if args:
            new_args = tuple([done[a] for a in args])
            if args != new_args:
                rv = node.func(*new_args)
                if any(
                    rv == old and old != new
                    for old, new in zip(args, new_args, strict=True)
                ):
                    done[node] = (
                        rv  # (SymPy's `simultaneous`: what an argument was, is not changed again)
                    )
                    continue
        found = query(rv)
        if found or found == {}:
            v = value(rv)
            if v is not None and v != rv:
                rv = v
        done[node] = rv
    return done[expr]


def unchanged(new_args: list, old_args: tuple) -> bool:
    """Each new argument equals the old one. Equal, not the same object: a tree may hold equal
    copies of a part, and the rebuild answers every copy with the first one's result. (Hashes
    first, which SymPy keeps: `==` of two large trees that differ near their leaves walks them.)"""
    pairs = zip(new_args, old_args, strict=True)
    return all(
        new is old or (hash(new) == hash(old) and new == old) for new, old in pairs
    )


def plain(expr: sp.Expr) -> sp.Expr:
    """`expr` with every elementwise head rewritten into ordinary SymPy, and SymPy's own hyperbolic
    functions for lossdsl's (lossdsl/hyperbolic.py)."""

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        # As `expr.replace` rebuilds (with evaluation, where an argument changed), once per
        # distinct subexpression: replace walks a shared one at every use (a gradient of 100
        # nested clips holds each inner clip in every factor: 4 s).
        if tuple(args) != node.args:
            node = node.func(*args)
        if isinstance(node, (Head, *hyperbolic.CLASSES)) and not isinstance(
            node, Round
        ):
            return node.plain()
        return node

    return each_rebuilt(expr, rebuild)


# ------------------------------------------------------------------ rebuilding without evaluation
#
# `with sympy.evaluate(False):` clears SymPy's whole cache on the way in and again on the way out
# (its results were built under the other setting), which makes every later SymPy operation in
# the process start cold. The functions below build what such a block builds, node by node, with
# `evaluate=False` passed to each constructor instead; where SymPy's result would depend on the
# global setting itself (boolean operators, a condition that holds a Piecewise), they fall back
# to the block.

_EXPLICITLY_UNEVALUATED = (
    sp.Add,
    sp.Mul,
    sp.Pow,
    sp.Function,
    sp.Piecewise,
    sp.core.relational.Relational,
)


def _unevaluated(node: sp.Basic, args: list) -> sp.Basic | None:
    """`node.func(*args)` as SymPy builds it under `evaluate(False)`, or None where only the block can."""
    if isinstance(node, sp.Piecewise):
        if any(pair.cond.has(sp.Piecewise) for pair in args):
            return None
        return node.func(*args, evaluate=False)
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair) and args[1].has(
        sp.Piecewise
    ):
        cond = folded_condition(args[1])
        # Built alike either way once the condition is folded; SymPy's fold of what is left
        # (a Piecewise under an axis) returns it as it is.
        return None if cond is args[1] else node.func(args[0], cond)
    if isinstance(node, (*_EXPLICITLY_UNEVALUATED, sp.Max, sp.Min)):
        return node.func(*args, evaluate=False)
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
        # Built alike either way unless the condition holds a Piecewise (folded first).
        return None if args[1].has(sp.Piecewise) else node.func(*args)
    return None


def xreplaced(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """`expr.xreplace(mapping)` under `sympy.evaluate(False)`, without clearing SymPy's cache.

    Entries that map a node to itself change nothing and are skipped. Without recursion.
    """
    mapping = {old: new for old, new in mapping.items() if old is not new}
    if not mapping or not isinstance(expr, sp.Basic):
        return expr

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        rebuilt = _unevaluated(node, args)
        if rebuilt is None:
            raise _CannotRebuild
        return rebuilt

    def rebuild_in_block(node: sp.Basic, args: list) -> sp.Basic:
        # As xreplace under the block, but a condition that holds a Piecewise folded here (SymPy's
        # own fold searched conditions with `as_set` for minutes).
        rebuilt = _unevaluated(node, args)
        return node.func(*args) if rebuilt is None else rebuilt

    try:
        return _bottom_up(expr, mapping, rebuild)
    except _CannotRebuild:
        with sp.evaluate(False):
            return _bottom_up(expr, mapping, rebuild_in_block)


class _Inert(sp.Function):
    """A stand-in for a Max or Min (`wraps`) that SymPy rebuilds without comparing its arguments.

    It has the name of the class it stands for and sorts as that class does, so that SymPy
    orders the arguments of sums and products that hold it as it orders the original.
    """

    wraps: type = sp.Basic

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def _should_evalf(cls, arg):
        return -1

    @classmethod
    def class_key(cls):
        return cls.wraps.class_key()


_INERT: dict[type, type] = {
    cls: type(cls.__name__, (_Inert,), {"wraps": cls}) for cls in (sp.Max, sp.Min)
}


class _InertCondition(sp.logic.boolalg.BooleanFunction):
    """A stand-in for a comparison, as `_Inert` is for a Max or Min."""

    wraps: type = sp.Basic

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def class_key(cls):
        return cls.wraps.class_key()


# What SymPy raises on when it builds it evaluated with an argument it knows is not real: a
# comparison (`log(-1 - y_pred^2) > 0`, False in Keras, where the log is NaN) and a step
# (`Heaviside(3 y_pred - log(-exp(y_pred)))`, from the gradient of a maximum), held as inert
# stand-ins where SymPy rebuilds what holds them (`cse`, `derivative.differentiated`).
_COMPARISONS = (sp.Eq, sp.Ne, sp.Lt, sp.Le, sp.Gt, sp.Ge)
_NOT_REAL_ARGUMENT: dict[type, type] = {
    **{
        cls: type(cls.__name__, (_InertCondition,), {"wraps": cls})
        for cls in _COMPARISONS
    },
    sp.Heaviside: type("Heaviside", (_Inert,), {"wraps": sp.Heaviside}),
}


def _takes_non_real(node: sp.Basic) -> bool:
    return node.func in _NOT_REAL_ARGUMENT and any(
        arg.is_extended_real is False for arg in node.args
    )


def _holds_non_real_arguments(expr: sp.Basic) -> bool:
    return any(map(_takes_non_real, subtrees.atoms(expr, *_NOT_REAL_ARGUMENT)))


# An Abs of a value SymPy does not know is real, which SymPy would rewrite with its real part if
# rebuilt (`construct.absolute`: `abs((-2)^y_pred)` as `2^y_pred`), is held through `cse` too.
_INERT_ABS = type("Abs", (_Inert,), {"wraps": sp.Abs})


def _unsure_abs(node: sp.Basic) -> bool:
    return type(node) is sp.Abs and node.args[0].is_extended_real is not True


# What `cse` looks for before it calls SymPy's: comparisons, Max and Min, steps and Abs.
_INERT_HEADS = tuple(_INERT)
_NOT_REAL_HEADS = tuple(_NOT_REAL_ARGUMENT)
_ASKED_BEFORE_CSE = (*_COMPARISONS, *_NOT_REAL_HEADS, *_INERT_HEADS, sp.Abs)


def cse(exprs: list, symbols) -> tuple[list, list]:
    """`sympy.cse(exprs, symbols=symbols)`, without evaluating the Max and Min it rebuilds.

    `sympy.cse` rebuilds every node whose arguments it replaced with `func(*args)`: for Max
    and Min that compares every pair of arguments again (minutes for `max` of 300 terms,
    milliseconds for a single `maximum(x, 0)`). Here they go through cse as inert stand-ins
    and come back unevaluated, holding what cse made of their arguments (a Max or Min that
    SymPy could simplify was simplified when it was first built).
    """
    # One walk of each expression for the questions below (each distinct part once).
    found = [
        subtrees.atoms(e, *_ASKED_BEFORE_CSE) for e in exprs if isinstance(e, sp.Basic)
    ]
    many = (
        sum(sum(isinstance(p, _COMPARISONS) for p in parts) for parts in found)
        > MAX_EVALUATED_COMPARISONS
    )
    if not many and not any(
        any(isinstance(p, _INERT_HEADS) for p in parts)
        or any(_takes_non_real(p) for p in parts if isinstance(p, _NOT_REAL_HEADS))
        or any(_unsure_abs(p) for p in parts if isinstance(p, sp.Abs))
        for parts in found
    ):
        return sp.cse(exprs, symbols=symbols)
    convert = _to_inert_for_cse_with_comparisons if many else _to_inert_for_cse
    wrapped = [_rebuild(e, convert) for e in exprs]
    replacements, reduced = sp.cse(wrapped, symbols=symbols)
    return [(symbol, _rebuild(value, _from_inert)) for symbol, value in replacements], [
        _rebuild(e, _from_inert) for e in reduced
    ]


def with_inert_minmax(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each Max and Min in `expr` passed through it as an inert stand-in and
    rebuilt unevaluated (a `replace` rebuilds them with evaluation, comparing their arguments again:
    seconds for a gradient with thousands of `minimum`s)."""
    return (
        _through_inert(transform, expr, _to_inert)
        if expr.has(*_INERT)
        else transform(expr)
    )


def with_inert_non_real(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each comparison or step of a value SymPy knows is not real passed
    through it as an inert stand-in and rebuilt unevaluated (see `_NOT_REAL_ARGUMENT`)."""
    if not _holds_non_real_arguments(expr):
        return transform(expr)
    return _through_inert(transform, expr, _to_inert_non_real)


def with_inert_steps(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each Heaviside passed through it as an inert stand-in and rebuilt
    unevaluated: SymPy's Heaviside, rebuilt with evaluation, takes `im` of its argument, which
    expands a power of a sum (`maximum(e, a)^987` with `a` a power of `e`: minutes; see `symfuncs.step`)."""
    return (
        _through_inert(transform, expr, _to_inert_step)
        if expr.has(sp.Heaviside)
        else transform(expr)
    )


def _through_inert(transform, expr: sp.Basic, to_inert) -> sp.Basic:
    """`transform(expr)`, with what `to_inert` converts held as inert stand-ins through it."""
    return _rebuild(transform(_rebuild(expr, to_inert)), _from_inert)


def _to_inert_step(node: sp.Basic, args: list) -> sp.Basic | None:
    return (
        _NOT_REAL_ARGUMENT[sp.Heaviside](*args) if type(node) is sp.Heaviside else None
    )


def _to_inert(node: sp.Basic, args: list) -> sp.Basic | None:
    return (
        _INERT[node.func](*args)
        if node.func in _INERT
        else _to_inert_non_real(node, args)
    )


def _to_inert_for_cse(node: sp.Basic, args: list) -> sp.Basic | None:
    return _INERT_ABS(*args) if _unsure_abs(node) else _to_inert(node, args)


# Past this many comparisons, `cse` holds them all inert: rebuilding a `where` of a compound
# condition evaluates each comparison again, with assumption queries (368 of them: 8 s).
MAX_EVALUATED_COMPARISONS = 32


def _to_inert_for_cse_with_comparisons(node: sp.Basic, args: list) -> sp.Basic | None:
    if node.func in _COMPARISONS:
        return _NOT_REAL_ARGUMENT[node.func](*args)
    return _to_inert_for_cse(node, args)


def _to_inert_non_real(node: sp.Basic, args: list) -> sp.Basic | None:
    return _NOT_REAL_ARGUMENT[node.func](*args) if _takes_non_real(node) else None


def _from_inert(node: sp.Basic, args: list) -> sp.Basic | None:
    return (
        node.wraps(*args, evaluate=False)
        if isinstance(node, (_Inert, _InertCondition))
        else None
    )


def _rebuild(expr: sp.Basic, convert) -> sp.Basic:
    """`expr` bottom-up, each node `convert(node, new args)`, or else (where that is None) the node
    itself if its arguments did not change, rebuilt without evaluation if they did; no recursion."""
    if not isinstance(expr, sp.Basic):
        return expr

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        converted = convert(node, args)
        if converted is not None:
            return converted
        if unchanged(args, node.args):
            return node
        rebuilt = _unevaluated(node, args)
        return node.func(*args) if rebuilt is None else rebuilt

    return _bottom_up(expr, {}, rebuild, every=True)


def as_sympy_piecewise(expr: sp.Basic) -> sp.Basic:
    """`expr` with each `Where` as SymPy's own Piecewise, built unevaluated (a power of it stays a
    power of it), so that the public form equals the expression a user builds."""
    if not isinstance(expr, sp.Basic) or not expr.has(Where):
        return expr
    return swapped(expr, {Where: sp.Piecewise, SettlingPiecewise: sp.Piecewise})


def swapped(expr: sp.Basic, table: dict[type, type]) -> sp.Basic:
    """`expr` with every node of a class in `table` rebuilt, unevaluated, as the class it maps to."""

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        if type(node) in table:
            return table[type(node)](*args, evaluate=False)
        if unchanged(args, node.args):
            return node
        rebuilt = _unevaluated(
            node, args
        )  # a relational has no truth value: no `or` here
        return node.func(*args) if rebuilt is None else rebuilt

    return _bottom_up(expr, {}, rebuild, every=True)
