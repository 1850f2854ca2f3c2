"""The tables of LANGUAGE.md, row by row, checked numerically.

Each row compiles a program and evaluates `spec.expr` (in the public symbols
`Symbol("y_true")`, `Symbol("y_pred")` and the parameters) at sample points,
against a reference written here with `math`. Reductions, vector functions,
`onehot` and list literals stay as SymPy functions (lossdsl.symfuncs): their
rows check the structure, the numbers of each function's elementwise
argument, and the numbers of the expression around them.
"""

from __future__ import annotations

import math

import pytest
import sympy

import lossdsl
from lossdsl import symfuncs as sf

T = sympy.Symbol("y_true")
P = sympy.Symbol("y_pred")

# (y_true, y_pred) sample points: generic reals; a unit-interval set for log/sqrt/arcsin.
POINTS = [(0.3, 0.7), (1.5, -0.4), (-2.0, 0.9), (0.8, 0.1), (-0.6, -1.7), (2.25, 1.25)]
UNIT = [(0.3, 0.7), (1.0, 0.2), (0.0, 0.95), (0.5, 0.5), (0.9, 0.05)]
# Points on and around comparison boundaries (y_true == y_pred, y_pred == 0).
EDGES = [
    (0.5, 0.5),
    (0.3, 0.7),
    (0.7, 0.3),
    (0.0, 0.0),
    (-1.0, 0.0),
    (1.0, -1.0),
    (-0.5, 0.25),
]


def value(expr: sympy.Basic, t: float, p: float, **params: float) -> float:
    """`expr` at y_true=t, y_pred=p and the given parameters, as a float."""
    subs = {T: sympy.Float(t), P: sympy.Float(p)}
    subs.update({sympy.Symbol(k): sympy.Float(v) for k, v in params.items()})
    result = sympy.N(expr.subs(subs), 30)
    return float(result)


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def assert_matches(expr, ref, points, **params):
    for t, p in points:
        got = value(expr, t, p, **params)
        want = ref(t, p, **params) if params else ref(t, p)
        assert close(got, want), (
            f"at y_true={t}, y_pred={p}, {params}: got {got}, want {want} ({expr})"
        )


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def round_half_even(x: float) -> float:
    return float(round(x))


# ----------------------------------------------------------------- operators and precedence

OPERATORS = [
    ("add", "y_true + y_pred", lambda t, p: t + p),
    ("sub", "y_true - y_pred", lambda t, p: t - p),
    ("mul", "y_true * y_pred", lambda t, p: t * p),
    ("div", "y_true / y_pred", lambda t, p: t / p),
    ("pow-caret", "y_pred ^ 3", lambda t, p: p**3),
    ("pow-stars", "y_pred ** 3", lambda t, p: p**3),
    ("pow-caret-and-stars-mix", "2 ** 3 ^ y_pred", lambda t, p: 2 ** (3**p)),
    ("unary-minus", "-y_pred", lambda t, p: -p),
    ("unary-plus", "+y_pred", lambda t, p: p),
    ("double-minus", "- -y_pred", lambda t, p: p),
    ("mixed-signs", "+-+y_pred", lambda t, p: -p),
    ("minus-looser-than-power", "-y_pred^2", lambda t, p: -(p**2)),
    ("minus-looser-than-stars", "-y_pred**2", lambda t, p: -(p**2)),
    ("minus-in-exponent", "2^-y_pred", lambda t, p: 2 ** (-p)),
    (
        "minus-in-exponent-nested",
        "abs(y_true)^2^-1 * y_pred",
        lambda t, p: abs(t) ** 0.5 * p,
    ),
    ("power-right-assoc", "2^3^y_pred", lambda t, p: 2 ** (3**p)),
    ("power-right-assoc-folded", "2^3^2 * y_pred", lambda t, p: 512 * p),
    ("power-tighter-than-mul", "2 * y_pred ^ 2", lambda t, p: 2 * p**2),
    ("power-tighter-than-div", "y_true / y_pred ^ 2", lambda t, p: t / p**2),
    ("minus-looser-than-mul-of-power", "-y_pred^2 * y_true", lambda t, p: -(p**2) * t),
    ("paren-base", "(-y_pred)^3", lambda t, p: (-p) ** 3),
    ("paren-base-even", "(-y_pred)^2", lambda t, p: p**2),
    ("sub-left-assoc", "y_true - y_pred - 1", lambda t, p: (t - p) - 1),
    ("div-left-assoc", "y_true / y_pred / 4", lambda t, p: (t / p) / 4),
    ("div-then-mul", "y_pred / 2 * y_true", lambda t, p: (p / 2) * t),
    ("mul-tighter-than-sub", "y_true - y_pred * 2", lambda t, p: t - p * 2),
    ("parens-override", "(y_true - y_pred) * 2", lambda t, p: (t - p) * 2),
    ("mul-by-negated", "y_true * -y_pred", lambda t, p: t * -p),
    ("div-by-negated", "y_true / -y_pred", lambda t, p: t / -p),
    ("sub-negated", "y_pred - -y_true", lambda t, p: p + t),
    (
        "long-chain",
        "y_true + y_pred * 3 - y_pred / 2 + 1",
        lambda t, p: t + p * 3 - p / 2 + 1,
    ),
    ("nested-parens", "((y_true) - ((y_pred)))", lambda t, p: t - p),
    ("e", "e", lambda t, p: t - p),
    ("e-expr", "e^2 / 2", lambda t, p: (t - p) ** 2 / 2),
    ("pi", "pi * y_pred", lambda t, p: math.pi * p),
    ("eps", "y_pred + eps", lambda t, p: p + 1e-7),
    ("whitespace-free", "y_true*y_pred^2-y_pred", lambda t, p: t * p**2 - p),
]


@pytest.mark.parametrize(
    "src, ref", [r[1:] for r in OPERATORS], ids=[r[0] for r in OPERATORS]
)
def test_operators_and_precedence(src, ref):
    expr = lossdsl.compile(src).expr
    assert isinstance(expr, sympy.Expr)
    assert_matches(expr, ref, POINTS)


# ----------------------------------------------------------------- conditions in where

