"""`lossdsl.subtrees`: SymPy's `atoms` and `free_symbols`, asked of each distinct subtree once."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hangguard import answers_within

import lossdsl
from lossdsl import subtrees
from lossdsl import symfuncs as sf

x, y, k = sp.symbols("x y k")
d = sp.Dummy("d")

EXPRESSIONS = [
    x,
    sp.Integer(3),
    x + 2 * y - sp.Rational(1, 3),
    sp.Max(x, y, 0) * sp.exp(-x) + sp.pi,
    sp.Piecewise((x**2, x > y), (sp.log(y + d), sp.Eq(x, 1.5)), (0, True)),
    sf.ReduceSum(x * sf.Softplus(y - k)) / sp.sqrt(d + 4),
    sp.And(x > 0, sp.Or(y < 1, sp.Ne(k, 2))),
]
TYPES = [
    (sp.Symbol,),
    (sp.Number,),
    (sp.Number, sp.NumberSymbol),
    (sp.Dummy,),
    (sp.Rel,),
    (sp.Pow, sp.exp),
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
@pytest.mark.parametrize("types", TYPES, ids=lambda t: "-".join(c.__name__ for c in t))
def test_atoms_are_sympys_in_sympys_order(expr, types):
    found = subtrees.atoms(expr, *types)
    assert found == expr.atoms(*types)
    # built in SymPy's preorder, the set iterates as SymPy's does (callers that loop over it keep
    # their order)
    assert list(found) == list(expr.atoms(*types))


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_free_symbols_are_sympys(expr):
    assert subtrees.free_symbols(expr) == expr.free_symbols


def test_a_shared_subtree_is_walked_once():
    # f(a, a) with a = f(b, b), 80 levels: a tree of 2^80 nodes, a DAG of 81, which SymPy's
    # `atoms` would walk as the tree
    f = sp.Function("f")
    node = x + sp.pi
    for _ in range(80):
        node = f(node, node)
    with answers_within(5):
        assert subtrees.atoms(node, sp.Symbol) == {x}
        assert subtrees.atoms(node, sp.NumberSymbol) == {sp.pi}
        assert subtrees.free_symbols(node) == {x}


def test_a_large_binding_read_by_many_wheres_compiles():
    # A fuzzed program (bench/fuzz.py, seed 1301) that took 2 s, most of it in `atoms` walking the
    # binding again at each `where` that reads it; a guard against hangs, not a speed goal
    # (bench/fuzz.py measures that).
    binding = " + ".join(f"e^{i}" for i in range(48))
    source = f"a = {binding}\n" + " + ".join(
        f"where(a > {i}, y_pred, {i})" for i in range(59)
    )
    with answers_within():
        spec = lossdsl.compile(source)
        module = spec.python_source()
    assert [(d.level, d.code, d.line) for d in spec.diagnostics] == [
        ("note", "jump-unchecked", 2)
    ]
    assert "a = " in module and module.count("keras.ops.where(") >= 59
    # its value, against the formula read in Python: e = y_true - y_pred
    y_true, y_pred = np.array([[0.0, 0.5, 2.0]]), np.array([[0.9, -0.5, 0.0]])
    a = sum((y_true - y_pred) ** i for i in range(48))
    expected = sum(np.where(a > i, y_pred, i) for i in range(59)).mean(axis=-1)
    got = spec.keras_loss(reduction=None)(
        y_true.astype("float32"), y_pred.astype("float32")
    )
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_outside_leaves_out_the_stop_nodes_and_what_they_hold():
    inner = sf.ReduceMean(x * y)
    expr = sp.exp(inner) + k * inner + d
    found = set(subtrees.outside(expr, sf.REDUCTIONS))
    assert found == {expr, sp.exp(inner), k * inner, k, d}
    # a symbol of `follow` is read through to its value, and what that holds outside the stops
    assert set(
        subtrees.outside(d + 1, sf.REDUCTIONS, follow={d: y * sf.ReduceSum(x)})
    ) == {
        d + 1,
        d,
        sp.Integer(1),
        y * sf.ReduceSum(x),
        y,
    }


def test_preorder_yields_each_distinct_part_once_in_the_order_of_the_arguments():
    x, y = sp.symbols("x y")
    shared = sp.sin(x) + 1
    expr = sp.Function("f")(shared, sp.Function("g")(shared, y))
    walked = list(subtrees.preorder(expr))
    assert walked[:2] == [expr, shared]
    assert len(walked) == len(set(walked)) and set(walked) == set(
        sp.preorder_traversal(expr)
    )
    # below the parts `descend` allows only: the constant's inside is not walked
    constant = sp.sqrt(2) + sp.log(3)
    inside = list(
        subtrees.preorder(x * constant, descend=lambda node: node.free_symbols != set())
    )
    assert constant in inside and sp.sqrt(2) not in inside and sp.log(3) not in inside
