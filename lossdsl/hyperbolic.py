"""SymPy's sinh, cosh and tanh, without the assumption queries that take exponential time.

SymPy's hyperbolic functions decide `is_real` (and tanh `is_finite`, cosh `is_positive`) from
the real and imaginary parts of their argument, `arg.as_real_imag()`, then a `Mod` of the
imaginary part by pi. Every new `tanh(x)` asks whether `x` is zero, which asks whether `x` is
real; for a nested `tanh(tanh(...))` whose innermost argument SymPy cannot call real
(`log(y_pred)`, a common subexpression's symbol) each level expands the real and imaginary
parts of the level below: 11 nested tanh took minutes in `compile()` and in code generation.

The language's values are real (or NaN outside a domain), so the classes here answer those
questions from the argument's own assumptions alone: real where the argument is real, and
otherwise "unknown", which SymPy reads as "may be complex", the safe side. They carry the same
names as SymPy's (printers, LaTeX and SymPy's ordering of terms read the class name), and
`symfuncs.plain` turns them back into SymPy's own for `spec.expr` and `spec.gradient()`.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.function import ArgumentIndexError


# Lower-case, as SymPy's: printers, LaTeX and SymPy's ordering of terms read the class name.
class sinh(sp.sinh):
    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return cosh(self.args[0])

    def _eval_is_real(self):
        return True if self.args[0].is_real else None

    def plain(self) -> sp.Expr:
        return sp.sinh(self.args[0])


class cosh(sp.cosh):
    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sinh(self.args[0])

    def _eval_is_real(self):
        return True if self.args[0].is_real else None

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_real else None

    def plain(self) -> sp.Expr:
        return sp.cosh(self.args[0])


class tanh(sp.tanh):
    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return 1 - tanh(self.args[0]) ** 2

    def _eval_is_real(self):
        return True if self.args[0].is_real else None

    def _eval_is_finite(self):
        return True if self.args[0].is_extended_real else None

    def plain(self) -> sp.Expr:
        return sp.tanh(self.args[0])


CLASSES = (sinh, cosh, tanh)
