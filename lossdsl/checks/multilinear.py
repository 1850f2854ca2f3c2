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

Sums and means over the last axis combine as the reductions do, where each one's argument has the
inputs' shape (LANGUAGE.md: y_true and y_pred are of one shape, `(batch, ..., C)`): `sum(t) +
sum(p) - sum(t*p)` is `sum(t + p - t*p)` (the soft Jaccard loss's union, which was warned to
reach 0; a review), a sum of values in [0, 1] anywhere in [0, inf). A list has a length of its
own, and its sum stays a part (`sum([1, 1]) - sum(p)` reaches below 0; a review of this module).

Cancelled terms are no bound on what the code computes on the way: `a*b + (1 - a)*b` is `b`, and
overflows float32 where `a*b` does (a review of this module). So each step's value, with its
terms' sizes added and not cancelled, must stay below MAX_MAGNITUDE (per element of a sum: one
of 10^8 elements stays within float32), or the interval arithmetic's range stands alone.

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
_REDUCTIONS = ("sum", "mean")


class _NotMultilinear(Exception):
    """The expression is no multilinear polynomial of few enough bounded parts."""


class _Polynomial:
    """`terms`: a coefficient for each set of parts multiplied together (the empty set: the
    constant), in one of three forms: elementwise (`reduction` None), or a `sum` or `mean` over
    the last axis of the elementwise `terms`, plus the constant `offset`. `magnitude`: a bound on
    the size of every value the steps that made it reach (no cancellation counted)."""

    def __init__(
        self,
        terms: dict,
        magnitude: float,
        reduction: str | None = None,
        offset: float = 0.0,
    ):
        if len(terms) > MAX_TERMS or not magnitude <= MAX_MAGNITUDE:
            raise _NotMultilinear
        self.terms = {k: c for k, c in terms.items() if c != 0.0}
        self.magnitude = magnitude
        self.reduction = reduction
        self.offset = offset

    @classmethod
    def constant(cls, value: float) -> _Polynomial:
        return cls({frozenset(): value}, abs(value))

    def is_constant(self) -> bool:
        return self.reduction is None and set(self.terms) <= {frozenset()}

    def value(self) -> float:
        return self.terms.get(frozenset(), 0.0)

    def scaled(self, factor: float) -> _Polynomial:
        terms = {k: c * factor for k, c in self.terms.items()}
        return _Polynomial(
            terms, self.magnitude * abs(factor), self.reduction, self.offset * factor
        )


def _plus(a: _Polynomial, b: _Polynomial) -> _Polynomial:
    magnitude = a.magnitude + b.magnitude
    if a.reduction is None and b.reduction is None:
        terms = dict(a.terms)
        for k, c in b.terms.items():
            terms[k] = terms.get(k, 0.0) + c
        return _Polynomial(terms, magnitude)
    # a reduction and a constant, or two of one kind: `sum(a) + c`, `sum(a) + sum(b)`
    if b.reduction is None:
        a, b = b, a
    if a.is_constant():
        return _Polynomial(b.terms, magnitude, b.reduction, b.offset + a.value())
    if a.reduction != b.reduction:
        raise _NotMultilinear
    inner = _plus(_Polynomial(a.terms, a.magnitude), _Polynomial(b.terms, b.magnitude))
    return _Polynomial(inner.terms, magnitude, a.reduction, a.offset + b.offset)


def _times(a: _Polynomial, b: _Polynomial) -> _Polynomial:
    if b.is_constant():
        return a.scaled(b.value())
    if a.is_constant():
        return b.scaled(a.value())
    if a.reduction is not None or b.reduction is not None:
        raise _NotMultilinear
    terms: dict = {}
    for (ka, ca), (kb, cb) in itertools.product(a.terms.items(), b.terms.items()):
        if ka & kb:
            raise _NotMultilinear  # a part squared
        key = ka | kb
        terms[key] = terms.get(key, 0.0) + ca * cb
    return _Polynomial(terms, a.magnitude * b.magnitude)


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
        return _Polynomial(inner.terms, inner.magnitude, node.func)

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
        return _Polynomial({frozenset([key]): 1.0}, max(-values.lo, values.hi))


def multilinear_range(node: nodes.Chain, ranges) -> Interval | None:
    """A range of the values of `node` (a sum or product) from its polynomial's corners, or None
    where it is no multilinear polynomial of at most MAX_PARTS bounded parts."""
    builder = _Builder(ranges)
    try:
        # (the chain itself, never as a part: its range is what is being made)
        polynomial = builder.chain(node)
    except _NotMultilinear:
        return None
    keys = sorted(k for k in builder.parts if any(k in t for t in polynomial.terms))
    if not keys:
        return None
    values = []
    for corner in itertools.product(
        *((builder.parts[k].lo, builder.parts[k].hi) for k in keys)
    ):
        at = dict(zip(keys, corner, strict=True))
        values.append(
            sum(c * math.prod(at[p] for p in k) for k, c in polynomial.terms.items())
        )
    if not all(math.isfinite(v) for v in values):
        return None
    inner = Interval(min(values), max(values))
    if polynomial.reduction == "sum":
        inner = iv.total(inner)
    return iv.add(inner, Interval.point(polynomial.offset))