CONDITIONS = [
    ("lt", "where(y_pred < y_true, y_pred, -y_pred)", lambda t, p: p if p < t else -p),
    (
        "le",
        "where(y_pred <= y_true, y_pred, -y_pred)",
        lambda t, p: p if p <= t else -p,
    ),
    ("gt", "where(y_pred > y_true, y_pred, -y_pred)", lambda t, p: p if p > t else -p),
    (
        "ge",
        "where(y_pred >= y_true, y_pred, -y_pred)",
        lambda t, p: p if p >= t else -p,
    ),
    (
        "eq",
        "where(y_pred == y_true, y_pred, -y_pred)",
        lambda t, p: p if p == t else -p,
    ),
    (
        "ne",
        "where(y_pred != y_true, y_pred, -y_pred)",
        lambda t, p: p if p != t else -p,
    ),
    (
        "and",
        "where(y_pred > 0 and y_true > 0, y_pred, 2 * y_pred)",
        lambda t, p: p if p > 0 and t > 0 else 2 * p,
    ),
    (
        "or",
        "where(y_pred > 0 or y_true > 0, y_pred, 2 * y_pred)",
        lambda t, p: p if p > 0 or t > 0 else 2 * p,
    ),
    (
        "not",
        "where(not y_pred > 0, y_pred, 2 * y_pred)",
        lambda t, p: p if not p > 0 else 2 * p,
    ),
    (
        "not-not",
        "where(not not y_pred > 0, y_pred, 2 * y_pred)",
        lambda t, p: p if p > 0 else 2 * p,
    ),
    (
        "and-tighter-than-or",
        "where(y_pred > 0 or y_true > 0 and y_pred < -0.5, y_pred, 2 * y_pred)",
        lambda t, p: p if (p > 0) or (t > 0 and p < -0.5) else 2 * p,
    ),
    (
        "not-tighter-than-or",
        "where(not y_pred > 0 or y_true > 0, y_pred, 2 * y_pred)",
        lambda t, p: p if (not p > 0) or (t > 0) else 2 * p,
    ),
    (
        "not-tighter-than-and",
        "where(not y_pred > 0 and y_true < 0, y_pred, 2 * y_pred)",
        lambda t, p: p if (not p > 0) and (t < 0) else 2 * p,
    ),
    (
        "parenthesised-condition",
        "where((y_pred > 0 or y_true > 0) and y_pred < 0.5, y_pred, 2 * y_pred)",
        lambda t, p: p if (p > 0 or t > 0) and p < 0.5 else 2 * p,
    ),
    (
        "comparison-looser-than-arithmetic",
        "where(y_pred + 1 > y_true * 2, y_pred, 2 * y_pred)",
        lambda t, p: p if p + 1 > t * 2 else 2 * p,
    ),
    (
        "condition-binding",
        "big = abs(e) > 1\nwhere(big, abs(e), e^2)",
        lambda t, p: abs(t - p) if abs(t - p) > 1 else (t - p) ** 2,
    ),
    (
        "negated-condition-binding",
        "c = y_pred > 0; where(not c, y_pred, -y_pred)",
        lambda t, p: p if not p > 0 else -p,
    ),
    (
        "condition-binding-joined",
        "c = y_pred > 0; d = y_true > 0\nwhere(c and d, y_pred, 0)",
        lambda t, p: p if p > 0 and t > 0 else 0.0,
    ),
    (
        "where-in-arithmetic",
        "1 + 2 * where(y_pred > 0, y_pred, 0)",
        lambda t, p: 1 + 2 * (p if p > 0 else 0.0),
    ),
    (
        "nested-where",
        "where(y_pred > 0, where(y_true > 0, y_pred, 2 * y_pred), 3 * y_pred)",
        lambda t, p: (p if t > 0 else 2 * p) if p > 0 else 3 * p,
    ),
]


@pytest.mark.parametrize(
    "src, ref", [r[1:] for r in CONDITIONS], ids=[r[0] for r in CONDITIONS]
)
def test_conditions(src, ref):
    expr = lossdsl.compile(src).expr
    assert isinstance(expr, sympy.Expr)
    assert_matches(expr, ref, EDGES + POINTS)


def test_a_where_in_expr_is_sympys_own_piecewise():
    # Inside, a `where` is lossdsl's Piecewise subclass (a power of it stays a power of it); the
    # public form is SymPy's own, so it equals the expression a user builds (found by a review).
    expr = lossdsl.compile("where(y_pred > 0, y_pred, 0) + y_true").expr
    assert expr == sympy.Piecewise((P, P > 0), (0, True)) + T
    assert all(type(p) is sympy.Piecewise for p in expr.atoms(sympy.Piecewise))
    assert sympy.sympify(sympy.srepr(expr)) == expr
    root = lossdsl.compile("sqrt(where(y_pred > 0, y_pred, 1))").expr
    assert root == sympy.sqrt(sympy.Piecewise((P, P > 0), (1, True)), evaluate=False)
    assert root.subs({P: 4, T: 0}) == 2 and root.subs({P: -1, T: 0}) == 1


# ----------------------------------------------------------------- numbers

NUMBERS = [
    ("1", 1.0),
    ("0.5", 0.5),
    (".5", 0.5),
    ("1.", 1.0),
    ("1e-3", 1e-3),
    ("1E3", 1e3),
    ("2.5E+2", 250.0),
    ("2.5e-2", 0.025),
    (".5e1", 5.0),
    ("007", 7.0),
    ("123456789", 123456789.0),
    ("0.1", 0.1),
]


@pytest.mark.parametrize("text, number", NUMBERS, ids=[n[0] for n in NUMBERS])
def test_number_forms(text, number):
    expr = lossdsl.compile(f"{text} * y_pred").expr
    assert_matches(expr, lambda t, p: number * p, POINTS)


def test_integer_literals_are_exact():
    # 1/3 stays the exact rational; 1.0/3 is a float.
    assert lossdsl.compile("1/3 * y_pred").expr == sympy.Rational(1, 3) * P
    assert value(lossdsl.compile("1.0/3 * y_pred").expr, 0, 3.0) == pytest.approx(1.0)


# ----------------------------------------------------------------- elementwise functions

