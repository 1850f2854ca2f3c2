"""`construct.maximum` / `minimum` of an expression and a number decide as SymPy's Max and Min do,
and `construct.absolute` of a linear sum builds SymPy's Abs (at the end).

`minmax` answers `max(x, c)` from two assumption queries, and skips them where
`_takes_both_signs` sees that `x - c` takes both signs (a term `k * s` in a real
symbol of unknown sign that nothing else reads). Each case is compared with
SymPy's own evaluation of the pair, so a shortcut that decided differently
(folding a max SymPy keeps, or keeping one it folds) fails here.
"""

from __future__ import annotations

import pytest
import sympy as sp

from lossdsl import construct
from lossdsl.symbolic import Y_PRED, Y_TRUE

t = sp.Dummy("t", real=True)
p = sp.Symbol("p", positive=True)
n = sp.Symbol("n", negative=True)

EXPRESSIONS = [
    1 - t * Y_PRED,  # hinge: both signs
    1 - Y_PRED,
    -Y_PRED * Y_TRUE + Y_PRED + 1,  # y_true's term alone: both signs
    1 - p * Y_PRED,
    Y_PRED * sp.exp(t) + 1,  # a coefficient that is no symbol: SymPy asked
    Y_PRED**2 + 1,  # provably positive: folded
    -(Y_PRED**2) - 1,  # provably negative: folded
    p + 2,
    n - 1,
    2 - 3 * p,  # a symbol of known sign: SymPy asked
    p * Y_PRED - p * Y_PRED**2,  # y_pred in two terms: SymPy asked
    sp.Abs(Y_TRUE),
    sp.exp(Y_PRED) + Y_TRUE,  # y_true's term alone
]


@pytest.mark.parametrize("x", EXPRESSIONS, ids=str)
@pytest.mark.parametrize("number", [0, sp.Float(1e-7), -3])
@pytest.mark.parametrize("which", ["max", "min"])
def test_a_pair_with_a_number_decides_as_sympy(x, number, which):
    ours, theirs = (
        (construct.maximum, sp.Max) if which == "max" else (construct.minimum, sp.Min)
    )
    with construct.deciding(True):
        got = ours(x, sp.sympify(number))
    expected = theirs(x, number)
    if isinstance(
        expected, theirs
    ):  # SymPy keeps the pair: so does lossdsl, unevaluated
        assert isinstance(got, theirs)
        assert set(got.args) == set(expected.args)
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("x", "both"),
    [
        (1 - t * Y_PRED, True),
        (1 - p * Y_PRED, True),
        (-Y_PRED * Y_TRUE + Y_PRED + 1, True),
        (Y_PRED * sp.exp(t) + 1, False),
        (Y_PRED**2 + 1, False),
        (2 - 3 * p, False),
        (p * Y_PRED - p * Y_PRED**2, False),
        (Y_PRED, False),  # not a sum
    ],
    ids=str,
)
def test_both_signs_is_seen_only_where_neither_sign_is_provable(x, both):
    assert construct._takes_both_signs(x) is both
    if both:
        assert x.is_extended_nonnegative is not True
        assert x.is_extended_nonpositive is not True


# `construct.absolute` of a sum of numbers and multiples of real symbols, one of which may have
# either sign, skips SymPy's sign queries (4 ms an `abs`: 700 `abs(e - k)` took 2.6 s to check;
# a review): it must build exactly SymPy's Abs, its sign taken out as SymPy takes it.
ABSOLUTE = [
    Y_TRUE - Y_PRED,  # SymPy writes Abs(y_pred - y_true)
    Y_TRUE - Y_PRED - 3,
    Y_PRED + 1,
    2 * Y_PRED - sp.Rational(1, 3),
    -Y_TRUE + Y_PRED + sp.Float(0.5),
    t - Y_PRED,
    -t - Y_PRED - Y_TRUE,
    p + Y_PRED,  # a positive symbol beside one of either sign
    # not taken the short way: SymPy decides or rewrites these
    p + 1,  # positive: p + 1
    -p - 2,
    n - 1,
    2 * Y_PRED,  # a product: 2 Abs(y_pred)
    -Y_PRED,
    Y_PRED**2 + 1,
    t * Y_PRED + 1,  # a product of symbols
]


@pytest.mark.parametrize("x", ABSOLUTE, ids=str)
def test_absolute_of_a_linear_sum_is_sympy_s_abs(x):
    assert sp.srepr(construct.absolute(x)) == sp.srepr(sp.Abs(x))


def test_the_short_way_is_taken_for_sums_of_unknown_sign_only():
    assert [construct._unsigned_linear(x) for x in ABSOLUTE] == [True] * 8 + [False] * 7
