"""Tighter ranges for sums and products of bounded parts, read as multilinear polynomials.

Interval arithmetic takes each occurrence of a part as a value of its own: `t + p - t*p` of `t`
and `p` in [0, 1] comes out as [-1, 2], and the focal loss's `y*p + (1 - y)*(1 - p)` as [0, 2],
though the first never leaves [0, 1] and the second lies between the least and the largest of
`p` and `1 - p`. Here an expression is written as a polynomial in its parts (a part: anything
that is not a sum, a difference, a product, a negation or a number, through bindings; a sum or
product that is no such polynomial is a part too). Where no part is raised above the first power
in any term, the polynomial is multilinear, and over the box of its parts' ranges it takes its
least and largest values at corners of the box: evaluated there, they bound it. The parts may
depend on each other (`p` and `y` both read y_pred): their values lie inside the box, so the
bound holds all the same.

Sums over the last axis combine as the reductions do (a mean is a part: `_REDUCTIONS`), where
each one's argument has the inputs' shape (LANGUAGE.md: y_true and y_pred are of one shape,
`(batch, ..., C)`): `sum(t) + sum(p) - sum(t*p)` is `sum(t + p - t*p)` (the soft Jaccard loss's
union, which was warned to reach 0; a review), a sum of values in [0, 1] anywhere in [0, inf).
A list has a length of its own, and its sum stays a part (`sum([1, 1]) - sum(p)` reaches below
0; a review of this module).

Cancelled terms are no bound on what the code computes on the way: `a*b + (1 - a)*b` is `b`, and
overflows float32 where `a*b` does (a review of this module). So each step's value, with its
terms' sizes added and not cancelled, must stay below MAX_MAGNITUDE (per element of a sum: one
of 10^8 elements stays within float32), or the interval arithmetic's range stands alone.

The range is float32's: each corner's value is widened by the rounding of every step, taken on
the same steps with nothing cancelled (`multilinear_range`), so that a polynomial whose least
value, 0, comes of terms that cancel is not taken as never negative (`100 - 10 p - 10 q + p q`;
a second review of this module).

The bound is met with the interval arithmetic's (`domain._Ranges.range_Chain`): both hold every
value the expression takes, so their intersection does too.
"""

from __future__ import annotations

import itertools
import math

from lossdsl import nodes
from lossdsl.checks import intervals as iv
from lossdsl.checks.intervals import Interval
from lossdsl.semantics import ELEM

# Corners: 2^MAX_PARTS evaluations of at most MAX_TERMS terms.
MAX_PARTS = 8
MAX_TERMS = 64
# The largest value a step may reach, its terms' sizes added (float32's largest is about 3.4e38).
MAX_MAGNITUDE = 1e30
# Corners and crossings of 0 evaluated at most; float32's unit of rounding.
MAX_CORNERS = 6561
_UNIT_ROUNDOFF = 2.0**-24
# A sum of elements never negative is never negative in floats too (rounding is monotone); a mean's
# rounding grows with the axis's length, which is not known (55 units of rounding over 30,000
# elements; a third review): means do not combine (no range here holds a mean's rounding).
_REDUCTIONS = ("sum",)


class _NotMultilinear(Exception):
    """The expression is no multilinear polynomial of few enough bounded parts."""