ELEMENTWISE = [
    ("abs", "abs(e)", lambda t, p: abs(t - p), POINTS),
    ("exp", "exp(y_pred)", lambda t, p: math.exp(p), POINTS),
    ("log", "log(y_pred)", lambda t, p: math.log(p), UNIT),
    ("log1p", "log1p(y_pred)", lambda t, p: math.log1p(p), POINTS[:4] + UNIT),
    ("expm1", "expm1(y_pred)", lambda t, p: math.expm1(p), POINTS),
    ("sqrt", "sqrt(y_pred)", lambda t, p: math.sqrt(p), UNIT),
    ("square", "square(e)", lambda t, p: (t - p) ** 2, POINTS),
    ("sin", "sin(y_pred)", lambda t, p: math.sin(p), POINTS),
    ("cos", "cos(y_pred)", lambda t, p: math.cos(p), POINTS),
    ("tan", "tan(y_pred)", lambda t, p: math.tan(p), POINTS),
    ("sinh", "sinh(y_pred)", lambda t, p: math.sinh(p), POINTS),
    ("cosh", "cosh(y_pred)", lambda t, p: math.cosh(p), POINTS),
    ("tanh", "tanh(y_pred)", lambda t, p: math.tanh(p), POINTS),
    ("arcsin", "arcsin(y_pred)", lambda t, p: math.asin(p), UNIT),
    ("arccos", "arccos(y_pred)", lambda t, p: math.acos(p), UNIT),
    ("arctan", "arctan(y_pred)", lambda t, p: math.atan(p), POINTS),
    ("erf", "erf(y_pred)", lambda t, p: math.erf(p), POINTS),
    ("sigmoid", "sigmoid(y_pred)", lambda t, p: sigmoid(p), POINTS),
    ("softplus", "softplus(y_pred)", lambda t, p: softplus(p), POINTS),
    ("relu", "relu(y_pred)", lambda t, p: max(p, 0.0), POINTS + EDGES),
    (
        "clip",
        "clip(y_pred, -0.5, 0.5)",
        lambda t, p: min(max(p, -0.5), 0.5),
        POINTS + EDGES,
    ),
    (
        "clip-by-inputs",
        "clip(y_pred, y_true - 1, y_true + 1)",
        lambda t, p: min(max(p, t - 1), t + 1),
        POINTS,
    ),
    ("pow", "pow(y_pred, 3)", lambda t, p: p**3, POINTS),
    (
        "pow-varying",
        "pow(abs(y_true) + 1, y_pred)",
        lambda t, p: (abs(t) + 1) ** p,
        POINTS,
    ),
    ("maximum", "maximum(y_pred, y_true)", lambda t, p: max(p, t), POINTS + EDGES),
    ("minimum", "minimum(y_pred, y_true)", lambda t, p: min(p, t), POINTS + EDGES),
    ("max-2", "max(y_pred, y_true)", lambda t, p: max(p, t), POINTS + EDGES),
    ("max-3", "max(y_pred, y_true, 0.5)", lambda t, p: max(p, t, 0.5), POINTS + EDGES),
    (
        "max-4",
        "max(y_pred, -y_pred, y_true, 2 * y_true)",
        lambda t, p: max(p, -p, t, 2 * t),
        POINTS,
    ),
    ("min-2", "min(y_pred, y_true)", lambda t, p: min(p, t), POINTS + EDGES),
    ("min-3", "min(y_pred, y_true, 0.5)", lambda t, p: min(p, t, 0.5), POINTS + EDGES),
    # Step functions are rejected as dead terms of y_pred; applied to y_true they compute.
    (
        "sign",
        "sign(y_true) * y_pred",
        lambda t, p: ((t > 0) - (t < 0)) * p,
        EDGES + POINTS,
    ),
    (
        "floor",
        "floor(y_true) * y_pred",
        lambda t, p: math.floor(t) * p,
        POINTS + [(2.0, 1.0), (-2.5, 1.0)],
    ),
    (
        "ceil",
        "ceil(y_true) * y_pred",
        lambda t, p: math.ceil(t) * p,
        POINTS + [(2.0, 1.0), (-2.5, 1.0)],
    ),
    (
        "round-half-even",
        "round(y_true) * y_pred",
        lambda t, p: round_half_even(t) * p,
        POINTS
        + [(2.5, 1.0), (1.5, 1.0), (0.5, 1.0), (-0.5, 1.0), (-2.5, 1.0), (0.49, 1.0)],
    ),
    (
        "composed",
        "log(cosh(e)) + sqrt(square(e) + 1)",
        lambda t, p: math.log(math.cosh(t - p)) + math.sqrt((t - p) ** 2 + 1),
        POINTS,
    ),
    (
        "seed",
        "abs(e)*0.5*(1+abs(e))",
        lambda t, p: abs(t - p) * 0.5 * (1 + abs(t - p)),
        POINTS,
    ),
]


@pytest.mark.parametrize(
    "src, ref, points", [r[1:] for r in ELEMENTWISE], ids=[r[0] for r in ELEMENTWISE]
)
def test_elementwise_functions(src, ref, points):
    spec = lossdsl.compile(src)
    assert isinstance(spec.expr, sympy.Expr)
    assert not spec.per_sample
    assert_matches(spec.expr, ref, points)


def test_elementwise_table_covers_every_function():
    documented = (
        "abs exp log log1p expm1 sqrt square sin cos tan sinh cosh tanh arcsin arccos arctan erf"
        " sigmoid softplus relu clip pow maximum minimum max min sign floor ceil round"
    ).split()
    covered = {row[1].split("(")[0] for row in ELEMENTWISE}
    assert set(documented) <= covered


CONSTANT_CALLS = [
    ("exp(1)", math.e),
    ("log(2)", math.log(2)),
    ("sqrt(2)", math.sqrt(2)),
    ("sigmoid(0)", 0.5),
    ("softplus(0)", math.log(2)),
    ("relu(-3) + relu(2)", 2.0),
    ("clip(5, 0, 1)", 1.0),
    ("max(1, 3, 2)", 3.0),
    ("min(1, 3, 2)", 1.0),
    ("maximum(-1, -2)", -1.0),
    ("pow(2, 10)", 1024.0),
    ("sign(-3)", -1.0),
    ("floor(-2.5)", -3.0),
    ("ceil(2.1)", 3.0),
    ("round(2.5)", 2.0),
    ("round(3.5)", 4.0),
    ("abs(-4)", 4.0),
    ("arctan(1)", math.pi / 4),
    ("erf(0.5)", math.erf(0.5)),
    ("log1p(1e-10)", math.log1p(1e-10)),
    ("expm1(1e-10)", math.expm1(1e-10)),
    ("cosh(1) - sinh(1)", math.exp(-1)),
    ("tan(0.5)", math.tan(0.5)),
    ("arcsin(0.5) + arccos(0.5)", math.pi / 2),
    ("square(-3)", 9.0),
    ("clip(5, 0, pi)", math.pi),
    ("sigmoid(pi) + 1 / (1 + exp(pi))", 1.0),
    ("round(pi) + relu(-pi)", 3.0),
    ("softplus(pi / 2)", math.log1p(math.exp(math.pi / 2))),
    ("2^10", 1024.0),
    ("2^0.5", math.sqrt(2)),
    ("-2^2", -4.0),
    ("(-2)^2", 4.0),
    ("10^-2", 0.01),
]


