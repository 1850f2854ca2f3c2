"""Real intervals with open or closed ends, for the domain check.

`Interval(lo, hi, lo_open, hi_open)`; infinite ends are always open. The
operations over-approximate: the true range of an expression lies inside
the computed interval, which is what a "can reach 0 or below" warning needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class Interval:
    """A real interval; `lo_open`/`hi_open` say whether the ends are excluded."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __post_init__(self) -> None:
        if math.isinf(self.lo):
            object.__setattr__(self, "lo_open", True)
        if math.isinf(self.hi):
            object.__setattr__(self, "hi_open", True)

    @classmethod
    def point(cls, value: float) -> Interval:
        return cls(value, value)

    def reaches_zero_or_below(self) -> bool:
        """True when some value in the interval is <= 0."""
        return self.lo < 0 or (self.lo == 0 and not self.lo_open)

    def reaches(self, value: float) -> bool:
        """True when `value` lies in the interval."""
        above = self.lo < value or (self.lo == value and not self.lo_open)
        below = self.hi > value or (self.hi == value and not self.hi_open)
        return above and below

    def reaches_below(self, value: float) -> bool:
        """True when some value in the interval is < `value`."""
        return self.lo < value

    def text(self) -> str:
        """The interval in math notation, e.g. `(0, 1]`."""
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"


REALS = Interval(-INF, INF)
UNIT = Interval(0.0, 1.0)


def number_text(x: float) -> str:
    """One end of an interval, or a number it holds alone, as the messages write it."""
    return _fmt(x)


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x + 0.0:.6g}"  # -0.0 + 0.0 is 0.0: `(-inf, -0)` read as a typo (a mutation audit)


def _end(value: float, is_open: bool) -> tuple[float, bool]:
    if math.isnan(value):
        return value, True
    return value, is_open or math.isinf(value)


def _lowest(candidates) -> tuple[float, bool]:
    value = min(c[0] for c in candidates)
    return value, all(c[1] for c in candidates if c[0] == value)


def _highest(candidates) -> tuple[float, bool]:
    value = max(c[0] for c in candidates)
    return value, all(c[1] for c in candidates if c[0] == value)


def _make(lo: tuple[float, bool], hi: tuple[float, bool]) -> Interval:
    if math.isnan(lo[0]) or math.isnan(hi[0]):
        return REALS
    return Interval(lo[0], hi[0], lo[1], hi[1])


def hull(*intervals: Interval) -> Interval:
    """The smallest interval holding all of them."""
    return _make(
        _lowest([(i.lo, i.lo_open) for i in intervals]),
        _highest([(i.hi, i.hi_open) for i in intervals]),
    )


def meet(a: Interval, b: Interval) -> Interval | None:
    """The values in both `a` and `b`, or None when they share none."""
    lo = max(
        (a.lo, a.lo_open), (b.lo, b.lo_open)
    )  # at one end, an open one excludes more
    hi = min((a.hi, not a.hi_open), (b.hi, not b.hi_open))
    if lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or not hi[1])):
        return None
    return Interval(lo[0], hi[0], lo[1], not hi[1])


def add(a: Interval, b: Interval) -> Interval:
    return _make(
        _end(a.lo + b.lo, a.lo_open or b.lo_open),
        _end(a.hi + b.hi, a.hi_open or b.hi_open),
    )


def neg(a: Interval) -> Interval:
    return Interval(-a.hi, -a.lo, a.hi_open, a.lo_open)


def _times(x: float, y: float) -> float:
    if x == 0 or y == 0:
        return 0.0
    return x * y


def mul(a: Interval, b: Interval) -> Interval:
    candidates = []
    for x, xo in ((a.lo, a.lo_open), (a.hi, a.hi_open)):
        for y, yo in ((b.lo, b.lo_open), (b.hi, b.hi_open)):
            value = _times(x, y)
            closed_zero = (x == 0 and not xo) or (y == 0 and not yo)
            candidates.append(_end(value, (xo or yo) and not closed_zero))
    return _make(_lowest(candidates), _highest(candidates))


def reciprocal(a: Interval) -> Interval:
    """1/a; the whole real line when a can be 0."""
    if a.lo > 0 or (a.lo == 0 and a.lo_open):
        lo = (_inverse(a.hi), a.hi_open)
        hi = (_inverse(a.lo), a.lo_open)
        return _make(_end(*lo), _end(*hi))
    if a.hi < 0 or (a.hi == 0 and a.hi_open):
        return neg(reciprocal(neg(a)))
    return REALS


def _inverse(x: float) -> float:
    """1/x of an end at or above 0, its limit at 0 and inf (an end that underflowed to 0, as in
    `(0, 0.5^2000)`, divided by 0: a review)."""
    if x == 0:
        return INF
    return 0.0 if x == INF else 1 / x


def monotone(f, a: Interval, increasing: bool = True) -> Interval:
    """f over a monotone function; f is called on the ends (infinite ends as limits)."""
    lo, hi = _call(f, a.lo), _call(f, a.hi)
    if not increasing:
        lo, hi = hi, lo
        return _make(_end(lo, a.hi_open), _end(hi, a.lo_open))
    return _make(_end(lo, a.lo_open), _end(hi, a.hi_open))


# Where a function's limit at an end is -inf, which Python's raises at (`math.log(0)`): without
# it the range of `log(sigmoid(x))` was all the reals, not (-inf, 0).
_POLES = {(math.log, 0.0): -math.inf, (math.log1p, -1.0): -math.inf}