class _Polynomial:
    """`terms`: a coefficient for each set of parts multiplied together (the empty set: the
    constant), in one of three forms: elementwise (`reduction` None), or a `sum` or `mean` over
    the last axis of the elementwise `terms`, plus the constant `offset`. `absolute`: the same
    steps with every coefficient's size and nothing cancelled (`1 - y` is `1 + y` there): float32's
    error at a point is at most `steps` units of rounding times its value there. `magnitude`: a
    bound on the size of every value the steps reach."""

    def __init__(
        self,
        terms: dict,
        absolute: dict,
        magnitude: float,
        steps: int,
        reduction: str | None = None,
        offset: float = 0.0,
    ):
        if len(absolute) > MAX_TERMS or not magnitude <= MAX_MAGNITUDE:
            raise _NotMultilinear
        self.terms = {k: c for k, c in terms.items() if c != 0.0}
        self.absolute = absolute
        self.magnitude = magnitude
        self.steps = steps
        self.reduction = reduction
        self.offset = offset

    @classmethod
    def constant(cls, value: float) -> _Polynomial:
        return cls({frozenset(): value}, {frozenset(): abs(value)}, abs(value), 0)

    def is_constant(self) -> bool:
        return self.reduction is None and set(self.terms) <= {frozenset()}

    def value(self) -> float:
        return self.terms.get(frozenset(), 0.0)

    def scaled(self, factor: float) -> _Polynomial:
        return _Polynomial(
            {k: c * factor for k, c in self.terms.items()},
            {k: c * abs(factor) for k, c in self.absolute.items()},
            self.magnitude * abs(factor),
            self.steps + 1,
            self.reduction,
            self.offset * factor,
        )

    def elementwise(self) -> _Polynomial:
        return _Polynomial(self.terms, self.absolute, self.magnitude, self.steps)


def _added(a: dict, b: dict) -> dict:
    total = dict(a)
    for k, c in b.items():
        total[k] = total.get(k, 0.0) + c
    return total


def _plus(a: _Polynomial, b: _Polynomial) -> _Polynomial:
    magnitude, steps = a.magnitude + b.magnitude, a.steps + b.steps + 1
    if a.reduction is None and b.reduction is None:
        return _Polynomial(
            _added(a.terms, b.terms), _added(a.absolute, b.absolute), magnitude, steps
        )
    # a reduction and a constant, or two of one kind: `sum(a) + c`, `sum(a) + sum(b)`
    if b.reduction is None:
        a, b = b, a
    if a.is_constant():
        offset = b.offset + a.value()
        return _Polynomial(b.terms, b.absolute, magnitude, steps, b.reduction, offset)
    if a.reduction != b.reduction:
        raise _NotMultilinear
    inner = _plus(a.elementwise(), b.elementwise())
    offset = a.offset + b.offset
    return _Polynomial(
        inner.terms, inner.absolute, magnitude, steps, a.reduction, offset
    )


def _product(a: dict, b: dict) -> dict:
    terms: dict = {}
    for (ka, ca), (kb, cb) in itertools.product(a.items(), b.items()):
        if ka & kb:
            raise _NotMultilinear  # a part squared
        key = ka | kb
        terms[key] = terms.get(key, 0.0) + ca * cb
    return terms


def _times(a: _Polynomial, b: _Polynomial) -> _Polynomial:
    if b.is_constant():
        return a.scaled(b.value())
    if a.is_constant():
        return b.scaled(a.value())
    if a.reduction is not None or b.reduction is not None:
        raise _NotMultilinear
    return _Polynomial(
        _product(a.terms, b.terms),
        _product(a.absolute, b.absolute),
        a.magnitude * b.magnitude,
        a.steps + b.steps + 1,
    )


