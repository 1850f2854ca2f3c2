"""`lossdsl.derivative.derivative` builds the expression `sympy.diff` builds, node for node.

The fused gradients and the dead-gradient check differentiate through it; the
generated code depends on the exact form of each derivative (the order of a
product's terms decides the temporaries), so equality is asserted on `srepr`,
not on values. The library's own formulas, after the stable rewrites, are
differentiated with respect to y_pred, y_true and each binding they read.
"""

from __future__ import annotations

import pytest
import sympy as sp

from lossdsl import library
from lossdsl import symfuncs as sf
from lossdsl.derivative import derivative
from lossdsl.rewrites import stable_form
from lossdsl.symbolic import Y_PRED, Y_TRUE

x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)

EXPRESSIONS = [
    x,
    y,
    sp.Integer(3),
    x * y,
    2.5 * x * sp.exp(x) * sp.log(y + x),
    x**y,
    x**2.5 + y**-2,
    sp.exp(-sp.Abs(x)) * sp.sqrt(x**2 + 1),
    sp.Max(x, 0) * sp.Min(x, y**2),
    sp.tanh(x * y) - sp.cosh(x) / (1 + sp.sinh(x) ** 2),
    sp.Piecewise((x**2, x > 0), (y * x, True)),  # not a chain rule: SymPy's own method
    sf.Clip(x, 0.1, 0.9) * sp.log(x + 1),
    sp.Heaviside(x - y) * x,
    sp.Abs(sp.log(x)),
    # an Abs of a real argument is taken by the chain rule here, nested too (SymPy's own took the
    # conjugate and differentiated the argument again at every level: seconds for 16 levels)
    sp.Abs(x - y),
    sp.Abs(sp.Abs(sp.Abs(x - 2 * y) - y) - x) * (y + 1),
    sp.Abs(x) ** 3 - sp.Abs(2 * x + sp.Abs(y - x)),
    # Factors and powers whose derivative is 0 (skipped without asking whether the rest is finite),
    # and the same beside an infinity, where SymPy's product with 0 is NaN.
    (x + y) ** 3 * sp.exp(y) * sp.cos(y),
    (sp.Abs(x) + 1) ** y,
    sp.oo * x * y,
    sp.zoo * x**2,
    sp.Mul(sp.oo, x, y**2, evaluate=False),
    sp.Pow(x + sp.oo * y, 2, evaluate=False),
]


def library_expressions():
    found = []
    for name in library.names():
        symbolic = library.compile(name).symbolic
        bindings, result = stable_form(symbolic)
        found += [(name, value) for _, _, value in bindings] + [(name, result)]
    return found


def symbols_of(expr: sp.Basic) -> list[sp.Symbol]:
    return sorted(
        (s for s in expr.free_symbols if isinstance(s, sp.Symbol)),
        key=sp.default_sort_key,
    )


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
@pytest.mark.parametrize("symbol", [x, y], ids=str)
def test_derivative_is_sympys_node_for_node(expr, symbol):
    assert sp.srepr(derivative(expr, symbol)) == sp.srepr(sp.diff(expr, symbol))


def test_a_product_is_built_whole_as_sympys_leibniz_rule_builds_it():
    # Mul._eval_derivative_n_times builds each term as one Mul of all the factors; built pairwise
    # (as Mul._eval_derivative would), 0.5 distributes over the sum `1 + |x|` instead, and the
    # penalized absolute error's gradient printed other temporaries.
    expr = sp.Abs(x) * 0.5 * (1 + sp.Abs(x))
    got = derivative(expr, x)
    assert sp.srepr(got) == sp.srepr(sp.diff(expr, x))
    assert sp.Add(1, sp.Abs(x)) in got.atoms(sp.Add)


def test_nested_abs_is_differentiated_without_sympys_own_rule(monkeypatch):
    expr = Y_PRED
    for _ in range(16):
        expr = sp.Abs(expr - Y_TRUE)
    expected = sp.diff(expr, Y_PRED)
    monkeypatch.setattr(
        sp.Abs, "_eval_derivative", lambda self, s: 1 / 0
    )  # not reached
    assert sp.srepr(derivative(expr, Y_PRED)) == sp.srepr(expected)


def test_derivative_of_what_does_not_read_the_symbol_is_zero():
    assert derivative(sp.exp(y) * sp.log(y), x) is sp.S.Zero
    assert derivative(x, x) is sp.S.One


def test_library_formulas_differentiate_as_sympy_does():
    checked = 0
    for name, expr in library_expressions():
        for symbol in {Y_PRED, Y_TRUE, *symbols_of(expr)}:
            if not isinstance(symbol, sp.Symbol):
                continue
            ours, sympys = derivative(expr, symbol), sp.diff(expr, symbol)
            assert sp.srepr(ours) == sp.srepr(sympys), (name, symbol)
            checked += 1
    assert checked > 100
