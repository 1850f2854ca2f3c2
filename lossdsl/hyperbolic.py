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

Those hold SymPy's own classes over plain symbols (no assumptions), where the same queries came
back: `str(spec.expr)` of `tanh(sigmoid(...))` nested four deep took 11 s, five deep more than
five minutes (a review of bad input). `settle` records, on each such node, "unknown" for the
facts whose SymPy handlers expand the argument's real and imaginary parts: the answer those
handlers reach for an argument of plain symbols, without the expansion.
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

# The facts whose handlers in SymPy's own classes expand the argument's real and imaginary parts,
# through `as_real_imag` or through one another (SymPy 1.14).
_EXPANDING = {
    sp.sinh: ("real", "extended_real"),
    sp.cosh: ("real", "positive", "nonnegative", "zero"),
    sp.tanh: ("real", "extended_real", "finite", "negative", "zero"),
}


def settle(expr: sp.Basic) -> sp.Basic:
    """`expr`, each of SymPy's own sinh, cosh and tanh in it whose argument SymPy cannot call
    real told "unknown" for `_EXPANDING`'s facts (where it knows nothing yet); returned for
    chaining. Inner nodes first, so that asking whether an argument is real is cheap; one that
    is real (`tanh(abs(e))`) keeps what SymPy decides of it (a review: a "unknown" there lost
    `cosh(abs(e))` its positivity, in the user's equal expressions too, SymPy's cache sharing
    them). A fact some other rule decides later replaces the "unknown"."""
    for node in _postorder(expr):
        facts = _EXPANDING.get(type(node))
        if facts is None or node.args[0].is_extended_real:
            continue
        if node._assumptions is node.default_assumptions:
            node._assumptions = node.default_assumptions.copy()
        for fact in facts:
            node._assumptions.setdefault(fact, None)
    return expr


def _postorder(expr: sp.Basic):
    """Each object of `expr` once, its arguments before it (a binding read twice is one object in
    both places). Without recursion."""
    seen: set[int] = set()
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            yield node
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