class _Builder:
    """Writes nodes as polynomials; the parts' ranges come from `ranges` (a `domain._Ranges`)."""

    def __init__(self, ranges) -> None:
        self.ranges = ranges
        self.parts: dict[str, Interval] = {}

    def of(self, node: nodes.Node) -> _Polynomial:
        if isinstance(node, nodes.Number):
            return _Polynomial.constant(node.value)
        if isinstance(node, nodes.Unary):
            inner = self.of(node.operand)
            return inner.scaled(-1.0) if node.op == "-" else inner
        if isinstance(node, nodes.Name):
            value = self.ranges.r.binding_value(node)
            if value is not None:
                return self.of(value)
        if isinstance(node, nodes.Chain):
            return self._or_part(node, lambda: self.chain(node))
        if (
            isinstance(node, nodes.Call)
            and node.func in _REDUCTIONS
            and len(node.args) == 1
        ):
            return self._or_part(node, lambda: self._reduced(node))
        return self._part(node)

    def _or_part(self, node: nodes.Node, build) -> _Polynomial:
        """`build()`, or where that is no multilinear polynomial, `node` as a part of its own."""
        parts = dict(self.parts)
        try:
            return build()
        except _NotMultilinear:
            self.parts = parts
            return self._part(node)

    def _reduced(self, node: nodes.Call) -> _Polynomial:
        if self.ranges.r.of(node.args[0]).shape != ELEM:
            raise _NotMultilinear  # (a list's length is its own)
        inner = self.of(node.args[0])
        if inner.reduction is not None:
            raise _NotMultilinear
        return _Polynomial(
            inner.terms, inner.absolute, inner.magnitude, inner.steps, node.func
        )

    def chain(self, node: nodes.Chain) -> _Polynomial:
        total = self.of(node.operands[0])
        for op, operand in zip(node.ops, node.operands[1:], strict=True):
            value = self.of(operand)
            if op == "+":
                total = _plus(total, value)
            elif op == "-":
                total = _plus(total, value.scaled(-1.0))
            elif op == "*":
                total = _times(total, value)
            elif value.is_constant() and value.value() != 0.0:
                total = total.scaled(1.0 / value.value())
            else:
                raise _NotMultilinear  # a division by what varies: no polynomial
        return total

    def _part(self, node: nodes.Node) -> _Polynomial:
        return self._leaf(self.ranges.r.whole_text(node), self.ranges.range(node))

    def _leaf(self, key: str, values: Interval) -> _Polynomial:
        if values.lo == values.hi and math.isfinite(values.lo):
            return _Polynomial.constant(values.lo)
        if not (math.isfinite(values.lo) and math.isfinite(values.hi)):
            raise _NotMultilinear  # unbounded: no corners
        self.parts[key] = values
        if len(self.parts) > MAX_PARTS:
            raise _NotMultilinear
        # (a part's own rounding, a function's of a few units: as four steps)
        term = {frozenset([key]): 1.0}
        return _Polynomial(term, dict(term), max(-values.lo, values.hi), 4)


def multilinear_range(node: nodes.Chain, ranges) -> Interval | None:
    """A range of the values of `node` (a sum or product) as float32 computes it, from its
    polynomial's corners, or None where it is no multilinear polynomial of at most MAX_PARTS
    bounded parts.

    At a point `x`, float32's value is within `gamma * A(|x|)` of the polynomial's `P(x)`, `A` the
    absolute polynomial and `gamma` the steps' units of rounding: `P(x) - gamma A(|x|)` is
    multilinear in each orthant, so its least value lies at a corner of the box or where a part
    crosses 0, and so does the largest of `P(x) + gamma A(|x|)`. Without it, `100 - 10 p - 10 q +
    p q` of `p` and `q` in [0, 10] was taken as never negative, and is -7.6e-6 in float32 (a second
    review of these ranges)."""
    builder = _Builder(ranges)
    try:
        # (the chain itself, never as a part: its range is what is being made)
        polynomial = builder.chain(node)
    except _NotMultilinear:
        return None
    used = set().union(*polynomial.absolute)
    keys = sorted(k for k in builder.parts if k in used)
    if not keys:
        return None
    points = [
        sorted({v.lo, v.hi, *((0.0,) if v.lo < 0 < v.hi else ())})
        for v in (builder.parts[k] for k in keys)
    ]
    if math.prod(len(p) for p in points) > MAX_CORNERS:
        return None
    gamma = (polynomial.steps + 2) * _UNIT_ROUNDOFF
    lows, highs = [], []
    for corner in itertools.product(*points):
        at = dict(zip(keys, corner, strict=True))
        value = sum(
            c * math.prod(at[p] for p in k) for k, c in polynomial.terms.items()
        )
        error = gamma * sum(
            c * math.prod(abs(at[p]) for p in k) for k, c in polynomial.absolute.items()
        )
        lows.append(value - error)
        highs.append(value + error)
    if not all(math.isfinite(v) for v in lows + highs):
        return None
    inner = Interval(min(lows), max(highs))
    if polynomial.reduction == "sum":
        inner = iv.total(inner)
    return iv.add(inner, Interval.point(polynomial.offset))
