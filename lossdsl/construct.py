"""Building Max, Min, comparisons and `where` without SymPy's costly simplifications (and Abs
without its complex parts).

SymPy simplifies these when it builds them, through its assumptions system (see the section
comment below); a program that holds hundreds of them is built cheaply instead, and a `where`
condition that reads another `where` is folded here (`folded_condition`), not by SymPy's
`piecewise_fold`, which can loop. Used by the translator (`symbolic`), `rebuild`, the
function table, the gradient and the LaTeX printer.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import sympy as sp

from lossdsl import subtrees
from lossdsl.errors import LossLimitError
from lossdsl.symfuncs import (
    ORDERINGS,
    SELF_COMPARISONS,
    Held,
    NegatedOrdering,
    SelfEqual,
    TensorFunction,
    Where,
    WholeInFolds,
)


def folded_condition(cond: sp.Basic, exact: bool = False) -> sp.Basic:
    """`cond` folded as SymPy's `ExprCondPair` folds a condition that holds a Piecewise, with
    each tensor function that holds one left whole.

    `where(where(c, y_pred, max(where(...))) <= 1, ...)`: SymPy folds the condition into
    `Piecewise((y_pred <= 1, c), (max(...) <= 1, True))` and, while any of its values still holds
    a Piecewise (`max(...) <= 1` does, under the axis, where `has` cannot hide it), folds it
    again, until the recursion limit (a second, then a LossLimitError). Here each such tensor
    function stands aside as a symbol while the condition folds, as does each `ITE` of an earlier
    fold; the result is written as SymPy writes it (`_if_then_else`), and folds no further.

    A condition the program wrote compares its numbers as float64 (`as_floats`); with `exact`, a
    condition the code builds on a value it computes (`b > 0` of b^x's gradient) keeps SymPy's
    exact numbers, as SymPy's pair does: folded to `y_true/7 - 3 > 0`, float64's
    `0.14285714285714285*y_true > 3` was true where the code's `y_true / 7.0 - 3.0` is 0.

    Raises:
        LossLimitError: more than MAX_CASES cases, or a result over MAX_FOLDED_SIZE terms.
    """
    if not isinstance(cond, sp.Basic) or not cond.has(sp.Piecewise):
        return cond
    _check_cases(cond)
    hidden: dict[sp.Basic, sp.Dummy] = {}
    stack = [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, WholeInFolds):  # a tensor function, or a `where` held whole
            if sp.Basic.has(node, sp.Piecewise) and node not in hidden:
                hidden[node] = sp.Dummy()
            continue
        if isinstance(node, sp.ITE) and not node.has(sp.Piecewise):
            # An earlier fold's: `piecewise_fold` would put it in conjunctive normal form.
            hidden.setdefault(node, sp.Dummy())
            continue
        stack.extend(node.args)
    if any(isinstance(node, Held) for node in hidden) and cond.xreplace(hidden).has(
        sp.Piecewise
    ):
        # Folded into cases, a condition that holds a `Held` one sends SymPy's `piecewise_fold` round
        # and round (its own `has` sees into the Held) to the recursion limit.
        raise LossLimitError(
            "this `where` condition reads a `where` whose own condition compares a value that is not"
            " finite in its other branch (`log(0)`, `1 / 0`): lossdsl cannot fold the two into one"
            " condition; keep the inner value finite (e.g. clip it away from 0)"
        )
    try:
        # The comparisons folding makes are SymPy's own: `pi` in them is float64's, as in NumPy
        # (`where(c, abs(pi), y_pred) < pi` would compare the float nearest pi with pi exactly).
        unfolded = cond.xreplace(hidden) if hidden else cond
        folded = sp.piecewise_fold(unfolded if exact else as_floats(unfolded))
    except TypeError:  # a branch SymPy cannot compare: `log(0) > -10` is `zoo > -10`
        return _held(cond)
    if isinstance(folded, sp.Piecewise):
        folded = _if_then_else(folded)
    if hidden:
        folded = folded.xreplace({stand_in: node for node, stand_in in hidden.items()})
    if tree_size(folded) > MAX_FOLDED_SIZE:
        raise LossLimitError(
            "this `where` condition reads `where`s whose conditions read `where`s in turn: folded into one"
            f" condition it has over {MAX_FOLDED_SIZE:,} terms; the limit is {MAX_FOLDED_SIZE:,}"
        )
    return folded


def _held(cond: sp.Basic) -> sp.Basic:
    """`cond` with each `where` it reads, outside a tensor function, held whole (`Held`)."""
    mapping: dict[sp.Basic, sp.Basic] = {}
    stack = [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, sp.Piecewise):
            mapping[node] = Held(node)
        elif not isinstance(node, WholeInFolds):
            stack.extend(node.args)
    return cond.xreplace(mapping)


def _if_then_else(folded: sp.Piecewise) -> sp.Basic:
    """A Piecewise of conditions `((v1, c1), ..., (vn, True))` as nested `ITE(c1, v1, ITE(...))`,
    as SymPy's `rewrite(ITE)` writes it (printed as `where`: a condition that is False on NaN
    takes the other branch, as NumPy's `where` does), without its search for an earlier condition
    that always holds (`as_set` on every condition, solving inequalities).

    With the ITEs of earlier folds hidden from `piecewise_fold` (`folded_condition`), which puts
    each in conjunctive normal form (`simplify_logic`): a chain of seven `where`s, each reading the
    last in its condition, took 20 s (found by a fuzzing review).
    """
    pairs = list(folded.args)
    if pairs[-1].cond != sp.true:
        return folded.rewrite(sp.ITE)  # no default branch: SymPy's own checks
    last = pairs[-1].expr
    for value, cond in reversed(pairs[:-1]):
        last = sp.ITE(cond, value, last)
    return last.xreplace(
        {r: r.canonical for r in last.atoms(sp.core.relational.Relational)}
    )


# A folded condition's size (nodes, a shared part counted at each use) past which the checks and the
# printers would take seconds over it.
MAX_FOLDED_SIZE = 2000


def tree_size(expr: sp.Basic) -> int:
    """The number of nodes of `expr` written out as a tree (each shared part counted where it is
    used), counted over its distinct parts."""
    return folded_up(expr, lambda node, sizes: 1 + sum(sizes))


def folded_up(expr: sp.Basic, combine, values: dict | None = None):
    """`combine(node, [the values of its arguments])` for each distinct part of `expr`, arguments
    first; the value of `expr` itself. Without recursion. `values`: the parts already combined (kept
    across calls by a caller that folds many expressions sharing parts)."""
    values = {} if values is None else values
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in values:
            continue
        if ready or not node.args:
            values[node] = combine(node, [values[a] for a in node.args])
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in values)
    return values[expr]


# How many cases a `where` condition may fold into: each `where` in it doubles them (SymPy folds
# a condition that holds a Piecewise into one that does not); 2^8 took 1.7 to 5 seconds.
MAX_CASES = 64


def _check_cases(cond: sp.Basic) -> None:
    """LossLimitError where folding `cond` would make more than MAX_CASES cases."""
    cases, count, stack = 1, 0, [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, TensorFunction):  # left whole by the fold
            continue
        if isinstance(node, sp.Piecewise):
            cases *= len(node.args)
            count += 1
        stack.extend(node.args)
    if cases > MAX_CASES:
        raise LossLimitError(
            f"this `where` condition holds {count} `where`s, {cases:,} cases once folded; the limit is {MAX_CASES}"
        )


# ------------------------------------------------------------------ cheap construction
#
# SymPy simplifies Max, Min, comparisons and Piecewise when it builds them, through its
# assumptions system: Max and Min compare every pair of arguments (`_find_localzeros`, with
# `factor_terms` on each difference: seconds for `max` of 40 powers of `e`, minutes for 900),
# a comparison asks whether `a - b` is positive (milliseconds for `exp(-k y_pred) > k`), and a
# Piecewise rewrites every comparison in its conditions again. A real loss holds a handful of
# these and keeps SymPy's simplifications. A program that holds more (hundreds fit in 10,000
# characters) is built cheaply instead: arguments flattened and deduplicated, numbers merged,
# comparisons decided only between numbers, `where` simplified only when its condition is
# decided or its branches are equal; everything else stays as written. The translator says
# which, per program, with `deciding(...)` (thread-local, so threads do not mix programs).
SMALL_MINMAX = 4
# Operands of a comparison beyond this many nodes are never handed to the assumptions system.
SMALL_OPERAND = 24

_state = threading.local()


@contextlib.contextmanager
def deciding(decide: bool):
    """Within the block, build Max, Min, comparisons and `where` with SymPy's simplifications or without."""
    before = getattr(_state, "decide", True)
    _state.decide = decide
    try:
        yield
    finally:
        _state.decide = before


def _deciding() -> bool:
    return getattr(_state, "decide", True)


def _small(expr: sp.Basic, limit: int = SMALL_OPERAND) -> bool:
    """`expr` has at most `limit` nodes (counted without recursion, stopping early)."""
    count, stack = 0, [expr]
    while stack:
        count += 1
        if count > limit:
            return False
        stack.extend(stack.pop().args)
    return True


def _small_conditions(cond: sp.Basic) -> bool:
    """Each comparison in `cond` is of small operands that SymPy may compare: not one it knows is
    not real (`log(-1 - y_pred^2) > 0`: SymPy's Piecewise raises where it rewrites it)."""
    return all(
        _small(side) and side.is_extended_real is not False
        for rel in cond.atoms(sp.core.relational.Relational)
        for side in rel.args
    )


# How often SymPy's Piecewise may rebuild itself while it canonicalizes its conditions.
MAX_SETTLE = 40


class Unsettled(ValueError):
    """SymPy's canonical form of a `where` condition did not settle."""


class SettlingPiecewise(Where):
    """A Piecewise whose evaluation may rebuild itself at most MAX_SETTLE times over.

    SymPy turns a comparison with a Piecewise operand into `ITE(...)`, and for
    some of those the canonical form flips between two forms for ever
    (`Ne(2*y_pred - y_true, y_true - y_pred)` and its mirror): Piecewise.eval
    rebuilds itself until the recursion limit, which took a second. Built as this
    class, that loop stops at once with `Unsettled`; what settles is handed back
    as an ordinary Piecewise.
    """

    @classmethod
    def eval(cls, *args):
        depth = getattr(_state, "settle", 0)
        if depth >= MAX_SETTLE:
            raise Unsettled(
                "SymPy's canonical form of this `where` condition does not settle"
            )
        _state.settle = depth + 1
        try:
            return super().eval(*args)
        finally:
            _state.settle = depth


def _sympy_piecewise(pairs) -> sp.Expr:
    """`sp.Piecewise(*pairs)`, evaluated, with the loop guard of `SettlingPiecewise`."""
    result = SettlingPiecewise(*pairs)
    if isinstance(result, SettlingPiecewise):
        return Where(*result.args, evaluate=False)
    return result


def minmax(cls: type, args) -> sp.Expr:
    """`cls(*args)` for `cls` Max or Min (see the section comment)."""
    flat: list[sp.Expr] = []
    for arg in args:
        flat.extend(arg.args if type(arg) is cls else (arg,))
    # (asked only where a path below reads it: the assumptions of each argument cost, 0.6 s for
    # a `min` of 1,387 powers of `e`, which SymPy never decides; a fuzzed program)
    decides = functools.cache(
        lambda: _deciding() and all(a.is_extended_real is not False for a in flat)
    )
    if len(flat) == 2 and decides() and (pair := _against_a_number(flat)) is not None:
        x, number = pair
        # What SymPy's evaluation decides for `max(x, c)`, from two assumptions queries: its
        # comparisons of the pair took 1.5-6 ms (hinge's `maximum(1 - t * y_pred, 0)`), and the
        # queries themselves 1.8 ms there, where `_takes_both_signs` sees at once that neither holds.
        if _takes_both_signs(x - number):
            return cls(x, number, evaluate=False)
        above, below = (
            (x - number).is_extended_nonnegative,
            (x - number).is_extended_nonpositive,
        )
        if above or below:
            return x if bool(above) == (cls is sp.Max) else number
        return cls(x, number, evaluate=False)
    if len(flat) <= SMALL_MINMAX and decides():
        return cls(*flat)
    numbers = [a for a in flat if a.is_Number]
    others = list(dict.fromkeys(a for a in flat if not a.is_Number))
    if numbers:
        others.append(max(numbers) if cls is sp.Max else min(numbers))
    if len(others) <= SMALL_MINMAX and decides():
        return cls(*others)
    if len(others) == 1:
        return others[0]
    return cls(*others, evaluate=False)


def _takes_both_signs(expr: sp.Basic) -> bool:
    """`expr` is a sum with a term `k * s` where `s` is a real symbol of unknown sign that no other
    term reads and `k` a product of finite numbers and real symbols not known to be 0: with `k`
    nonzero, the term, and so the sum, takes every real value as `s` runs over the reals, so
    neither `expr >= 0` nor `expr <= 0` can be proved (`1 - t * y_pred`)."""
    if not isinstance(expr, sp.Add):
        return False
    for term in expr.args:
        factors = sp.Mul.make_args(term)
        for s in factors:
            if not (
                s.is_Symbol and s.is_extended_real and s.is_extended_positive is None
            ):
                continue
            if s.is_extended_negative is not None or s.is_zero is not None:
                continue
            if not all(_nonzero_factor(f) for f in factors if f is not s):
                continue
            if not any(
                s in other.free_symbols for other in expr.args if other is not term
            ):
                return True
    return False


def _nonzero_factor(factor: sp.Basic) -> bool:
    """A finite nonzero number, or a real symbol that may be nonzero."""
    if factor.is_Number:
        return bool(factor.is_finite) and not factor.is_zero
    return (
        factor.is_Symbol
        and bool(factor.is_extended_real)
        and factor.is_zero is not True
    )


def _against_a_number(flat: list) -> tuple[sp.Expr, sp.Number] | None:
    """`(x, c)` for two arguments, `c` a finite number and `x` no number and holding no Max or Min
    (SymPy collapses a Max of a Min against a number); else None."""
    if len(flat) != 2:
        return None
    number, x = flat if flat[0].is_Number else flat[::-1]
    if (
        not number.is_Number
        or not number.is_finite
        or x.is_number
        or x.has(sp.Max, sp.Min)
    ):
        return None
    return x, number


def maximum(*args) -> sp.Expr:
    """Elementwise `max(a, b, ...)` as SymPy's Max (see `minmax`)."""
    return minmax(sp.Max, args)


def minimum(*args) -> sp.Expr:
    """Elementwise `min(a, b, ...)` as SymPy's Min (see `minmax`)."""
    return minmax(sp.Min, args)


# The parts SymPy takes of a value it does not know is real; lossdsl's values are real or NaN.
_COMPLEX_PARTS = (sp.re, sp.im, sp.arg, sp.atan2, sp.conjugate)


def absolute(x: sp.Expr) -> sp.Expr:
    """`abs(x)` as SymPy's Abs, except where SymPy would take the real part of a value it does not
    know is real: `Abs(exp(z))` is `exp(re(z))` to SymPy, which for `z = sqrt(y_pred)` is
    `exp(cos(atan2(0, y_pred) / 2) * sqrt(|y_pred|))`, a value where NumPy's is NaN, and no code
    could be written for it. In lossdsl every value is real or NaN, so the absolute value of
    `exp(z)` or of a power of a positive base is that value itself, a product's is the product of
    its factors', and anything else whose absolute value SymPy would write with a real part
    (`(-2)^z`, NaN at each non-integer `z` as in NumPy) stays `Abs(x)` unevaluated."""
    if isinstance(x, sp.exp) or (x.is_Pow and x.base.is_extended_positive):
        return x  # what SymPy makes of it where the exponent is real (`0.5^log(y_pred)`: NaN below 0)
    if _unsigned_linear(
        x
    ):  # what SymPy makes of it (its sign taken out), without its sign queries
        return sp.Abs(-x if x.could_extract_minus_sign() else x, evaluate=False)
    result = sp.Abs(x)
    if not (result.atoms(*_COMPLEX_PARTS) - x.atoms(*_COMPLEX_PARTS)) and not any(
        map(_negative_base_power, sp.Mul.make_args(x))
    ):
        return result
    if x.is_Mul:
        return sp.Mul(*(absolute(factor) for factor in x.args))
    return sp.Abs(x, evaluate=False)


def _unsigned_linear(x: sp.Expr) -> bool:
    """Whether `x` is a sum of numbers and multiples of real symbols, one of which may have either
    sign (`y_true - y_pred - 3`): its sign is unknown, so SymPy's `Abs(x)` is `Abs(x)` unevaluated,
    which it finds only after asking the sum's sign several ways (4 ms an `abs`: a program of 700
    `abs(e - k)` took 2.6 s to check; a review)."""
    if not x.is_Add:
        return False
    unsigned = False
    for term in x.args:
        if term.is_Number:
            continue
        factor, symbol = term.as_coeff_Mul()
        if not (
            symbol.is_Symbol
            and symbol.is_extended_real
            and factor.is_Number
            and factor.is_nonzero
        ):
            return False
        unsigned = unsigned or (
            symbol.is_extended_nonnegative is None
            and symbol.is_extended_nonpositive is None
        )
    return unsigned


def _negative_base_power(x: sp.Expr) -> bool:
    """A power of a negative base to an exponent not known to be an integer: SymPy writes its
    absolute value as that of a real power (`abs((-2)^z)` as `2^z`), real where NumPy's is NaN."""
    return bool(x.is_Pow and x.base.is_extended_negative and not x.exp.is_integer)


_SELF_ORIGINAL = {v: k for k, v in SELF_COMPARISONS.items()}
# `x <= x` and `x >= x` are `x == x`: False where x is NaN, True elsewhere
_SELF_TESTS = {**SELF_COMPARISONS, sp.Le: SelfEqual, sp.Ge: SelfEqual}


def relation(cls: type, left: sp.Basic, right: sp.Basic) -> sp.Basic:
    """`cls(left, right)` for a SymPy relational (see the section comment)."""
    cls = _SELF_ORIGINAL.get(cls, cls)
    if left == right and cls in _SELF_TESTS and subtrees.free_symbols(left):
        return _SELF_TESTS[cls](
            left, right
        )  # a NaN test: SymPy's is decided (symfuncs)
    if left.is_extended_real is False or right.is_extended_real is False:
        return cls(left, right, evaluate=False)
    if (decided := _decided_in_floats(cls, left, right)) is not None:
        return decided
    if (
        left.is_Number
        and right.is_Number
        or (_deciding() and _small(left) and _small(right))
    ):
        return cls(left, right)
    if any(side.is_Number and side.is_finite for side in (left, right)):
        # a finite number and an expression that is no number differ by no number (and a large sum
        # minus a number is a new large sum: `where(a > k, ...)` of a bound sum of 240 terms, 59 times)
        return cls(left, right, evaluate=False)
    difference = left - right
    if difference.is_Number:
        return cls(difference, 0)
    return cls(left, right, evaluate=False)


def _decided_in_floats(cls: type, left: sp.Basic, right: sp.Basic) -> sp.Basic | None:
    """sp.true or sp.false where the two sides, holding an exact number that is no float (`pi`,
    `pi / 4`, a fraction), differ by a number once each such number is its float64 value: decided
    as NumPy decides it. SymPy compares `pi` exactly with a folded float, so that `abs(pi) >= pi`
    (`abs(pi)` folds to the float nearest pi, just below it) was False, and `pi / 4 ==
    0.7853981633974483` too, where NumPy's are True. None where that does not apply."""
    exact = _exact_constants(left) | _exact_constants(right)
    if not exact:
        return None
    floats = {a: sp.Float(float(a)) for a in exact}
    difference = left.xreplace(floats) - right.xreplace(floats)
    if not difference.is_Number or not difference.is_finite:
        return None
    return cls(difference, 0)


def negation(cond: sp.Basic) -> sp.Basic:
    """`not cond` as NumPy computes it, where a side of a comparison may be NaN: `not (a < b)` is
    True there, and SymPy's negation, `a >= b`, False. An ordering's is `NegatedOrdering` (kept as
    `not` of it), anything else's SymPy's `Not`, exact for it: `==` and `!=` are each other's
    negation, `not` of `not` is the condition, and `and`, `or` and `ITE` are kept whole (the code
    computes `logical_not` of the whole)."""
    return NegatedOrdering(cond) if isinstance(cond, ORDERINGS) else sp.Not(cond)


@functools.lru_cache(maxsize=64)
def _exact_constants(expr: sp.Basic) -> frozenset:
    """The finite numbers in `expr` that are neither floats nor integers: `pi`, fractions.

    (Remembered: every comparison of a bound sum of 240 terms, read by 59 `where`s, asked it of
    that sum again, each time a walk of it; fuzzing. Few entries: the keys hold each compile's
    own Dummy symbols, so they serve one compile, and the cache should not hold on to old ones.)"""
    numbers = subtrees.atoms(expr, sp.Number, sp.NumberSymbol)
    return frozenset(
        a for a in numbers if a.is_finite and not (a.is_Float or a.is_Integer)
    )


def as_floats(expr: sp.Basic) -> sp.Basic:
    """`expr` with each exact number that is no float or integer (`pi`, a fraction) as the float64
    number nearest it; SymPy's arithmetic on such floats rounds each operation as float64 does."""
    exact = _exact_constants(expr)
    return expr.xreplace({a: sp.Float(float(a)) for a in exact}) if exact else expr


def where(cond: sp.Basic, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """`where(cond, a, b)` as `Piecewise((a, cond), (b, True))` (see the section comment)."""
    return piecewise([(a, cond), (b, sp.true)])


def piecewise(pairs) -> sp.Expr:
    """A Piecewise of (value, condition) pairs, the last condition True (see the section comment)."""
    pairs = [(value, folded_condition(cond)) for value, cond in pairs]
    if _deciding() and all(_small_conditions(cond) for _, cond in pairs):
        try:
            return _sympy_piecewise(pairs)
        except Unsettled:
            pass  # built as it is written, below
    kept = []
    for value, cond in pairs:
        if cond == sp.false:
            continue
        kept.append((value, cond))
        if cond == sp.true:
            break
    if not kept or kept[-1][1] != sp.true:
        return Where(*pairs)  # no default branch: let SymPy say what it makes of it
    if len({value for value, _ in kept}) == 1:
        return kept[0][0]
    return Where(*kept, evaluate=False)


# Whether this SymPy takes a sum's largest Float coefficient out of its power (before 1.14).
_FLOATS_TAKEN_OUT = not ((sp.Float(2.0) + 4 * sp.Dummy()) ** sp.Rational(1, 2)).is_Pow


def power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """`sympy.Pow(base, exponent)`, built without evaluating where SymPy's evaluation is known to
    leave it as it is: a sum that is not a number raised to a number other than 0 and 1, whose
    terms have no imaginary part written out (`Add._eval_power` then returns None, and nothing
    else in `Pow.__new__` applies). SymPy's evaluation first asks whether each term of the sum is
    infinite; for nested powers over a positive base (`(2 + (2 + exp(y_pred))^-0.5)^-0.5`, twenty
    levels) that question takes each sum's numerator and denominator (`_monotonic_sign`), whose
    size grows at each level: seconds to minutes. (SymPy before 1.14 took the largest Float
    coefficient out of such a sum, `(2.0 + 4 x)^0.5` as `2.0 (0.5 + x)^0.5`: there, a sum with a
    Float coefficient is evaluated as before.)

    A power of such a power to an integer is that power with the product of the exponents, as
    SymPy's `Pow._eval_power` takes it (`((1 + ...)^2)^-1`, the stable form of `1 / (1 + x^2)`
    where x is `1 / (1 + ...)`: 28 levels, 18 s), and is built so where that power stays as written.
    """
    if stays_as_written(base, exponent):
        return sp.Pow(base, exponent, evaluate=False)
    if base.is_Pow and exponent.is_Integer and exponent not in (sp.S.Zero, sp.S.One):
        product = base.exp * exponent
        if stays_as_written(
            base.base, product
        ):  # (a sum: `as_base_exp` is its base and exponent)
            return sp.Pow(base.base, product, evaluate=False)
    return sp.Pow(base, exponent)


def reciprocal(x: sp.Expr) -> sp.Expr:
    """`1 / x`. SymPy's `1 / b^e` is `b^(-e)`, built evaluated (`Pow._eval_power` of the integer
    -1); for a power of a sum that `power` builds as written, it is built so here, without the
    sign questions of its evaluation (the saturation check's divisor `(3 + ...)^2` over
    `exp(y_pred)`, twenty levels: 13 s). A sum that `power` builds to the power -1 as written is
    built so too (the divisor `1 + (1 / (1 + ...))^2`, 28 levels: 36 s)."""
    if (
        x.is_Pow and x.exp.is_zero is False and stays_as_written(x.base, -x.exp)
    ):  # (1 / b^0.0 is 1)
        return sp.Pow(x.base, -x.exp, evaluate=False)
    if stays_as_written(x, sp.S.NegativeOne):
        return sp.Pow(x, sp.S.NegativeOne, evaluate=False)
    return 1 / x


def scaled(coefficient: sp.Expr, factor: sp.Expr) -> sp.Expr:
    """`sympy.Mul(coefficient, factor)`, built without evaluating where SymPy's evaluation is known
    to leave it as it is: a number other than 0 and 1 times a power that `power` builds so (in
    `Mul.flatten` such a power is built again, evaluated: `(2 + 3 (2 + ...)^-0.5)^-0.5`)."""
    if (
        coefficient.is_Number
        and coefficient.is_finite
        and coefficient.is_zero
        is False  # (a Float 0.0 is not `S.Zero`, and its product is 0)
        and coefficient is not sp.S.One
        and factor.is_Pow
        and factor.exp.is_zero
        is False  # (a power to 0.0 stays a power, which the product drops)
        and stays_as_written(factor.base, factor.exp)
    ):
        return sp.Mul(coefficient, factor, evaluate=False)
    return sp.Mul(coefficient, factor)


def stays_as_written(base: sp.Expr, exponent: sp.Expr) -> bool:
    """Whether `Pow(base, exponent)` evaluated is that power as written (`power`). (A sum of two
    terms is asked whether one is infinite, to take `(a + I b)^e` of an infinite one: a term with
    `I` in it is left to SymPy.)"""
    return (
        base.is_Add
        and exponent.is_Number
        and exponent.is_finite
        and exponent not in (sp.S.Zero, sp.S.One)
        and not base.is_number
        and (
            len(base.args) != 2
            or all(term.coeff(sp.S.ImaginaryUnit) == 0 for term in base.args)
        )
        and not (
            _FLOATS_TAKEN_OUT
            and any(term.as_coeff_Mul()[0].is_Float for term in base.args)
        )
    )
