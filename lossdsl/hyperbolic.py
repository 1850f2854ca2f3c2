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
`rebuild.plain` turns them back into SymPy's own for `spec.expr` and `spec.gradient()`.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.function import ArgumentIndexError


class _ByArgument:
    """What the three share: real where the argument is real, SymPy's own class for `plain()`, and
    `fdiff` through `_derivative` (SymPy's builds SymPy's classes)."""

    sympy_class: type

    def _eval_is_real(self):
        return True if self.args[0].is_real else None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return self._derivative(self.args[0])

    def plain(self) -> sp.Expr:
        return self.sympy_class(self.args[0])


# Lower-case, as SymPy's: printers, LaTeX and SymPy's ordering of terms read the class name.
class sinh(_ByArgument, sp.sinh):
    sympy_class = sp.sinh

    @staticmethod
    def _derivative(x):
        return cosh(x)


class cosh(_ByArgument, sp.cosh):
    sympy_class = sp.cosh

    @staticmethod
    def _derivative(x):
        return sinh(x)

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_real else None


class tanh(_ByArgument, sp.tanh):
    sympy_class = sp.tanh

    @staticmethod
    def _derivative(x):
        return 1 - tanh(x) ** 2

    def _eval_is_finite(self):
        return True if self.args[0].is_extended_real else None


CLASSES = (sinh, cosh, tanh)