@pytest.mark.parametrize(
    "const, number", CONSTANT_CALLS, ids=[c[0] for c in CONSTANT_CALLS]
)
def test_constant_arguments_fold(const, number):
    expr = lossdsl.compile(f"({const}) * y_pred").expr
    assert expr.free_symbols == {P}
    assert_matches(expr, lambda t, p: number * p, POINTS)


# Comparisons of constants with pi, decided as NumPy decides them, on float64 numbers. SymPy compared
# pi exactly with a folded float: abs(pi) folds to the float nearest pi, just below pi, so
# `abs(pi) >= pi` was False, and a binding (`k = abs(pi)`, compared in the code at run time) gave
# another loss than the same formula written inline.
PI_COMPARISONS = [
    ("abs(pi) >= pi", True),
    ("y_true + abs(pi) >= y_true + pi", True),
    ("k = abs(pi)\ny_true + k >= y_true + pi", True),
    ("pi - abs(pi) == 0", True),
    ("pi / 4 == 0.7853981633974483", True),
    ("2 * pi > 6.283185307179586", False),
    ("clip(pi, 0, 4) < pi", False),
    ("0.1 <= 1 / 10", True),
    ("y_pred + 1 > y_pred + pi", False),
    ("where(y_true > 0.5, abs(pi), y_pred) < pi", "a where"),
]


@pytest.mark.parametrize(
    "condition, numpy", PI_COMPARISONS, ids=[c[0] for c in PI_COMPARISONS]
)
def test_a_comparison_with_pi_is_decided_on_float64_numbers(condition, numpy):
    *bindings, cond = condition.split("\n")
    program = "\n".join([*bindings, f"where({cond}, y_true / y_pred, exp(y_pred))"])
    expr = lossdsl.compile(program).expr
    if numpy == "a where":
        # folded: where y_true > 0.5, the condition is abs(pi) < pi, False in float64
        assert_matches(
            expr,
            lambda t, p: t / p if (t <= 0.5 and p < math.pi) else math.exp(p),
            POINTS,
        )
        return
    assert expr == (T / P if numpy else sympy.exp(P))


@pytest.mark.parametrize(
    "program, folded",
    [
        ("maximum(exp(y_pred), 0) * y_true", sympy.exp(P) * T),  # exp > 0
        ("minimum(0.5, y_pred^2 + 1) * y_pred", 0.5 * P),
        ("maximum(-1, -y_pred^2 - 2) * y_pred", -P),
        ("minimum(y_pred^2, -0.5) * y_pred", -0.5 * P),
        (
            "maximum(1 - y_true * y_pred, 0)",
            sympy.Max(1 - T * P, 0, evaluate=False),
        ),  # undecided
        ("minimum(y_pred, 2)", sympy.Min(P, 2, evaluate=False)),
    ],
)
def test_maximum_of_a_value_known_to_lie_on_one_side_of_a_number_is_that_side(
    program, folded
):
    # Two assumptions queries decide it, as SymPy's Max would (in 1.5-6 ms of pairwise comparisons).
    expr = lossdsl.compile(program).expr
    assert expr == folded
    assert type(expr) is type(folded) and expr.args == folded.args


# ----------------------------------------------------------------- reductions, vector functions, onehot, lists

R = sympy.symbols("r0:4")
# Values the tensor functions (replaced by r0, r1, ...) take in the numeric checks.
RS = (0.25, -1.5, 2.0, 0.75)
R_VALUES = {r: sympy.Float(v) for r, v in zip(R, RS, strict=True)}


def _unwrap(expr, classes):
    """Replace the one instance of each class (innermost first) by r0, r1, ...; return the instances and the rest."""
    found = []
    for i, cls in enumerate(classes):
        instances = list(expr.atoms(cls))
        assert len(instances) == 1, (
            f"expected one {cls.__name__} in {expr}, found {instances}"
        )
        found.append(instances[0])
        expr = expr.xreplace({instances[0]: R[i]})
    return found, expr


TENSOR_ROWS = [
    # (id, program, classes innermost first, [reference of each instance's argument], reference of the rest,
    #  per_sample)
    (
        "sum",
        "sum(e^2)",
        [sf.ReduceSum],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "mean",
        "mean(abs(e))",
        [sf.ReduceMean],
        [lambda t, p, r: abs(t - p)],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "max-1",
        "max(e^2)",
        [sf.ReduceMax],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "min-1",
        "min(e^2)",
        [sf.ReduceMin],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "logsumexp",
        "logsumexp(y_pred)",
        [sf.LogSumExp],
        [lambda t, p, r: p],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "rmse",
        "sqrt(mean(e^2))",
        [sf.ReduceMean],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: math.sqrt(r[0]),
        True,
    ),
    (
        "scaled-mean",
        "2 * mean(e^2) + 1",
        [sf.ReduceMean],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: 2 * r[0] + 1,
        True,
    ),
    (
        "broadcast-back",
        "(e^2 - mean(e^2))^2",  # (its implicit mean without the square is 0: no dependence on y_pred)
        [sf.ReduceMean],
        [lambda t, p, r: (t - p) ** 2],
        lambda t, p, r: ((t - p) ** 2 - r[0]) ** 2,
        False,
    ),
    (
        "softmax",
        "softmax(y_pred) * y_true",
        [sf.Softmax],
        [lambda t, p, r: p],
        lambda t, p, r: r[0] * t,
        False,
    ),
    (
        "log_softmax",
        "-sum(y_true * log_softmax(y_pred))",
        [sf.LogSoftmax, sf.ReduceSum],
        [lambda t, p, r: p, lambda t, p, r: t * r[0]],
        lambda t, p, r: -r[1],
        True,
    ),
    (
        "normalize",
        "sum(normalize(y_true) * normalize(y_pred))",
        [sf.ReduceSum],
        [None],
        lambda t, p, r: r[0],
        True,
    ),
    (
        "onehot",
        "-sum(onehot(y_true) * log_softmax(y_pred))",
        [sf.OneHot, sf.LogSoftmax, sf.ReduceSum],
        [lambda t, p, r: t, lambda t, p, r: p, lambda t, p, r: r[0] * r[1]],
        lambda t, p, r: -r[2],
        True,
    ),
    (
        "onehot-elementwise",
        "onehot(y_true) * (y_pred - 1)^2",
        [sf.OneHot],
        [lambda t, p, r: t],
        lambda t, p, r: r[0] * (p - 1) ** 2,
        False,
    ),
    (
        "list",
        "[0.3, 0.7] * e^2",
        [sf.Vector],
        [None],
        lambda t, p, r: r[0] * (t - p) ** 2,
        False,
    ),
    (
        "list-in-mean",
        "mean([1, 2, 3] * abs(e))",
        [sf.Vector, sf.ReduceMean],
        [None, lambda t, p, r: r[0] * abs(t - p)],
        lambda t, p, r: r[1],
        True,
    ),
    (
        "sum-of-list-times-sample",
        "sum(e^2) * [1, 2]",
        [sf.ReduceSum, sf.Vector],
        [lambda t, p, r: (t - p) ** 2, None],
        lambda t, p, r: r[0] * r[1],
        False,
    ),
    (
        "logsumexp-minus-sum",
        "logsumexp(y_pred) - sum(y_true * y_pred)",
        [sf.LogSumExp, sf.ReduceSum],
        [lambda t, p, r: p, lambda t, p, r: t * p],
        lambda t, p, r: r[0] - r[1],
        True,
    ),
]


