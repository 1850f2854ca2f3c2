"""`rebuild.substitute_in_turn` is `rebuild.substitute` applied pair by pair, node for node.

The emitter re-shares bindings and reuses temporaries through it (lossdsl/emit/plan.py); it
skips a pair whose value is not in the expression as it then stands, which must change nothing.
"""

from __future__ import annotations

import sympy as sp

import lossdsl
from lossdsl import library, rebuild
from lossdsl.rewrites import stable_form

x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)
a = sp.Dummy("a", real=True)
b = sp.Dummy("b", real=True)


def in_turn(expr, pairs):
    for value, replacement in pairs:
        expr = rebuild.substitute(expr, {value: replacement})
    return expr


def test_a_value_taken_by_an_earlier_pair_is_not_substituted_again():
    expr = sp.exp(x + y) * sp.log(x + y) + (x + y) ** 2 * x
    # `x + y` goes first: `x` then survives only as the lone factor of the last term.
    pairs = [(x + y, a), (x, b), (sp.exp(x + y), b)]
    got = rebuild.substitute_in_turn(expr, pairs)
    assert got == in_turn(expr, pairs) == sp.exp(a) * sp.log(a) + a**2 * b
    assert sp.srepr(got) == sp.srepr(in_turn(expr, pairs))


def test_absent_values_leave_the_expression_as_it_is():
    expr = sp.Max(x, 0) * sp.log(y)
    assert rebuild.substitute_in_turn(expr, [(x + 1, a), (sp.exp(y), b)]) is expr


def test_library_formulas_reshare_as_substitute_does():
    # Each binding's inlined value taken back out of the inlined formula, latest binding first
    # (as plan.py re-shares): values nested in one another, some gone once an outer one is out.
    changed = 0
    for name in library.names():
        bindings, result = stable_form(library.compile(name).symbolic)
        definitions = {
            symbol: value for _, symbol, value in bindings if symbol is not None
        }
        shared = [
            (rebuild.inlined(value, definitions), symbol)
            for symbol, value in definitions.items()
        ]
        shared = [
            (value, symbol) for value, symbol in reversed(shared) if not value.is_Atom
        ]
        inline_result = rebuild.inlined(result, definitions)
        got = rebuild.substitute_in_turn(inline_result, shared)
        assert sp.srepr(got) == sp.srepr(in_turn(inline_result, shared)), name
        changed += got != inline_result
    assert changed >= 8


def test_cse_of_a_where_of_many_comparisons_holds_them_inert_and_finds_what_sympy_finds(
    monkeypatch,
):
    # Rebuilding a `where` of a compound condition evaluated each comparison again, with assumption
    # queries: 368 of them took 8 s in python_source() (found by fuzzing). Past
    # MAX_EVALUATED_COMPARISONS they go through cse inert, and come back as they were.
    from lossdsl import symfuncs as sf
    from lossdsl.symbolic import Y_PRED, Y_TRUE

    count = rebuild.MAX_EVALUATED_COMPARISONS + 8
    parts = [sp.Gt(sp.exp(-Y_PRED * k), k, evaluate=False) for k in range(1, count + 1)]
    where = sf.Where((Y_PRED * Y_TRUE, sp.And(*parts)), (-Y_PRED, True))
    exprs = [where + sp.exp(-Y_PRED * 3), where * 2]
    evaluated = []
    real = sp.StrictGreaterThan._eval_relation.__func__

    def counting(cls, lhs, rhs, **options):
        evaluated.append(lhs)
        return real(cls, lhs, rhs, **options)

    monkeypatch.setattr(sp.StrictGreaterThan, "_eval_relation", classmethod(counting))
    ours = rebuild.cse(exprs, symbols=sp.numbered_symbols("t"))
    assert evaluated == []  # held inert
    monkeypatch.undo()
    theirs = sp.cse(exprs, symbols=sp.numbered_symbols("t"))
    assert sp.srepr(ours) == sp.srepr(theirs)
    assert ours[0] and not ours[1][0].has(
        sp.Gt
    )  # the where is shared, its comparisons in it


def test_a_node_s_sympy_form_is_computed_once():
    # The jump check asks for the node above each `where` (the whole loss, for a sum of them): each
    # ask substituted the bindings again (0.5 s for a 60-term binding read by 61 `where`s; fuzzing).
    import dataclasses

    from lossdsl import symbolic as sym

    spec = lossdsl.compile(
        "a = e^2 + e^3\nwhere(a > 1, y_pred, 1) + where(a > 2, y_pred, 2)"
    )
    loss = spec.symbolic
    result = loss.resolved.result
    first = sym.node_expr(loss, result)
    assert sym.node_expr(loss, result) is first and loss.node_forms[id(result)] is first
    assert dataclasses.replace(loss).node_forms == {}  # a copy starts afresh
