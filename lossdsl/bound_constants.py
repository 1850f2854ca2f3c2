"""The value in floats of a SymPy expression made of numbers and bindings of constants.

The translator (`symbolic.py`) keeps a binding as a symbol while it builds
each line; putting its value back then evaluates every part that reads it
in SymPy, with SymPy's own numbers: `a = 1e20` then `sin(cosh(a))` took the
sine of cosh(1e20) to the precision of its argument, and `a = 10` then
`a^a^a` raised 10^(10^10) exactly, each a hang. `value_of` computes such a
part first, in Python floats, so that the limits of written numbers apply
to it ("this constant overflows a float").

Products and powers are carried as a mantissa and a power of 2 (the
argument of `math.ldexp`), so that only the part's own value, not a step on
the way to it (`a * a / a` at 1e200, `1 / c` at 1e-320), can overflow; SymPy
has merged the numbers of a product or a sum already (`a * a / a` is `a`).
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl.functions import FUNCTIONS


class NotFinite(ArithmeticError):
    """The part's value is past float's range (`overflow`), not a real number, or a division by 0."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "overflow", "not real" or "division by 0"
        # the item of a list it is at, where one is (`symbolic`)
        self.item: int | None = None


class Unknown(Exception):
    """The part holds what is not computed here (a `where`, a tensor function, an unknown symbol), or
    its value is below float's smallest number: left to SymPy and the later checks."""


# Each elementwise function by its SymPy class, and its float form.
_FOLDS = {
    f.build: f.fold
    for f in FUNCTIONS.values()
    if f.kind == "elementwise" and f.fold and isinstance(f.build, type)
}


def value_of(expr: sp.Basic, constants: dict[sp.Symbol, float]) -> float:
    """`expr` in floats, its symbols read from `constants`.

    Raises:
        NotFinite: where the value is past float's range, not a real number, or divides by 0.
        Unknown: where this cannot tell.
    """
    mantissa, exponent = _wide(expr, constants)
    try:
        value = math.ldexp(mantissa, exponent)
    except OverflowError:
        raise NotFinite("overflow") from None
    if value == 0 and mantissa != 0:
        raise Unknown("below float's smallest number")
    return value


def _wide(expr: sp.Basic, constants: dict) -> tuple[float, int]:
    """`expr` as (mantissa, exponent): `mantissa * 2**exponent`."""
    if expr.is_Symbol:
        if expr not in constants:
            raise Unknown(f"no value for {expr}")
        return math.frexp(constants[expr])
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        number = float(expr)
        if not math.isfinite(number):
            raise Unknown("a number past float's range (the translator's own checks)")
        return math.frexp(number)
    if isinstance(expr, sp.Mul):
        mantissa, exponent = 1.0, 0
        for factor in expr.args:
            m, e = _wide(factor, constants)
            mantissa, shift = math.frexp(mantissa * m)
            exponent += e + shift
        return mantissa, exponent
    if isinstance(expr, sp.Pow):
        return _power(_wide(expr.base, constants), _float(expr.exp, constants))
    if isinstance(expr, sp.Add):
        try:
            return math.frexp(math.fsum(_float(term, constants) for term in expr.args))
        except OverflowError:
            raise Unknown("a sum past float's range on the way") from None
    fold = _FOLDS.get(type(expr))
    if fold is None:
        raise Unknown(f"not computed here: {type(expr).__name__}")
    args = [_float(a, constants) for a in expr.args]
    try:
        value = float(fold(*args))
    except OverflowError:
        raise NotFinite("overflow") from None
    except (ValueError, ZeroDivisionError):
        raise NotFinite("not real") from None
    if math.isnan(value):
        raise NotFinite("not real")
    if math.isinf(value):
        raise NotFinite("overflow")
    return math.frexp(value)


def _float(expr: sp.Basic, constants: dict) -> float:
    mantissa, exponent = _wide(expr, constants)
    try:
        return math.ldexp(mantissa, exponent)
    except OverflowError:
        raise NotFinite("overflow") from None


def _power(base: tuple[float, int], exponent: float) -> tuple[float, int]:
    """`base ** exponent` for a wide base."""
    mantissa, shift = base
    if mantissa == 0:
        if exponent < 0:
            raise NotFinite("division by 0")
        return (0.0, 0) if exponent > 0 else (0.5, 1)
    whole = exponent.is_integer()
    if mantissa < 0 and not whole:
        raise NotFinite("not real")
    sign = -1.0 if mantissa < 0 and whole and int(exponent) % 2 else 1.0
    # log2 of the result, split into its whole part and the rest
    power = exponent * (math.log2(abs(mantissa)) + shift)
    if not math.isfinite(power):
        raise NotFinite("overflow")
    if abs(power) > 1e9:
        if power > 0:
            raise NotFinite("overflow")
        raise Unknown("below float's smallest number")
    whole_part = math.floor(power)
    mantissa, shift = math.frexp(sign * 2.0 ** (power - whole_part))
    return mantissa, shift + whole_part