@pytest.mark.parametrize(
    "src, classes, arg_refs, rest_ref, per_sample",
    [r[1:] for r in TENSOR_ROWS],
    ids=[r[0] for r in TENSOR_ROWS],
)
def test_tensor_functions(src, classes, arg_refs, rest_ref, per_sample):
    spec = lossdsl.compile(src)
    assert isinstance(spec.expr, sympy.Expr)
    assert spec.per_sample is per_sample
    instances, rest = _unwrap(spec.expr, classes)
    for inst, ref, cls in zip(instances, arg_refs, classes, strict=True):
        assert isinstance(inst, cls)
        if ref is None:
            continue
        assert len(inst.args) == 1
        arg = inst.args[0].xreplace(R_VALUES)
        for t, p in POINTS:
            assert close(value(arg, t, p), ref(t, p, RS)), (src, inst, t, p)
    rest = rest.xreplace(R_VALUES)
    for t, p in POINTS:
        assert close(value(rest, t, p), rest_ref(t, p, RS)), (src, rest, t, p)


def test_constant_tensors_compare_with_elements():
    # sum([1, 2]) is a constant but no SymPy number: max() must take it as it is.
    spec = lossdsl.compile("max(sum([1, 2]), y_pred) + minimum([0.5, 1], y_true)")
    assert {v.args for v in spec.expr.atoms(sf.Vector)} == {(1, 2), (0.5, 1)}
    (total, vector), rest = _unwrap(spec.expr, [sf.ReduceSum, sf.Vector])
    assert total.args == (sf.Vector(1, 2),) and vector.args == (0.5, 1)
    rest = rest.xreplace(
        {R[0]: sympy.Integer(3), R[1]: sympy.Float(0.75)}
    )  # the sum, one entry of the list
    for t, p in POINTS:
        assert close(value(rest, t, p), max(3, p) + min(0.75, t))


def test_normalize_structure():
    expr = lossdsl.compile("sum(normalize(y_true) * normalize(y_pred))").expr
    assert {n.args[0] for n in expr.atoms(sf.Normalize)} == {T, P}


LISTS = [
    ("[0.3, 0.7] * e^2", [0.3, 0.7]),
    ("[-1, 2.5, .5] * y_pred", [-1.0, 2.5, 0.5]),
    ("[1/2, 2^2, -(3)] * y_pred", [0.5, 4.0, -3.0]),
    ("[exp(0), sqrt(4)] * y_pred", [1.0, 2.0]),
    ("[pi, eps] * y_pred", [math.pi, 1e-7]),
    ("[2] * y_pred", [2.0]),
    ("[\n  0.25,\n  0.75\n] * y_pred", [0.25, 0.75]),
]


@pytest.mark.parametrize("src, items", LISTS, ids=[s for s, _ in LISTS])
def test_list_literals(src, items):
    expr = lossdsl.compile(src).expr
    (vector,), _ = _unwrap(expr, [sf.Vector])
    assert [float(sympy.N(a)) for a in vector.args] == pytest.approx(items, rel=1e-12)


def test_list_literal_holds_parameters():
    spec = lossdsl.compile("param w = 2\nmean([w, 1 - w] * e^2)")
    (vector, _), _ = _unwrap(spec.expr, [sf.Vector, sf.ReduceMean])
    assert vector.args[0] == sympy.Symbol(
        "w"
    )  # a parameter stays a symbol inside the list
    assert [value(a, 0, 0, w=3.0) for a in vector.args] == [3.0, -2.0]
    assert spec.params == {"w": 2.0}


# ----------------------------------------------------------------- statement forms

STATEMENTS = [
    ("semicolons", "a = e; b = a^2; b / 2", lambda t, p: (t - p) ** 2 / 2),
    ("newlines", "a = e\nb = a^2\nb / 2", lambda t, p: (t - p) ** 2 / 2),
    (
        "blank-lines-and-indent",
        "\n\n   a = e\n\n\t b = a^2  \n\n  b / 2\n\n",
        lambda t, p: (t - p) ** 2 / 2,
    ),
    ("crlf", "a = e\r\nb = a^2\r\n\r\nb / 2\r\n", lambda t, p: (t - p) ** 2 / 2),
    (
        "mixed-separators",
        "a = e;\n;b = a^2 ;;\n\nb / 2;",
        lambda t, p: (t - p) ** 2 / 2,
    ),
    ("trailing-comment", "e^2  # the squared error", lambda t, p: (t - p) ** 2),
    (
        "comment-lines-between",
        "a = e  # error\n# a comment line\nb = a * 3 # tripled\nb^2",
        lambda t, p: (3 * (t - p)) ** 2,
    ),
    ("call-over-lines", "maximum(\n  y_pred,\n  y_true\n)", lambda t, p: max(p, t)),
    (
        "operator-over-lines-in-parens",
        "(y_true\n - y_pred\n)^2",
        lambda t, p: (t - p) ** 2,
    ),
    (
        "binding-used-twice",
        "a = abs(e)\na * (1 + a)",
        lambda t, p: abs(t - p) * (1 + abs(t - p)),
    ),
    (
        "binding-of-binding",
        "a = e\nb = a * 2\nc = b + a\nc^2",
        lambda t, p: (3 * (t - p)) ** 2,
    ),
    ("rebind-e", "e = y_pred - y_true\ne^2 + e", lambda t, p: (p - t) ** 2 + (p - t)),
    (
        "rebind-eps",
        "eps = 0.01\nsqrt(e^2 + eps)",
        lambda t, p: math.sqrt((t - p) ** 2 + 0.01),
    ),
    (
        "names-with-digits",
        "a1 = e; a_2 = a1^2; A3 = a_2 + 1; A3",
        lambda t, p: (t - p) ** 2 + 1,
    ),
    (
        "keyword-prefixed-names",
        "param2 = e; android = param2^2; notable = android; notable",
        lambda t, p: (t - p) ** 2,
    ),
    ("tabs", "a\t=\te\n\ta^2", lambda t, p: (t - p) ** 2),
]