def _call(f, x: float) -> float:
    try:
        return float(f(x))
    except OverflowError:
        return INF if x > 0 else -INF
    except (ValueError, ZeroDivisionError):
        return _POLES.get((f, x), math.nan)


def power(a: Interval, p: float) -> Interval:
    """a ** p for a constant exponent p."""
    if p == 0:
        return Interval.point(1.0)
    if float(p).is_integer():
        n = int(p)
        if n < 0:
            return reciprocal(power(a, -n))
        if n % 2 == 1:
            return monotone(lambda x: x**n, a)
        low = abs_(a)
        return monotone(lambda x: x**n, low)
    if a.hi < 0 or (a.hi == 0 and a.hi_open):
        base = Interval.point(
            0.0
        )  # below 0 throughout: NaN, taken as the nearest real base
    else:
        base = Interval(max(a.lo, 0.0), a.hi, a.lo_open and a.lo >= 0, a.hi_open)
    if p > 0:
        return monotone(lambda x: x**p, base)
    magnitude = monotone(lambda x: x ** (-p), base)
    if magnitude.reaches(0.0):
        # A fractional power of a zero, either sign, is +inf (IEEE's pow): positive throughout, not
        # all the reals as a reciprocal through 0 is. (`(x^-0.5 + 1)^-0.5` was warned of at every
        # level of a nest, the base "in (-inf, inf)", where the innermost power alone is at fault.)
        # A base never above 0 (`(-1 - y_pred^2)^-0.5`) leaves a magnitude of 0 alone: positive, as an
        # over-approximation (it divided by that 0, and the domain check gave up; a review).
        if magnitude.hi == 0:
            return Interval(0.0, INF, lo_open=True)
        return Interval(_inverse(magnitude.hi), INF, lo_open=magnitude.hi_open)
    return reciprocal(magnitude)


def abs_(a: Interval) -> Interval:
    if a.lo >= 0:
        return a
    if a.hi <= 0:
        return neg(a)
    top = _highest([(-a.lo, a.lo_open), (a.hi, a.hi_open)])
    return _make((0.0, False), top)


def clip(a: Interval, lo: Interval, hi: Interval) -> Interval:
    return minimum(maximum(a, lo), hi)


def maximum(*items: Interval) -> Interval:
    return _make(
        _highest([(i.lo, i.lo_open) for i in items]),
        _highest([(i.hi, i.hi_open) for i in items]),
    )


def minimum(*items: Interval) -> Interval:
    return _make(
        _lowest([(i.lo, i.lo_open) for i in items]),
        _lowest([(i.hi, i.hi_open) for i in items]),
    )


def settles(func: str, winner: Interval, loser: Interval) -> bool:
    """Whether a `max` (`func` "maximum" or "max") or `min` of one value from each interval is
    always `winner`'s: every value of `winner` at least (for a `min`, at most) every value of
    `loser`. The no-kink note (kinks.py) and the dead-gradient check (differentiability.py)
    both ask it."""
    if func in ("maximum", "max"):
        return winner.lo >= loser.hi
    return winner.hi <= loser.lo


_MIRRORED = {"<": ">", "<=": ">="}


def compared(op: str, left: Interval, right: Interval) -> bool | None:
    """Whether `l op r` holds for every value `l` of `left` and `r` of `right` (True), for none
    (False), or neither (None). Judged on the closed intervals: float32 rounds a value onto an open
    end (`sigmoid(x)` is 1.0 past 17), so `sigmoid(x) >= 1` is not taken as never true."""
    if op in _MIRRORED:
        op, left, right = _MIRRORED[op], right, left
    if op == ">":
        return True if left.lo > right.hi else False if left.hi <= right.lo else None
    if op == ">=":
        return True if left.lo >= right.hi else False if left.hi < right.lo else None
    if op not in ("==", "!="):
        return None
    apart = left.hi < right.lo or right.hi < left.lo
    same = math.isfinite(left.lo) and left.lo == left.hi == right.lo == right.hi
    equal = True if same else False if apart else None
    return equal if op == "==" or equal is None else not equal


def one_settles(func: str, items: list[Interval]) -> bool:
    """Whether one of two or more `items` always wins the `max` or `min` (`func`) of one value from
    each: `settles(func, item, extreme(func, the others))` for some item, in time linear in their
    number (a `max` of 1,387 arguments took the no-kink note a second, each compared with the
    extreme of all the others)."""
    if any(math.isnan(i.lo) or math.isnan(i.hi) for i in items):
        return any(
            settles(func, top, extreme(func, items[:k] + items[k + 1 :]))
            for k, top in enumerate(items)
        )
    if func in ("maximum", "max"):
        # each item against the highest top of the others: the highest of all, or the next one
        tops = sorted(range(len(items)), key=lambda k: items[k].hi, reverse=True)[:2]
        return any(
            items[k].lo >= items[tops[1] if k == tops[0] else tops[0]].hi
            for k in range(len(items))
        )
    bottoms = sorted(range(len(items)), key=lambda k: items[k].lo)[:2]
    return any(
        items[k].hi <= items[bottoms[1] if k == bottoms[0] else bottoms[0]].lo
        for k in range(len(items))
    )


def extreme(func: str, items: list[Interval]) -> Interval:
    """The range of the `max` (`func` "maximum" or "max") or `min` of one value from each."""
    return maximum(*items) if func in ("maximum", "max") else minimum(*items)


def total(a: Interval) -> Interval:
    """The range of a sum of one or more values from `a` (the count unknown)."""
    lo = (a.lo, a.lo_open) if a.lo >= 0 else (-INF, True)
    hi = (a.hi, a.hi_open) if a.hi <= 0 else (INF, True)
    return _make(lo, hi)
