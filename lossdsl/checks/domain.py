"""Check: `log`, `sqrt`, division and fractional powers away from 0 and below.

Computes a real interval for every node (inputs range over all reals,
parameters sit at their defaults) and warns where the argument of `log`,
`sqrt`, `log1p`, `arcsin`/`arccos`, a divisor, or the base of a fractional
or negative power can reach the edge of its domain. So `clip(x, eps, 1)`,
`maximum(x, eps)`, `exp`, `softplus`, `sigmoid` and `x + eps` for x >= 0 are
safe because of their ranges, not because of their names. Both branches of a
`where` are analysed over their whole range: Keras evaluates both, and the
branch not taken still feeds NaN into the gradient. The value of a `where`
is narrowed where its condition compares a branch itself with a constant
(`where(y_pred > 0, y_pred, 1)` is above 0, so its `sqrt` is safe).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import sympy as sp

from lossdsl import nodes
from lossdsl import symfuncs as sf
from lossdsl.checks import intervals as iv
from lossdsl.checks.intervals import Interval
from lossdsl.checks.multilinear import multilinear_range
from lossdsl.checks.numeric import ALONG, FLOAT32_INF_FROM, to_float32
from lossdsl.errors import Diagnostic
from lossdsl.functions import float_sigmoid, float_softplus, kind_of
from lossdsl.semantics import BUILTIN_CONSTANTS, Resolved
from lossdsl.symbolic import Y_PRED, SymbolicLoss, node_expr

# A comparison `x op c` keeps x on one side of c: (lo_open, None) for above, (None, hi_open) for below.
_SIDES = {
    ">": (True, None),
    ">=": (False, None),
    "<": (None, True),
    "<=": (None, False),
}
_MIRRORED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}  # c op x is x op' c
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}  # where the comparison fails

_MONOTONE = {
    "exp": math.exp,
    "log": math.log,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "sqrt": math.sqrt,
    "sinh": math.sinh,
    "tanh": math.tanh,
    "arctan": math.atan,
    "arcsin": math.asin,
    "erf": math.erf,
    "sigmoid": float_sigmoid,
    "softplus": float_softplus,
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
}
_RANGES = {
    "sin": Interval(-1.0, 1.0),
    "cos": Interval(-1.0, 1.0),
    "tan": iv.REALS,
    "sign": Interval(-1.0, 1.0),
    "arccos": Interval(0.0, math.pi),
    "softmax": Interval(0.0, 1.0, lo_open=True),
    "log_softmax": Interval(-iv.INF, 0.0),
    "normalize": Interval(-1.0, 1.0),
    "onehot": iv.UNIT,
}


# The vector functions whose values of a list of numbers are known (`softmax([1, 2, 3])`).
_ALONG_LIST = {
    "softmax": sf.Softmax,
    "log_softmax": sf.LogSoftmax,
    "normalize": sf.Normalize,
}

_ADD_EPS = "add eps to a value >= 0 or use maximum(..., eps)"


_REDUCED_ROWS = ("sum", "mean", "max", "min")


def _reduced_row(name: str, row: list[float]) -> Interval:
    """The values `sum`, `mean`, `max` or `min` of a row of finite float32 numbers takes in
    float32: the largest and the smallest are exact; a sum is its exact value widened by the bound
    on the rounding of float32 additions in any order, gamma_(n-1) = (n - 1) u / (1 - (n - 1) u)
    times the sum of the magnitudes, u = 2^-24 (`[1e8, 1, -1e8]` may sum to 0), and a mean that by
    one rounding more, its division's; any real value where the additions may pass float32's range
    (`sum([3e38, 3e38])` is inf). (A review of the first form: a mean's division, and overflow.)"""
    if name in ("max", "min"):
        return Interval.point(max(row) if name == "max" else min(row))
    u, steps = 2.0**-24, len(row) - 1
    magnitude = math.fsum(abs(v) for v in row)
    if steps * u >= 0.5:
        return iv.REALS
    slack = steps * u / (1 - steps * u) * magnitude
    if magnitude + slack >= FLOAT32_INF_FROM:
        return iv.REALS
    exact = math.fsum(row)
    lo, hi = exact - slack, exact + slack
    if name == "mean":
        lo, hi = lo / len(row), hi / len(row)
        lo, hi = lo - abs(lo) * u, hi + abs(hi) * u
    return Interval(lo, hi)


def _clip_hint(node: nodes.Node, text: str) -> str:
    """Keras's clip, for `y_pred` or `1 - y_pred` (a probability, as Keras clips them); not for other
    values, which may be a norm or a sum (clipped to 1 - eps, `sqrt(sum(y_pred^2))` would be capped at 1)."""
    one_minus = (
        isinstance(node, nodes.Chain)
        and node.ops == ("-",)
        and isinstance(node.operands[0], nodes.Number)
        and node.operands[0].value == 1
    )
    inner = node.operands[1] if one_minus else node
    if isinstance(inner, nodes.Name) and inner.id == "y_pred":
        return f"clip({text}, eps, 1 - eps) as Keras does for probabilities, or "
    return ""


def check_domain(
    resolved: Resolved, symbolic: SymbolicLoss | None = None
) -> list[Diagnostic]:
    """Warnings where log, sqrt, division or a power can see 0 or a negative value; notes where
    it feeds only a condition (`where(1 / e > 0, ...)`), where a NaN picks one branch or the other (a
    comparison of it is false, `!=` true) and an inf compares as the number it is, so that neither
    reaches the loss or its gradient (a review); and notes where a `where` on y_true keeps a
    hazard of y_true alone out of the loss and of the gradient (`_guards`, given `symbolic`)."""
    walker = _Ranges(resolved)
    walker.range(resolved.result)
    valued = in_values(resolved)
    labels = _label_spans(resolved, walker.warned) if walker.warned else set()
    guards = (
        _guards(resolved, symbolic, [n for n, _ in walker.warned if _span(n) in valued])
        if symbolic
        else {}
    )
    found = []
    value_guards = _ValueGuards(resolved)
    for node, diagnostic in walker.warned:
        if _span(node) not in valued:
            found.append(
                dataclasses.replace(
                    diagnostic, level="note", message=diagnostic.message + _IN_CONDITION
                )
            )
        elif id(node) in guards:
            message = diagnostic.message + _guarded(guards[id(node)])
            found.append(dataclasses.replace(diagnostic, level="note", message=message))
        elif _span(node) in labels:
            found.append(
                dataclasses.replace(diagnostic, message=diagnostic.message + _LABELS)
            )
        elif (guard := value_guards.of(node)) is not None:
            found.append(
                dataclasses.replace(diagnostic, message=diagnostic.message + guard)
            )
        else:
            found.append(diagnostic)
    return found


_VALUE_GUARD = (
    ". The `where` at {place} keeps it out of the loss's value, not out of its gradient: both branches are"
    " computed, and autodiff multiplies the gradient of the one not taken, infinite or NaN there, by 0,"
    " which is NaN (on JAX and PyTorch; TensorFlow's fused gradient is finite). Guard the argument"
    " as well: `{guarded}`"
)


class _ValueGuards:
    """For a hazard of y_pred in a branch of a `where` whose condition keeps it away (`where(y_pred
    > 0, sqrt(y_pred), 0)`): the warning's ending that says why it stands, and the guard that ends
    it, the compared name taken inside the node through a `where` on the same condition, with a
    value on the branch's side (`sqrt(where(y_pred > 0, y_pred, 1))`). The warning read "it lies in
    (-inf, inf)" beside the guard the user wrote (a review of the generated code). None where no
    such `where` holds the node on every way the loss reads it, or the node is not safe with the
    name narrowed so; or where the guard would not do (the change review): the node reaches the
    branch through a reduction or a vector function, which reads the elements the condition does
    not keep (`where(y_pred > 0, sum(log(y_pred)), 0)`); the node reads the name through a binding
    too, which the guard written in its text does not reach (`log(y_pred * b)` with `b = y_pred`);
    or the condition reads a binding made after the node (the guard would read it before it is
    made). The `where`s and what each branch reaches are found once for all the warnings."""

    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        self.branches: list[tuple[nodes.Call, nodes.Node, bool, set[int]]] | None = None

    def _branches(self) -> list[tuple[nodes.Call, nodes.Node, bool, set[int]]]:
        """(`where`, branch, whether the condition holds there, the ids the branch reaches
        elementwise) for each `where` whose condition is one comparison of a kind that narrows."""
        if self.branches is None:
            self.branches = [
                (
                    where,
                    branch,
                    holds,
                    {id(part) for part in _reachable(self.r, branch, skip=_over_axis)},
                )
                for where in _reachable(self.r, self.r.result)
                if isinstance(where, nodes.Call)
                and where.func == "where"
                and len(where.args) == 3
                if isinstance(where.args[0], nodes.Compare)
                and where.args[0].op in _SIDES
                for branch, holds in ((where.args[1], True), (where.args[2], False))
            ]
        return self.branches

    def of(self, node: nodes.Node) -> str | None:
        """The ending for the warning at `node`, or None."""
        if not self.r.of(node).pred or _reads_axis(self.r, node):
            return None
        for where, branch, holds, reached in self._branches():
            if id(node) not in reached or _bound_after(self.r, where.args[0], node):
                continue
            if _reached_around(self.r, node, {id(branch)}):
                continue
            guarded = _narrowed_guard(self.r, where.args[0], holds, branch, node)
            if guarded is not None:
                return _VALUE_GUARD.format(
                    place=f"{where.span.line}:{where.span.column}", guarded=guarded
                )
        return None


def _narrowed_guard(
    resolved: Resolved,
    cond: nodes.Compare,
    holds: bool,
    branch: nodes.Node,
    node: nodes.Node,
):
    """`node`'s text with the name that `cond` compares with a constant guarded (see `_value_guard`),
    where `node` in `branch` is free of hazards with that name narrowed to `cond`'s side `holds`."""
    for side in (cond.left, cond.right):
        key = resolved.refs.get(id(side))
        if not isinstance(side, nodes.Name) or key is None or key[0] == "param":
            continue
        values = _AnyParameters(resolved).narrowed(cond, side, iv.REALS, holds)
        if values is None or values == iv.REALS:
            continue
        if any(
            isinstance(part, nodes.Name)
            and resolved.refs.get(id(part)) == key
            and not (
                node.span.start <= part.span.start and part.span.end <= node.span.end
            )
            for part in _reachable(resolved, node)
        ):
            return None  # (read through a binding too)
        walker = _NarrowedName(resolved, key, values)
        walker.range(branch)
        if any(_span(warned) == _span(node) for warned, _ in walker.warned):
            return None
        number = _inside(values)
        picked = (side.id, number) if holds else (number, side.id)
        guard = f"where({resolved.text(cond)}, {picked[0]}, {picked[1]})"
        name = re.compile(rf"(?<![\w.]){re.escape(side.id)}(?!\w)")
        text = resolved.text(node)
        return (
            name.sub(guard.replace("\\", "\\\\"), text) if name.search(text) else None
        )
    return None


def _over_axis(node: nodes.Node) -> bool:
    """A call of a reduction, a vector function or `onehot`: it reads the other elements too."""
    return isinstance(node, nodes.Call) and kind_of(node.func, len(node.args)) in (
        "reduction",
        "vector",
        "labels",
    )


def _bound_after(resolved: Resolved, cond: nodes.Node, node: nodes.Node) -> bool:
    """Whether `cond` reads a binding whose value ends after `node` begins (made after it, or `node`
    is part of it)."""
    return any(
        isinstance(part, nodes.Name)
        and (value := resolved.binding_value(part)) is not None
        and value.span.end > node.span.start
        for part in _reachable(resolved, cond)
    )


def _inside(values: Interval) -> str:
    """A number in `values`, which has one end finite: the nearest whole number past that end, or,
    past 2^52, where float64 has no fractions, twice the end or half of it (1e16 + 1 is 1e16)."""
    if math.isfinite(values.lo):
        end, whole = values.lo, math.floor(values.lo) + 1
        far = values.lo * 2 if values.lo > 0 else values.lo / 2
    else:
        end, whole = values.hi, math.ceil(values.hi) - 1
        far = values.hi / 2 if values.hi > 0 else values.hi * 2
    return str(whole) if abs(end) < 2**52 else repr(far)


_GUARDED = (
    ". The {wheres} {keep} it out of the loss, though: {their} condition on y_true"
    " excludes the values that reach it, and no gradient with respect to y_pred goes through it"
)


def _guarded(wheres: list[nodes.Call]) -> str:
    """The note's ending that names the `where`s (`at 2:5`, `at 2:5 and 3:5`) that keep a hazard out."""
    places = [f"{w.span.line}:{w.span.column}" for w in wheres]
    if len(places) == 1:
        return _GUARDED.format(
            wheres=f"`where` at {places[0]}", keep="keeps", their="its"
        )
    if len(places) > 3:  # (150 of them made a note of 150 places; the change review)
        places = [*places[:2], f"{len(places) - 2} more"]
    listed = ", ".join(places[:-1]) + " and " + places[-1]
    return _GUARDED.format(
        wheres=f"`where`s at {listed}", keep="keep", their="each one's"
    )


def _guards(
    resolved: Resolved, symbolic: SymbolicLoss, warned: list[nodes.Node]
) -> dict[int, list[nodes.Call]]:
    """The `where`s that guard each node of `warned` they guard, by the node's id: the node reads
    y_true and not y_pred, stands in a branch of a `where` whose condition compares y_true with a
    constant, is safe with y_true where that branch is taken, and the branch's derivative with
    respect to y_pred does not hold it. PyTorch's KL divergence, `where(y_true > 0, y_true *
    (log(y_true) - y_pred), 0)`, and the Poisson loss's Stirling term were warned of, and refused
    under `strict=True`, though their values and gradients are finite (a review). `where(y_true >
    0, log(y_true) * y_pred, 0)` stays warned of: its gradient there is `0 * -inf`, NaN. A node
    of a binding is guarded where every way the loss reads it goes through a guarding branch."""
    candidates = [node for node in warned if not resolved.of(node).pred]
    if not candidates:
        return {}
    wheres = [
        n
        for n in _reachable(resolved, resolved.result)
        if isinstance(n, nodes.Call) and n.func == "where"
    ]
    branches = [
        (w, b, holds)
        for w in wheres
        if len(w.args) == 3
        for b, holds in ((w.args[1], True), (w.args[2], False))
    ]
    under = {id(b): {id(n) for n in _reachable(resolved, b)} for _, b, _ in branches}
    found: dict[int, list[nodes.Call]] = {}
    for node in candidates:
        holding = [
            (w, b, holds) for w, b, holds in branches if id(node) in under[id(b)]
        ]
        if not holding or _reached_around(
            resolved, node, {id(b) for _, b, _ in holding}
        ):
            continue
        guarding = [
            (w, b)
            for w, b, holds in holding
            if _safe_where(resolved, w.args[0], holds, b, node)
            and not _leaks(symbolic, b, node)
        ]
        if guarding and not _reached_around(
            resolved, node, {id(b) for _, b in guarding}
        ):
            found[id(node)] = sorted(
                {id(w): w for w, _ in guarding}.values(), key=lambda w: w.span.start
            )
    return found


def _reached_around(resolved: Resolved, node: nodes.Node, branches: set[int]) -> bool:
    """Whether `node` is reached from the loss without passing through one of `branches` (by id):
    a binding that one guarded branch reads and the loss reads elsewhere too is not guarded. A
    comparison is not passed through: it picks a branch, and a NaN or inf there reaches no value (a
    review). A node that is a whole branch is reached through it (`where(y_true > 0, log(y_true),
    0)`)."""

    def around(part: nodes.Node) -> bool:
        return id(part) in branches or isinstance(part, nodes.Compare)

    return any(
        part is node for part in _reachable(resolved, resolved.result, skip=around)
    )


def _reachable(resolved: Resolved, start: nodes.Node, skip=None):
    """`start` and every node under it, bindings followed, each once; none that `skip` holds true
    of, nor any node only under those."""
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or (skip is not None and skip(node)):
            continue
        seen.add(id(node))
        yield node
        value = resolved.binding_value(node) if isinstance(node, nodes.Name) else None
        stack += [value] if value is not None else node.children


def _safe_where(
    resolved: Resolved,
    cond: nodes.Node,
    holds: bool,
    branch: nodes.Node,
    node: nodes.Node,
) -> bool:
    """Whether `node`, in `branch`, is free of hazards with y_true where `cond` (which compares
    y_true with a number) is `holds`. The whole branch is walked: a division's warning stands on
    its divisor, a power's on its base, and only the operation above them tells (the change
    review: `where(y_true >= 0, y_pred^2 + 1/y_true, 0)` passed). Not where `node` reads y_true
    through a function of the whole axis, whose other elements the condition does not narrow
    (`log(y_true / sum(y_true))`), nor where the bound holds a parameter, which may take any value
    (`y_true > k`)."""
    if not isinstance(cond, nodes.Compare) or _reads_axis(resolved, node):
        return False
    side = next(
        (s for s in (cond.left, cond.right) if resolved.whole_text(s) == "y_true"), None
    )
    if side is None or resolved.refs.get(id(side), ("input", "y_true")) != (
        "input",
        "y_true",
    ):
        return False
    values = _AnyParameters(resolved).narrowed(cond, side, iv.REALS, holds)
    if values is None or values == iv.REALS:
        return False
    walker = _NarrowedName(resolved, ("input", "y_true"), values)
    walker.range(branch)
    return all(_span(warned) != _span(node) for warned, _ in walker.warned)


def _reads_parameter(resolved: Resolved, node: nodes.Node) -> bool:
    """Whether `node` reads a parameter (bindings followed)."""
    return any(
        isinstance(part, nodes.Name)
        and resolved.refs.get(id(part), ("", ""))[0] == "param"
        for part in _reachable(resolved, node)
    )


def _reads_axis(resolved: Resolved, node: nodes.Node) -> bool:
    """Whether `node` holds a reduction, a vector function or `onehot` (bindings followed)."""
    return any(map(_over_axis, _reachable(resolved, node)))


# A branch larger than this many nodes is not differentiated (its hazard stays a warning).
MAX_GUARDED_NODES = 2_000


def _leaks(symbolic: SymbolicLoss, branch: nodes.Node, node: nodes.Node) -> bool:
    """Whether the derivative of `branch` with respect to y_pred holds `node`'s value (autodiff
    multiplies the branch's zero upstream gradient by it: `0 * inf`); True where it cannot tell."""
    try:
        expr, hazard = node_expr(symbolic, branch), node_expr(symbolic, node)
        if Y_PRED not in expr.free_symbols:
            return False
        if sum(1 for _ in sp.preorder_traversal(expr)) > MAX_GUARDED_NODES:
            return True
        return sp.diff(expr, Y_PRED).has(hazard)
    except (TypeError, ValueError, AttributeError, NotImplementedError, RecursionError):
        return True


_LABELS = (
    " (it can only for a y_true outside [0, 1]: if y_true holds labels or probabilities, write"
    " `clip(y_true, 0, 1)` in its place and the warning goes)"
)


def _label_spans(resolved: Resolved, warned: list) -> set[tuple[int, int]]:
    """The spans of the nodes warned of only because y_true ranges over the reals: with y_true in
    [0, 1] (labels, probabilities) they are safe. A soft Dice loss's `sum(y_true) +
    sum(sigmoid(y_pred)) + 1` can be 0 only for a negative y_true, and the warning did not say so
    (a review)."""
    if resolved.uses_onehot:  # (then y_true holds class ids, read nowhere else)
        return set()
    labelled = _Labels(resolved)
    labelled.range(resolved.result)
    return {_span(node) for node, _ in warned} - {
        _span(node) for node, _ in labelled.warned
    }


_IN_CONDITION = (
    ". It feeds only a condition, though: a NaN there picks one branch or the other,"
    " and none reaches the loss"
)


def _span(node: nodes.Node) -> tuple[int, int]:
    return (
        node.span.start,
        node.span.end,
    )  # (`pow(a, b)` is warned of as the power `a^b` it is)


def in_values(resolved: Resolved) -> set[tuple[int, int]]:
    """The spans of the nodes whose values the loss computes with (bindings followed), as opposed
    to those that only feed a condition: the first argument of a `where`. (The kink notes ask it
    too: a kink in a condition passes no gradient.)"""
    found: set[tuple[int, int]] = set()
    seen: set[int] = set()
    stack: list[nodes.Node] = [resolved.result]
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(
            node, (nodes.Compare, nodes.BoolOp, nodes.Not)
        ):
            continue
        seen.add(id(node))
        found.add(_span(node))
        if isinstance(node, nodes.Name):
            kind, name = resolved.refs.get(id(node), ("input", node.id))
            if kind == "binding":
                stack.append(resolved.bindings[name].value)
        elif (
            isinstance(node, nodes.Call)
            and node.func == "where"
            and len(node.args) == 3
        ):
            stack += node.args[1:]
        else:
            stack += node.children
    return found


def value_ranges(resolved: Resolved) -> Callable[[nodes.Node], Interval]:
    """The range of a node's values over every input and every parameter value (its defaults are
    not the only values a parameter takes), without diagnostics: where a piece of the loss is
    constant (checks/differentiability.py)."""
    walker = _AnyParameters(resolved)
    walker.range(resolved.result)
    return walker.range


class _Ranges:
    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        self.memo: dict[int, Interval] = {}
        self.warned: list[tuple[nodes.Node, Diagnostic]] = []

    def warn(self, node: nodes.Node, message: str) -> None:
        span = node.span
        diagnostic = Diagnostic.at("warning", "domain", message, span, self.r.source)
        self.warned.append((node, diagnostic))

    def text(self, node: nodes.Node) -> str:
        return self.r.text(node)

    def advice(self, node: nodes.Node, generic: str) -> str:
        """How to keep `node` above 0: `generic` (after Keras's clip where it fits), or where `node`
        is `x + eps` already, that `x` can be negative (a user test read "add eps" as circular)."""
        if isinstance(node, nodes.Chain) and set(node.ops) == {"+"}:
            # eps anywhere in the sum, the builtin or a parameter or binding of that name (`eps +
            # y_pred` was told to add eps; a review of the checks)
            eps = [
                o for o in node.operands if isinstance(o, nodes.Name) and o.id == "eps"
            ]
            # only an eps above 0 tells that the rest can be negative (`param eps = 0`, `eps = y_true`
            # were told so of `e^2`; a review)
            if eps and not self.range(eps[0]).reaches_zero_or_below():
                x = " + ".join(self.text(o) for o in node.operands if o is not eps[0])
                return f"but `{x}` can be negative, so adding eps is not enough: e.g. maximum({x}, eps)"
        return f"e.g. {_clip_hint(node, self.text(node))}{generic}"

    def log_advice(self, node: nodes.Node) -> str:
        """How to keep a log's argument above 0: the usual advice, then the logits' spelling where a
        sigmoid or softmax of y_pred in it may round to 0 (`logit_hint`; in place of the advice,
        it had replaced what `log(sigmoid(y_pred) - 0.5)` needs: a review)."""
        advice = self.advice(node, _ADD_EPS)
        hint = self.logit_hint(node)
        return f"{advice}; or, {hint}" if hint else advice

    def logit_hint(self, node: nodes.Node) -> str:
        """Where a logarithm's argument mixes a `sigmoid` or `softmax` of y_pred into a sum or product
        (a focal loss's `pt = y_true * p + (1 - y_true) * (1 - p)`): the spelling the stable rewrites
        compute from the logits. eps is no cure there: past logits of about +-17 to +-88 the
        probability rounds to 0 or 1 in float32 and its gradient with it (a user test)."""
        held = self.saturating_calls(node)
        function = (
            "sigmoid" if "sigmoid" in held else "softmax" if "softmax" in held else None
        )
        if function == "softmax" and self.softmax_complement(node):
            return _COMPLEMENT_SPELLING
        return logits_spelling(self.r, function) if function else ""

    def softmax_complement(self, node: nodes.Node) -> bool:
        """`node` is `c - softmax(...)` (a binding of a softmax too): the other classes' probability,
        whose log the cross-entropy's spelling does not compute (a complementary label's loss was
        told to write `log_softmax`, the log of the label's own; a review)."""
        if not (
            isinstance(node, nodes.Chain) and node.kind == "add" and node.ops == ("-",)
        ):
            return False
        first, second = node.operands
        return isinstance(first, nodes.Number) and _is_call(
            self.bound(second), "softmax"
        )

    def saturating_calls(self, node: nodes.Node) -> set[str]:
        """The names among `sigmoid` and `softmax` called on y_pred inside `node`, bindings followed;
        none where `node` is such a call itself (the stable rewrites take `log(sigmoid(x))`)."""
        if isinstance(node, nodes.Call) and node.func in ("sigmoid", "softmax"):
            return set()
        return {
            part.func
            for part in self.r.parts_reading_pred(node)
            if isinstance(part, nodes.Call) and part.func in ("sigmoid", "softmax")
        }

    def range(self, node: nodes.Node) -> Interval:
        key = id(node)
        if key not in self.memo:
            self.memo[key] = getattr(self, "range_" + type(node).__name__)(node)
        return self.memo[key]

    def range_Number(self, node: nodes.Number) -> Interval:
        return Interval.point(node.value)

    def range_Name(self, node: nodes.Name) -> Interval:
        kind, name = self.r.refs.get(id(node), ("input", node.id))
        if kind == "binding":
            return self.range(self.r.bindings[name].value)
        if kind == "param":
            return Interval.point(self.r.params[name])
        if kind == "builtin" and name in BUILTIN_CONSTANTS:
            return Interval.point(BUILTIN_CONSTANTS[name])
        return iv.REALS

    def range_Unary(self, node: nodes.Unary) -> Interval:
        value = self.range(node.operand)
        return iv.neg(value) if node.op == "-" else value

    def range_Chain(self, node: nodes.Chain) -> Interval:
        if node.kind == "mul":
            result = self.product(node)
        else:
            result = self.range(node.operands[0])
            for op, operand in zip(node.ops, node.operands[1:], strict=True):
                value = self.range(operand)
                result = iv.add(result, value if op == "+" else iv.neg(value))
        # each part once, where it appears more than once (`multilinear`): within both ranges
        tighter = multilinear_range(node, self) if result.lo != result.hi else None
        return (iv.meet(result, tighter) or result) if tighter is not None else result

    def product(self, node: nodes.Chain) -> Interval:
        """A product's range, an operand written more than once taken as its power: `e*e` is
        `e^2`, never negative (as independent factors it reached all the reals, and `sqrt(e*e +
        eps)` was warned of; found by a review of the checks)."""
        powers: dict[str, tuple[nodes.Node, int]] = {}
        negated = False
        for op, operand in zip(("*", *node.ops), node.operands, strict=True):
            value = self.range(operand)
            if op == "/" and value.reaches(0.0):
                self.warn(
                    operand,
                    f"division by `{self.text(operand)}`, which can be 0 (it lies in {value.text()});"
                    f" keep it away from 0, {self.advice(operand, _ADD_EPS)}",
                )
            while isinstance(
                operand, nodes.Unary
            ):  # `-y_pred * y_pred`: a sign, and y_pred twice
                negated ^= operand.op == "-"
                operand = operand.operand
            text = self.text(operand)  # the same text in one expression: the same value
            count = powers.get(text, (operand, 0))[1]
            powers[text] = (operand, count + (1 if op == "*" else -1))
        result = Interval.point(-1.0 if negated else 1.0)
        share = self.share_of_sum(powers)
        if share is not None:
            texts, value = share
            result = iv.mul(result, value)
            powers = {
                text: power for text, power in powers.items() if text not in texts
            }
        for operand, count in powers.values():
            value = self.range(operand)
            result = iv.mul(result, value if count == 1 else iv.power(value, count))
        return result

    def share_of_sum(self, powers: dict) -> tuple[set[str], Interval] | None:
        """For a product holding the logistic function written `x / (x + 1)` with `x = exp(a)` (the same
        text for `x` in both places), the texts of the two and the range of that quotient, (0, 1)
        (as independent factors, `(0, inf) / (1, inf)` reached all of (0, inf), and `log(1 - s)` was
        warned of; a user test), as the code computes it: a sigmoid (`rewrites.logistic_rule`). Not
        for another `x` or `r` (`e^2 / (e^2 + 0.5)`): float32 rounds such a quotient to 1 where x is
        large, and the code computes it as written (a review); else None."""
        for text, (divisor, count) in powers.items():
            if count != -1 or not (
                isinstance(divisor, nodes.Chain) and divisor.kind == "add"
            ):
                continue
            if any(op != "+" for op in divisor.ops):
                continue
            for index, term in enumerate(divisor.operands):
                shared = self.text(term)
                if (
                    shared == text
                    or powers.get(shared, (None, 0))[1] != 1
                    or not self.exponential(term)
                ):
                    continue
                r = Interval.point(0.0)
                for other in divisor.operands[:index] + divisor.operands[index + 1 :]:
                    r = iv.add(r, self.range(other))
                if r.lo == r.hi == 1.0:
                    return {text, shared}, _logistic(self.range(term))
        return None

    def exponential(self, node: nodes.Node) -> bool:
        """`node` is a call of `exp`, or names a binding of one."""
        value = self.r.binding_value(node) if isinstance(node, nodes.Name) else node
        return isinstance(value, nodes.Call) and value.func == "exp"

    def range_Power(self, node: nodes.Power) -> Interval:
        base = self.range(node.base)
        exponent = self.range(node.exponent)
        if exponent.lo != exponent.hi:
            return self.varying_power(node, node.base, base)
        p = exponent.lo
        self.power_hazard(node, base, p)
        return iv.power(base, p)

    def varying_power(
        self, node: nodes.Node, base_node: nodes.Node, base: Interval
    ) -> Interval:
        """The range of `base ^ exponent` (`node`, written `^` or `pow`) for an exponent that varies,
        with a warning where the base can reach 0 or below (its value or gradient is NaN there)."""
        if base.reaches_zero_or_below():
            # (a constant base is one number: `(-2)^y_pred` "can reach 0 or below (it lies in
            # [-2, -2])" read oddly; a review)
            written = self.text(base_node)
            value = (
                f", which can reach {_zero_or_below(base)} (it lies in {base.text()}),"
            )
            if base.lo == base.hi:
                number = iv.number_text(base.lo)
                value = (
                    "" if _is_number_text(written) else f" ({number})"
                )  # (`-2.0` is not "-2.0 (-2)")
            self.warn(
                base_node,
                f"`{self.text(node)}` raises `{written}`{value} to a varying power; keep the base above 0",
            )
        if base.lo < 0:
            return iv.REALS  # (a negative base: not a real number)
        # (0 to a power: 0, 1, or inf for a negative one; `log(1 + abs(e)^y_true)` reads at least 1)
        return Interval(0.0, iv.INF, lo_open=base.lo > 0)

    def power_hazard(self, node: nodes.Power, base: Interval, p: float) -> None:
        where = f"`{self.text(node.base)}` (it lies in {base.text()})"
        if float(p).is_integer():
            if p < 0 and base.reaches(0.0):
                self.warn(
                    node,
                    f"`{self.text(node)}` divides by {where}, which can be 0; keep it away from 0,"
                    f" {self.advice(node.base, _ADD_EPS)}",
                )
            elif (
                p == 0
                and self.r.of(node.base).pred
                and base.reaches(0.0)
                and _reads_parameter(self.r, node.exponent)
            ):
                # (a written 0 is folded away; a parameter's 0 is computed: `gamma * b^(gamma - 1)`,
                # 0 times inf at a base of 0. A focal loss on logits at gamma = 0, its cross-entropy
                # setting, had a NaN gradient, unwarned, where gamma = 0.5 was warned of; a review)
                self.warn(
                    node,
                    f"the power `{self.text(node)}` of {where} can reach 0, where its gradient at the"
                    " exponent's value 0 is NaN (0 times the infinite power of 0 to -1); keep the base above 0",
                )
            return
        if 0 < p < 1 and not self.r.of(node.base).pred and base.reaches_below(0.0):
            self.warn(
                node,
                f"the fractional power `{self.text(node)}` of {where} can see a negative base,"
                " where it is not a real number; keep the base at 0 or above",
            )
        elif (
            p < 1
            and (self.r.of(node.base).pred or p < 0)
            and base.reaches_zero_or_below()
        ):
            self.warn(
                node,
                f"the fractional power `{self.text(node)}` of {where} can reach {_zero_or_below(base)},"
                " where its value or gradient is not finite; keep the base above 0,"
                f" {self.advice(node.base, _ADD_EPS)}",
            )
        elif p > 1 and base.reaches_below(0.0):
            self.warn(
                node,
                f"the fractional power `{self.text(node)}` of {where} can see a negative base,"
                " where it is not a real number; keep the base at 0 or above",
            )

    def range_Compare(self, node: nodes.Compare) -> Interval:
        self.range(node.left)
        self.range(node.right)
        return iv.UNIT

    def range_BoolOp(self, node: nodes.BoolOp) -> Interval:
        for operand in node.operands:
            self.range(operand)
        return iv.UNIT

    def range_Not(self, node: nodes.Not) -> Interval:
        self.range(node.operand)
        return iv.UNIT

    def range_Vector(self, node: nodes.Vector) -> Interval:
        return iv.hull(*[self.range(item) for item in node.items])

    def where_range(self, node: nodes.Call, a: Interval, b: Interval) -> Interval:
        """The values `where(cond, a, b)` takes: a branch that the condition compares with a constant
        takes only the values on its side (`where(y_pred > 0, y_pred, 1)` is above 0)."""
        kept = [
            self.narrowed(node.args[0], node.args[1], a, True),
            self.narrowed(node.args[0], node.args[2], b, False),
        ]
        kept = [k for k in kept if k is not None]
        return iv.hull(*kept) if kept else iv.hull(a, b)

    def narrowed(
        self, cond: nodes.Node, branch: nodes.Node, values: Interval, holds: bool
    ) -> Interval | None:
        """`values` of `branch` where `cond` is `holds`: narrowed when `cond` compares the branch
        itself with a constant (`x > c`, `c <= x`), else as they are; None when none is left."""
        if not isinstance(cond, nodes.Compare) or cond.op not in _SIDES:
            return values
        op, left, right = cond.op, cond.left, cond.right
        written = self.r.whole_text(branch)
        if self.r.whole_text(right) == written:
            op, left, right = _MIRRORED[op], right, left
        bound = self.range(right)
        if (
            self.r.whole_text(left) != written
            or bound.lo != bound.hi
            or math.isinf(bound.lo)
        ):
            return values
        if not holds:
            op = _NEGATED[op]
        lo_open, hi_open = _SIDES[op]
        if lo_open is None:
            return iv.meet(values, Interval(-math.inf, bound.lo, True, hi_open))
        return iv.meet(values, Interval(bound.lo, math.inf, lo_open, True))

    def range_Call(self, node: nodes.Call) -> Interval:
        name = node.func
        args = [self.range(a) for a in node.args]
        if name == "onehot":
            return iv.UNIT
        self.call_hazard(node, args)
        if name == "where":
            return self.where_range(node, args[1], args[2])
        if name in _MONOTONE:
            x = args[0]
            if name == "sqrt" and x.lo < 0 <= x.hi:
                # the values it takes: [0, ...) (where the argument is negative it is NaN, which
                # `call_hazard` warns of); `log(sqrt(y_pred))` said its argument lay in (-inf, inf)
                x = Interval(0.0, x.hi, False, x.hi_open)
            return iv.monotone(_MONOTONE[name], x)
        row = (
            self.constant_row(node.args[0])
            if name in _ALONG_LIST or name in _REDUCED_ROWS
            else None
        )
        if name in _ALONG_LIST and row is not None:
            # a constant vector (`softmax([1, 2, 3])`): its values, as float32 holds them
            if name == "normalize" and any(math.isinf(to_float32(v * v)) for v in row):
                # its float32 sum of squares is inf (past about 1.8e19)
                values = [0.0] * len(row)
            else:
                values = [to_float32(v) for v in ALONG[_ALONG_LIST[name]](row)]
            return iv.hull(*(Interval.point(v) for v in values))
        if name in _REDUCED_ROWS and row is not None and len(node.args) == 1:
            # ... and a reduction of one (`e^2 / sum([1, 0])` "can be 0" where it is 1)
            return _reduced_row(name, row)
        if name == "normalize" and (args[0].lo >= 0 or args[0].hi <= 0):
            # each element keeps its sign: `log(normalize(abs(y_pred)) + eps)` was warned that its
            # argument "can be negative" (a review of the language)
            return Interval(0.0, 1.0) if args[0].lo >= 0 else Interval(-1.0, 0.0)
        if name in _RANGES:
            return _RANGES[name]
        x = args[0]
        if name == "abs":
            return iv.abs_(x)
        if name == "square":
            return iv.power(x, 2)
        if name == "cosh":
            return iv.monotone(math.cosh, iv.abs_(x))
        if name == "relu":
            return iv.maximum(x, Interval.point(0.0))
        if name == "clip":
            return iv.clip(*args)
        if name == "pow":
            return self.pow_call(node, args)
        if name in ("maximum", "max") and len(args) > 1:
            return iv.maximum(*args)
        if name in ("minimum", "min") and len(args) > 1:
            return iv.minimum(*args)
        if name in ("max", "min", "mean"):
            return x
        if name == "sum":
            picked = self.picked(node.args[0])
            return iv.total(x) if picked is None else picked
        if name == "logsumexp":
            return Interval(x.lo, iv.INF, x.lo_open)
        return iv.REALS

    def constant_row(self, argument: nodes.Node) -> list[float] | None:
        """The items of a list of constants, as float32 holds them, where `argument` is one
        (written, or through a binding); else None."""
        listed = self.bound(argument)
        if not isinstance(listed, nodes.Vector):
            return None
        items = [self.range(item) for item in listed.items]
        if not all(i.lo == i.hi and math.isfinite(i.lo) for i in items):
            return None
        row = [to_float32(i.lo) for i in items]
        # (an item past float32's range is inf there: no value to compute with; a review)
        return row if all(math.isfinite(v) for v in row) else None

    def picked(self, argument: nodes.Node) -> Interval | None:
        """The range of `sum(onehot(y_true) * x * ...)`: one element, that of the label, of the
        product of the other factors (as a sum it reached [0, inf) for a softmax in (0, 1), and the
        generalized cross-entropy on logits was warned of at 0). None for any other sum."""
        node = self.bound(argument)
        if not (
            isinstance(node, nodes.Chain)
            and node.kind == "mul"
            and set(node.ops) == {"*"}
        ):
            return None
        others = list(node.operands)
        hot = next((o for o in others if _is_call(self.bound(o), "onehot")), None)
        if hot is None:
            return None
        others.remove(hot)
        result = Interval.point(1.0)
        for operand in others:
            result = iv.mul(result, self.range(operand))
        return result

    def bound(self, node: nodes.Node) -> nodes.Node:
        """What a name bound to a value stands for (through a chain of bindings); else `node`."""
        while (
            isinstance(node, nodes.Name)
            and (value := self.r.binding_value(node)) is not None
        ):
            node = value
        return node

    def pow_call(self, node: nodes.Call, args: list[Interval]) -> Interval:
        base, exponent = args
        if exponent.lo == exponent.hi:
            return iv.power(base, exponent.lo)
        return self.varying_power(node, node.args[0], base)

    def call_hazard(self, node: nodes.Call, args: list[Interval]) -> None:
        name = node.func
        if not args:
            return
        x = args[0]
        arg = self.text(node.args[0])
        if name == "log" and x.reaches_zero_or_below():
            self.warn(
                node,
                f"`log({arg})`: the argument can reach {_zero_or_below(x)} (it lies in {x.text()}), giving -inf or NaN;"
                f" keep it above 0, {self.log_advice(node.args[0])}",
            )
        elif (
            name == "sqrt" and not self.r.of(node.args[0]).pred and x.reaches_below(0.0)
        ):
            # Free of y_pred (`sqrt(y_true)`): 0 is fine (its value is 0, and no gradient goes through it).
            self.warn(
                node,
                f"`sqrt({arg})`: the argument can be negative (it lies in {x.text()}), where its value is"
                " NaN; keep it at 0 or above, e.g. abs(...) or maximum(..., 0)",
            )
        elif (
            name == "sqrt"
            and self.r.of(node.args[0]).pred
            and x.reaches_zero_or_below()
        ):
            self.warn(
                node,
                f"`sqrt({arg})`: the argument can reach {_zero_or_below(x)} (it lies in {x.text()}),"
                " where the gradient is infinite or NaN; keep it above 0,"
                f" {self.advice(node.args[0], 'add eps to a value >= 0 (sqrt(x^2 + eps))')}",
            )
        elif (
            name == "log1p"
            and x.reaches_below(-1.0)
            or (name == "log1p" and x.reaches(-1.0))
        ):
            self.warn(
                node,
                f"`log1p({arg})`: the argument can reach -1 or below (it lies in {x.text()}); keep it above -1",
            )
        elif (
            name in ("arcsin", "arccos")
            and not self.r.of(node.args[0]).pred
            and (x.lo < -1 or x.hi > 1)
        ):
            self.warn(
                node,
                f"`{name}({arg})`: the argument can lie beyond +-1 (it lies in {x.text()}), where its value"
                " is NaN; clip it into [-1, 1]",
            )
        elif (
            name in ("arcsin", "arccos")
            and self.r.of(node.args[0]).pred
            and (x.lo < -1 or x.hi > 1 or x.reaches(1.0) or x.reaches(-1.0))
        ):
            self.warn(
                node,
                f"`{name}({arg})`: the argument can reach +-1 or beyond (it lies in {x.text()}),"
                " where the gradient is infinite or NaN; clip it inside (-1, 1)",
            )
        elif name == "pow" and len(args) == 2 and args[1].lo == args[1].hi:
            fake = nodes.Power(node.args[0], node.args[1], span=node.span)
            self.memo[id(fake)] = iv.REALS
            self.power_hazard(fake, x, args[1].lo)


class _Labels(_Ranges):
    """`_Ranges` with y_true in [0, 1], and every range closed: an end approached is an end float32
    reaches (`y_true + sigmoid(y_pred)` lies in (0, 2) with labels, and is 0 at y_true = 0 and
    y_pred = -110; the change review), so that only a margin from the hazard counts."""

    def range(self, node: nodes.Node) -> Interval:
        value = super().range(node)
        return Interval(value.lo, value.hi)

    def range_Name(self, node: nodes.Name) -> Interval:
        kind, name = self.r.refs.get(id(node), ("input", node.id))
        return (
            iv.UNIT
            if kind == "input" and name == "y_true"
            else super().range_Name(node)
        )


class _NarrowedName(_Ranges):
    """`_Ranges` with the name of `key` (an input, a builtin or a binding: its kind and name) in the
    given interval (the values a `where`'s condition leaves it)."""

    def __init__(
        self, resolved: Resolved, key: tuple[str, str], values: Interval
    ) -> None:
        super().__init__(resolved)
        self.key, self.values = key, values

    def range_Name(self, node: nodes.Name) -> Interval:
        return (
            self.values
            if self.r.refs.get(id(node)) == self.key
            else super().range_Name(node)
        )


class _AnyParameters(_Ranges):
    """`_Ranges` with each parameter anywhere in the reals."""

    def range_Name(self, node: nodes.Name) -> Interval:
        kind, _ = self.r.refs.get(id(node), ("input", node.id))
        return iv.REALS if kind == "param" else super().range_Name(node)


# The advice for a log of `1 - softmax(x)`: its log has no elementwise spelling from the logits; the
# complementary label's loss has one (`log(sum_{j != i} exp(x_j)) - logsumexp(x)`).
_COMPLEMENT_SPELLING = (
    "as eps leaves `1 - softmax(...)` no gradient where float32 rounds it to 0 (one logit about 17"
    " ahead of the others), with one-hot labels write `-sum(y_true * log(1 - softmax(x)))` as"
    " `logsumexp(x) - logsumexp(where(y_true > 0, -1e30, x))`, finite with a gradient at any size"
)


def logits_spelling(resolved: Resolved, function: str) -> str:
    """The advice for a log of a `sigmoid` or `softmax` (`function`) that float32 may round to 0:
    the cross-entropy's spelling that the stable rewrites compute from the logits."""
    # class ids one-hot encoded where the program reads them so (`sum(y_true * ...)` would be
    # another loss there: a review)
    y = "onehot(y_true)" if resolved.uses_onehot else "y_true"
    if function == "sigmoid":
        return (
            f"for a cross-entropy on logits, `{y} * log(p) + (1 - {y}) * log(1 - p)` with"
            " `p = sigmoid(...)`, which is computed from the logit, finite with a gradient at any size"
            " (eps is no cure: a sigmoid that has rounded to 0 in float32 has no gradient)"
        )
    return (
        f"for a cross-entropy on logits, `sum({y} * log_softmax(y_pred))`, finite with a gradient"
        " at any size (eps is no cure: a softmax that has rounded to 0 in float32 has no gradient)"
    )


def _is_call(node: nodes.Node, func: str) -> bool:
    return isinstance(node, nodes.Call) and node.func == func


def _logistic(x: Interval) -> Interval:
    """The range of `x / (x + 1)` for x > 0 (an exp's range): rising in x, within (0, 1)."""
    hi, hi_open = (1.0, True) if math.isinf(x.hi) else (x.hi / (x.hi + 1), x.hi_open)
    return Interval(x.lo / (x.lo + 1), hi, x.lo_open, hi_open)


def _is_number_text(text: str) -> bool:
    """`text` is a number as written (`-2.0`, `-1e3`), which needs no value beside it."""
    text = text.replace(" ", "")
    if not text.lstrip("+-")[:1].isdigit() and not text.lstrip("+-").startswith("."):
        return False  # (a name: `inf`, `nan`)
    try:
        float(text)
    except ValueError:
        return False
    return True


def _zero_or_below(x: Interval) -> str:
    """How far down `x` reaches, for a warning that it reaches 0 or below: `0` where 0 is its least
    value (`sqrt(e^2)`, in [0, inf)), `0 or below` where it goes under."""
    return "0 or below" if x.reaches_below(0.0) else "0"