@pytest.mark.parametrize(
    "src, ref", [r[1:] for r in STATEMENTS], ids=[r[0] for r in STATEMENTS]
)
def test_statement_forms(src, ref):
    spec = lossdsl.compile(src)
    assert spec.source == src
    assert_matches(spec.expr, ref, POINTS)


DESCRIPTIONS = [
    ("# Huber loss.\nparam delta = 1.0\nabs(e)", "Huber loss."),
    ("# Huber loss.\n# Quadratic near 0.\nabs(e)", "Huber loss.\nQuadratic near 0."),
    ("\n\n# After blank lines\nabs(e)", "After blank lines"),
    ("#no space\nabs(e)", "no space"),
    ("  # indented\nabs(e)", "indented"),
    ("abs(e)  # not a description", ""),
    ("abs(e)", ""),
    ("a = abs(e)\n# later comment\na", ""),
    # LANGUAGE.md: blank lines carry no meaning, so they neither end nor break the description
    ("# first\n\n# second block\nabs(e)", "first\nsecond block"),
    ("\n# first\n  \n\n# second\n\nabs(e)", "first\nsecond"),
    ("# first\n#\n# second paragraph\nabs(e)", "first\n\nsecond paragraph"),
]


@pytest.mark.parametrize("src, description", DESCRIPTIONS)
def test_description_is_the_leading_comment_block(src, description):
    assert lossdsl.compile(src).description == description


PARAMS = [
    (
        "param delta = 1.0\ndelta * abs(e)",
        {"delta": 1.0},
        lambda t, p, delta: delta * abs(t - p),
    ),
    ("param b = -0.5\nb * e^2", {"b": -0.5}, lambda t, p, b: b * (t - p) ** 2),
    ("param b = +2\nb * e^2", {"b": 2.0}, lambda t, p, b: b * (t - p) ** 2),
    ("param k = 3\ne^2 * k", {"k": 3.0}, lambda t, p, k: (t - p) ** 2 * k),
    (
        "param small = 1e-3\nsqrt(e^2 + small)",
        {"small": 1e-3},
        lambda t, p, small: math.sqrt((t - p) ** 2 + small),
    ),
    (
        "param eps = 0.001\nsqrt(e^2 + eps)",
        {"eps": 0.001},
        lambda t, p, eps: math.sqrt((t - p) ** 2 + eps),
    ),
    (
        "param a = 1; param b = 2\na * y_pred + b * y_true",
        {"a": 1.0, "b": 2.0},
        lambda t, p, a, b: a * p + b * t,
    ),
    (
        "# Huber loss.\nparam delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))",
        {"delta": 1.0},
        lambda t, p, delta: (
            0.5 * (t - p) ** 2
            if abs(t - p) <= delta
            else delta * (abs(t - p) - 0.5 * delta)
        ),
    ),
]


def test_params_is_a_copy_of_the_compiled_defaults():
    # a changed `spec.params` changed the default python_source() wrote next, and a value that was not
    # a number made it a LossInternalError (a contract review): each read is a new dict
    spec = lossdsl.compile("param delta = 1.0\ndelta * e^2")
    spec.params["delta"] = "x"
    spec.params["other"] = 2.0
    assert spec.params == {"delta": 1.0}
    assert "delta=1.0," in spec.python_source()


@pytest.mark.parametrize(
    "src, params, ref", PARAMS, ids=[p[0].splitlines()[0] for p in PARAMS]
)
def test_params(src, params, ref):
    spec = lossdsl.compile(src)
    assert spec.params == params
    assert all(type(v) is float for v in spec.params.values())
    assert {s.name for s in spec.expr.free_symbols} - {"y_true", "y_pred"} == set(
        params
    )
    # At the defaults and at other values: the parameters stay symbols in expr.
    for values in (params, {k: v * 1.7 + 0.3 for k, v in params.items()}):
        assert_matches(spec.expr, ref, POINTS, **values)


# ----------------------------------------------------------------- the per-sample rule

PER_SAMPLE = [
    ("e^2", False),
    ("abs(e)", False),
    ("mean(e^2)", True),
    ("sum(e^2) + 1", True),
    ("sqrt(mean(e^2))", True),
    ("param a = 2\na * mean(e^2)", True),
    ("m = mean(e^2)\nm + 1", True),
    ("mean(e^2) + sum(abs(e))", True),
    ("e^2 + mean(e^2)", False),
    ("mean(e^2) * [1, 2]", False),
    ("max(e^2)", True),
    ("max(e^2, 0)", False),
    ("logsumexp(y_pred) - sum(y_true * y_pred)", True),
    ("softmax(y_pred) * y_true", False),
    ("-sum(onehot(y_true) * log_softmax(y_pred))", True),
    ("where(mean(e) > 0, mean(e^2), sum(e^2))", True),
    ("where(mean(e) > 0, e^2, sum(e^2))", False),
    ("[0.5, 2] * e^2", False),
    ("sum([0.5, 2] * e^2)", True),
    # A condition joined with `and`/`not` has the shape of its comparisons.
    ("sum(where(y_true > 0 and y_true < 1, 1, 0)) * mean(e^2)", True),
    ("where(not mean(e) > 0, mean(e^2), sum(e^2))", True),
]


@pytest.mark.parametrize("src, per_sample", PER_SAMPLE)
def test_per_sample_rule(src, per_sample):
    assert lossdsl.compile(src).per_sample is per_sample


# ----------------------------------------------------------------- gradient


def finite_difference(expr, t, p, h=1e-6, **params):
    return (value(expr, t, p + h, **params) - value(expr, t, p - h, **params)) / (2 * h)


GRADIENT_FD = [
    "e^2",
    "abs(e)*0.5*(1+abs(e))",
    "log(cosh(e))",
    "sqrt(e^2 + eps)",
    "sigmoid(y_pred) * y_true",
    "softplus(-y_true * y_pred)",
    "relu(y_pred - y_true)^2",
    "y_true * log1p(exp(y_pred)) + expm1(y_pred / 4)",
    "erf(y_pred) + arctan(e) + tanh(2 * y_pred)",
    "-(y_true*log(sigmoid(y_pred)) + (1-y_true)*log(1-sigmoid(y_pred)))",
    "maximum(y_pred, y_true)^2 + minimum(y_pred, 0.5 * y_true)",
    "where(abs(e) < 1, 0.5 * e^2, abs(e) - 0.5)",
    "param delta = 1.5\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))",
    "pow(y_pred^2 + 1, 0.75) * sin(y_pred) / (cos(y_pred)^2 + 1)",
    "clip(y_pred, -1, 1) * y_true",
]


@pytest.mark.parametrize("src", GRADIENT_FD)
def test_gradient_matches_finite_difference(src):
    spec = lossdsl.compile(src)
    grad = spec.gradient()
    assert isinstance(grad, sympy.Expr)
    assert grad.free_symbols <= {T, P, *map(sympy.Symbol, spec.params)}
    points = [(0.3, 0.7), (1.5, -0.4), (-2.0, 0.9), (0.8, 0.1), (2.25, 1.4)]
    for t, p in points:
        fd = finite_difference(spec.expr, t, p, **spec.params)
        got = value(grad, t, p, **spec.params)
        assert math.isclose(got, fd, rel_tol=1e-5, abs_tol=1e-7), (src, t, p, got, fd)


GRADIENT_HAND = [
    ("e^2", lambda t, p: -2 * (t - p)),
    ("abs(e)", lambda t, p: -math.copysign(1.0, t - p)),
    ("param a = 3\na * y_pred^2", lambda t, p: 6 * p),
    ("sigmoid(y_pred)", lambda t, p: sigmoid(p) * (1 - sigmoid(p))),
    ("softplus(y_pred)", lambda t, p: sigmoid(p)),
    ("log(cosh(e))", lambda t, p: -math.tanh(t - p)),
    ("sum(e^2)", lambda t, p: -2 * (t - p)),
]


@pytest.mark.parametrize("src, ref", GRADIENT_HAND, ids=[g[0] for g in GRADIENT_HAND])
def test_gradient_hand_derived(src, ref):
    spec = lossdsl.compile(src)
    grad = spec.gradient()
    for t, p in POINTS:
        got = value(grad, t, p, **spec.params)
        assert math.isclose(got, ref(t, p), rel_tol=1e-9, abs_tol=1e-12), (src, t, p)


def test_gradient_of_mean_divides_by_the_axis_size():
    grad = lossdsl.compile("mean(e^2)").gradient()
    assert grad.free_symbols == {T, P, sf.C}
    for t, p in POINTS:
        got = float(sympy.N(grad.subs({T: t, P: p, sf.C: 4})))
        assert math.isclose(got, -2 * (t - p) / 4, rel_tol=1e-12)


def test_gradient_of_logsumexp_is_softmax():
    grad = lossdsl.compile("logsumexp(y_pred)").gradient()
    (lse,), rest = _unwrap(grad, [sf.LogSumExp])
    assert lse.args == (P,)
    for t, p in POINTS:
        got = float(sympy.N(rest.subs({T: t, P: p, R[0]: 1.25})))
        assert math.isclose(got, math.exp(p - 1.25), rel_tol=1e-12)


def test_gradient_through_parameters():
    spec = lossdsl.compile("param delta = 2.0\ndelta * e^2")
    grad = spec.gradient()
    for t, p in POINTS:
        assert math.isclose(
            value(grad, t, p, delta=0.5), -2 * 0.5 * (t - p), rel_tol=1e-12
        )


# ----------------------------------------------------------------- the public surface of a compile


def test_compiled_loss_attributes():
    src = "# Huber loss.\nparam delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))"
    spec = lossdsl.compile(src, name="Huber")
    assert spec.name == "Huber"
    assert spec.source == src
    assert spec.description == "Huber loss."
    assert spec.params == {"delta": 1.0}
    assert isinstance(spec.expr, sympy.Expr)
    assert spec.expr.free_symbols == {T, P, sympy.Symbol("delta")}
    assert all(isinstance(d, lossdsl.Diagnostic) for d in spec.diagnostics)
    assert all(d.level in ("error", "warning", "note") for d in spec.diagnostics)
    assert not any(d.level == "error" for d in spec.diagnostics)


def test_default_name():
    assert lossdsl.compile("abs(e)").name == "FormulaLoss"


def test_relu_is_max_once_substituted():
    expr = lossdsl.compile("relu(y_pred)").expr
    assert expr.subs(P, -2) == 0
    assert expr.subs(P, 3) == 3


@pytest.mark.parametrize(
    "source, kept, at_nan_target",
    [
        ("where(y_true != y_true, 0, e^2)", "Ne(y_true, y_true)", 0.0),
        ("where(e == e, e^2, 0)", "Eq(-y_pred + y_true, -y_pred + y_true)", 0.0),
        (
            "where(not (y_pred != y_pred), e^2, 0)",
            "Eq(y_pred, y_pred)",
            math.nan,
        ),  # y_pred is no NaN
        (
            "where(2*y_true != y_true*2, 0, e^2)",
            "Ne(y_true, y_true)",
            0.0,
        ),  # 2x is NaN where x is
        (
            "where(y_true <= y_true, e^2, 0)",
            "Eq(y_true, y_true)",
            0.0,
        ),  # False at NaN, as `==` is
        ("where(e >= e, e^2, 0)", "Eq(-y_pred + y_true, -y_pred + y_true)", 0.0),
    ],
)
def test_a_value_compared_with_itself_keeps_the_comparison(source, kept, at_nan_target):
    # `x != x` holds where x is NaN (NumPy's NaN test), `x == x` where it is not: SymPy decides
    # both before any value is seen. The comparison stays, a relational that prints as SymPy's and
    # that NumPy's printer writes as a comparison of the value with itself.
    expr = lossdsl.compile(source).expr
    (condition,) = [c for _, c in expr.args if c is not sympy.true]
    assert (
        isinstance(condition, sympy.core.relational.Relational)
        and str(condition) == kept
    )
    assert expr.subs({T: 0.5, P: 0.25}) == 0.0625
    masked = sympy.lambdify((T, P), expr, "math")
    assert math.isclose(masked(math.nan, 0.25), at_nan_target) or math.isnan(
        at_nan_target
    )
    assert math.isnan(masked(math.nan, 0.25)) is math.isnan(at_nan_target)
    assert masked(0.5, 0.25) == 0.0625


def test_a_condition_that_reads_a_masked_value_is_not_decided():
    # SymPy's ITE takes an `Eq` or `Ne` of one distinct argument for a comparison of booleans and
    # decided `ITE(Ne(t, t), False, t > 0.5)` as False: the loss below was abs(e) everywhere, on
    # data with no NaN too (the change review).
    expr = lossdsl.compile(
        "where(where(y_true != y_true, 0, y_true) > 0.5, e^2, abs(e))"
    ).expr
    for t, p in [(0.7, 0.9), (0.2, 0.1), (-0.3, 0.4), (2.0, 0.1)]:
        assert close(value(expr, t, p), (t - p) ** 2 if t > 0.5 else abs(t - p))
    kept = lossdsl.compile(
        "t = where(y_true != y_true, 0, y_true)\nwhere(t > 0.5, (t - y_pred)^2, 0)"
    )
    assert close(value(kept.expr, 0.7, 0.9), 0.04) and close(
        value(kept.expr, 0.2, 0.9), 0.0
    )


@pytest.mark.parametrize(
    "source, folded",
    [
        ("where(pi != pi, y_pred, 2*y_pred)", 2 * P),  # a number is never NaN
        ("where(y_true < y_true, y_pred, 2*y_pred)", 2 * P),  # False, NaN or not
        (
            "where(y_true != y_true or y_true == y_true, y_pred, 2*y_pred)",
            P,
        ),  # True, NaN or not
        (
            "where(y_true != y_true and y_true == y_true, y_pred, 2*y_pred)",
            2 * P,
        ),  # False, NaN or not
        ("where(not (y_true > y_true), y_pred, 2*y_pred)", P),  # True, NaN or not
        ("where(not (pi < 3), y_pred, 2*y_pred)", P),  # no NaN test of a number
    ],
)
def test_a_comparison_with_itself_folds_where_nan_does_not_change_it(source, folded):
    assert lossdsl.compile(source).expr == folded


def test_not_of_not_is_the_condition_itself():
    # `not (a < b)` is kept as `not` of the ordering; its negation is the ordering again
    assert lossdsl.compile(
        "where(not not (y_pred > 0), y_pred, 0)"
    ).expr == sympy.Piecewise((P, P > 0), (0, True))
    once = lossdsl.compile("where(not (y_pred > 0), y_pred, 0)").expr
    assert (
        lossdsl.compile("where(" + "not " * 101 + "y_pred > 0, y_pred, 0)").expr == once
    )
    assert str(once.args[0].cond) == "~(y_pred > 0)"
    # `and` and `or` stay whole under `not`, sharing their parts with the condition itself: negated
    # term by term, twelve levels of `c1 = not (c0 or ...) or not (c0 and ...)` took 10 s (a review)
    kept = lossdsl.compile(
        "c = y_pred > 0.5 and y_true > 0\nwhere(not c, e^2, abs(e)) + where(c, y_pred, 0)"
    ).expr
    conditions = {
        piece.cond
        for term in kept.args
        for piece in term.args
        if piece.cond is not sympy.true
    }
    assert conditions == {
        sympy.And(P > 0.5, T > 0),
        sympy.Not(sympy.And(P > 0.5, T > 0)),
    }


def _where_chain(t: float, p: float) -> float:
    a = p if t > 0 else 0.0
    b = a if t > 1 else 1.0
    c = b if t > 2 else 2.0
    return (t - p) ** 2 if not c < 0.5 else abs(t - p)


_WHERE_CHAIN = "a = where(y_true > 0, y_pred, 0)\nb = where(y_true > 1, a, 1)\nc = where(y_true > 2, b, 2)\n"


@pytest.mark.parametrize(
    "source, reference",
    [
        (
            "where(not (y_true >= 0), 0, e^2)",
            lambda t, p: 0.0 if not t >= 0 else (t - p) ** 2,
        ),
        (
            "where(not (y_true < 0.5), e^2, 0)",
            lambda t, p: (t - p) ** 2 if not t < 0.5 else 0.0,
        ),
        (
            "c = y_pred > y_true\nwhere(not c, 2*e, -e)",
            lambda t, p: 2 * (t - p) if not p > t else p - t,
        ),
        (
            "where(not (e > 0 or y_true < -1), 0, y_pred^2)",
            lambda t, p: 0.0 if not (t - p > 0 or t < -1) else p * p,
        ),
        (
            "where(not (e > 0 and y_true < 1), 0, y_pred^2)",
            lambda t, p: 0.0 if not (t - p > 0 and t < 1) else p * p,
        ),
        (
            "where(not not (y_true < 0.5), e^2, 0)",
            lambda t, p: (t - p) ** 2 if t < 0.5 else 0.0,
        ),
        (
            "where(not (y_true <= y_true), 0, y_pred^2)",
            lambda t, p: 0.0 if not t <= t else p * p,
        ),
        (
            "where(not (not (y_pred < y_true) or y_true > 1), y_pred, -y_pred)",
            lambda t, p: p if p < t and not t > 1 else -p,
        ),
        (
            "where(not (y_pred >= 0 or y_pred != y_pred or y_true > 2), 1, y_pred)",
            lambda t, p: 1.0 if p < 0 and not t > 2 else p,
        ),
        # A first version wrote `not (c < 0.5)` as `c >= 0.5 or c != c`, which holds `c`, three
        # nested `where`s, three times: 512 cases once folded, past the limit of 64 (a review)
        (_WHERE_CHAIN + "where(not (c < 0.5), e^2, abs(e))", _where_chain),
    ],
)
def test_not_of_an_ordering_holds_where_a_side_is_nan(source, reference):
    # `not (a < b)` is True where a or b is NaN, as NumPy's `~(a < b)`; SymPy's negation `a >= b`
    # is False there: `where(not (y_true >= 0), 0, e^2)` read the NaN label it meant to leave out.
    expr = lossdsl.compile(source).expr
    computed = sympy.lambdify((T, P), expr, "math")
    points = [
        (math.nan, 0.25),
        (0.3, math.nan),
        (math.nan, math.nan),
        (0.7, 0.25),
        (-2.0, 0.1),
        (0.1, 0.4),
    ]
    for t, p in points + [
        (3.0, 0.2),
        (3.0, 0.7),
        (1.5, 0.2),
        (-1.0, 0.3),
        (3.0, math.nan),
    ]:
        got, want = computed(t, p), reference(t, p)
        assert math.isnan(got) is math.isnan(want), (t, p, got, want)
        assert math.isnan(want) or close(got, want), (t, p, got, want)


def test_a_value_compared_with_itself_or_unequal_to_itself_is_always_true():
    # `x >= x` is `x == x` (False only at NaN), so `x >= x or x != x` holds everywhere: the loss is
    # the constant 3 (a first version kept `x >= x` apart, and only warned that it looked constant)
    with pytest.raises(lossdsl.NoPredictionDependenceError):
        lossdsl.compile("where(y_pred >= y_pred or y_pred != y_pred, 3, y_pred)")
    assert (
        lossdsl.compile("where([0.1, 0.5] >= [0.1, 0.5], y_pred, 0)").expr == P
    )  # a list is never NaN
