"""Check: the loss depends on `y_pred`.

Judged on SymPy's canonical form, in which `y_pred - y_pred` has already
cancelled, and for a small polynomial in y_pred on its expansion, where
`(y_pred + 1)^2 - y_pred^2 - 2 y_pred` cancels too: an error. An identity
SymPy does not apply (`sin(2 y_pred) - 2 sin(y_pred) cos(y_pred)`) is found by
evaluating the loss at y_pred from -1e9 to 1e9: the same value at every point
is a warning, not an error, since a loss flat at any finite set of points may
still depend on y_pred (`where(y_pred > 1e10, y_pred, 0)`); an error again
where that is proved, by a derivative SymPy writes as 0 (`sin(y_pred)^2 +
cos(y_pred)^2`) or by the loss written in exponentials and absolute values
(`sigmoid(y_pred) + sigmoid(-y_pred)`).

The loss judged is the per-sample one: a sum or mean over the last axis is
taken term by term, and a softmax sums to 1 over it, so `y_pred - mean(y_pred)`
(whose implicit mean is 0) and `softmax(y_pred)` (1/C) are errors too; a loss
over the last axis is evaluated on rows of values.
"""

from __future__ import annotations

import contextlib
import math

import sympy as sp

from lossdsl import nodes, rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.numeric import Unsupported, compiled, compiled_rows
from lossdsl.errors import Diagnostic, LossError
from lossdsl.rewrites import inlined_code_form, reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss

# The reason an identity gives (`run_checks` lets a dead term's error, which names the step or the
# flat piece, stand in its place).
IDENTITY = "its derivative with respect to y_pred is exactly 0"
# Steps, whose derivative SymPy writes as 0: a loss read through them is a dead term's error.
_STEPS = (sp.sign, sp.floor, sp.ceiling, sf.Round)

# Expanded only up to this many nodes and this power: (a + b + c)^n has (n + 1)(n + 2)/2 terms.
MAX_EXPANDED_NODES = 200
MAX_EXPANDED_POWER = 12


def check_dependence(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """An error when the loss does not depend on y_pred; a warning when it looks constant."""
    result = resolved.result
    in_code, identity = True, None
    written = Y_PRED in subtrees.free_symbols(symbolic.core)
    per_sample = written and Y_PRED in subtrees.free_symbols(
        _per_sample_split(symbolic)
    )
    if (
        per_sample
        and not _cancels_when_expanded(symbolic.core)
        and not _cancels_as_a_fraction(symbolic.core)
    ):
        in_code = _code_reads_pred(symbolic)
        if in_code and not _looks_constant(symbolic):
            return []
        if in_code:
            # (a loss that reads y_pred only through steps is a dead term's error, which names the step)
            # (and one with a `where` or a step whose pieces SymPy folds: `where(y_pred > 1e10, 1, 2)`)
            identity = (
                resolved.of(result).live
                and not symbolic.core.has(sp.Piecewise, *_STEPS)
                and _differentiates_to_zero(symbolic)
            )
            if not identity:
                return [_looks_constant_warning(resolved, symbolic)]
    mentioned = resolved.of(result).pred
    summed = None if written else _summed_softmax(resolved)
    reason = (
        "y_pred does not appear in it"
        if not mentioned
        else "its mean over the last axis does not change with y_pred: a softmax sums to 1 there"
        if written and not per_sample and symbolic.core.has(sf.Softmax)
        else f"a softmax sums to 1 over the last axis: `{resolved.text(summed)}` is"
        f" {'1' if summed.func == 'sum' else '1/C (C the length of the last axis)'} whatever y_pred is"
        if summed is not None
        else f"{IDENTITY}, an identity such as `sin(x)^2 + cos(x)^2 = 1`"
        if identity == "derivative"
        else f"{IDENTITY}: rewritten by exact identities it is constant, as"
        " `sigmoid(x) + sigmoid(-x) = 1` and `max(x - max(x)) = 0` are"
        if identity
        else _how_it_cancels(resolved)
        if in_code
        else "its terms in y_pred cancel once the code writes them in their stable forms:"
        " `log(1 + x)` as `log1p(x)`, `log(sigmoid(x))` as `-softplus(-x)`, ..."
    )
    return [
        Diagnostic.at(
            "error",
            "no-prediction",
            f"the loss does not depend on y_pred ({reason}), so training cannot move the predictions",
            result.span,
            resolved.source,
        )
    ]


def _how_it_cancels(resolved: Resolved) -> str:
    """Why a loss that mentions y_pred has none left, in the words that fit how it is written: terms
    of a sum or factors of a product that read y_pred, or (`abs(e)^0`, `y_pred * 0`) a
    simplification, where nothing cancels."""
    counts = {"add": 0, "mul": 0}
    for node in resolved.parts_reading_pred(resolved.result):
        if _zero_factor(node):
            return "it simplifies to a value that does not change with y_pred"  # (whatever it multiplies)
        if isinstance(node, nodes.Chain):
            reading = sum(resolved.of(operand).pred for operand in node.operands)
            counts[node.kind] = max(counts[node.kind], reading)
    if counts["add"] >= 2:
        return "its terms in y_pred cancel"
    if counts["mul"] >= 2:
        return "its factors in y_pred cancel"
    return "it simplifies to a value that does not change with y_pred"


def _zero_factor(node: nodes.Node) -> bool:
    """A product with the number 0 among its factors, or a power to the number 0."""
    if isinstance(node, nodes.Chain) and node.kind == "mul":
        return any(isinstance(o, nodes.Number) and o.value == 0 for o in node.operands)
    return (
        isinstance(node, nodes.Power)
        and isinstance(node.exponent, nodes.Number)
        and node.exponent.value == 0
    )


def _summed_softmax(resolved: Resolved) -> nodes.Call | None:
    """The first `sum` or `mean` of the program whose argument is a `softmax` (directly or through
    a binding): SymPy folds it to 1 or 1/C, so the loss has no y_pred left for that reason."""
    for node in resolved.parts_reading_pred(resolved.result):
        if (
            isinstance(node, nodes.Call)
            and node.func in ("sum", "mean")
            and len(node.args) == 1
        ):
            argument = node.args[0]
            if isinstance(argument, nodes.Name):
                argument = resolved.binding_value(argument) or argument
            if isinstance(argument, nodes.Call) and argument.func == "softmax":
                return node
    return None


def _code_reads_pred(symbolic: SymbolicLoss) -> bool:
    """Whether the loss as the code computes it reads y_pred: through the bindings of the stable
    form, and on the inlined stable form, where two spellings of one function cancel through any
    bindings (`a = log(1 + y_pred)`, `b = log1p(y_pred)`, `a - b`: the code reads `b` from `a`'s
    local, and it was always 0). Each may show a cancellation the other does not: inlined, SymPy
    may have taken a sign out of an `abs` (`1 - exp(x) + expm1(x)`, which no rewrite matches)."""
    if not _stable_form_reads_pred(symbolic):
        return False
    form = inlined_code_form(
        symbolic
    )  # (it may match fewer forms: SymPy takes a sign out of `abs`)
    return form is None or Y_PRED in subtrees.free_symbols(form)


def _stable_form_reads_pred(symbolic: SymbolicLoss) -> bool:
    """Whether the loss as the code computes it, after the stable rewrites (rewrites.py), reads
    y_pred, through its bindings: an identity SymPy does not apply may cancel there
    (`softplus(x) - softplus(-x) - x`, as the code computes `softplus(-x)` from `softplus(x) - x`;
    `log(1 + y_pred) - log1p(y_pred)`, two spellings of one function, which the numeric probe
    finds apart by a rounding), and then the code has no y_pred to read. (Followed, not inlined:
    a chain of bindings inlined is a tree SymPy rebuilds at each level, seconds for 160 nested
    `cos`.)"""
    statements, result = reshared_stable_form(symbolic)  # as the emitter re-shares them
    reading = {Y_PRED}
    for _, symbol, value in statements:
        if value.free_symbols & reading:
            reading.add(symbol)
    return bool(result.free_symbols & reading)


def _differentiates_to_zero(symbolic: SymbolicLoss) -> str | None:
    """The loss's derivative with respect to y_pred is 0 as SymPy writes it, or the loss written in
    exponentials and absolute values has no y_pred (`_constant_in_exponentials`): a proof that a
    loss which looks constant (`_looks_constant`) is (`sin(y_pred)^2 + cos(y_pred)^2`, `cosh^2 -
    sinh^2`, `sigmoid(y_pred) + sigmoid(-y_pred)`), where the probe alone leaves a warning. Asked
    only of such a loss, small by then. Which proof holds ("derivative", "exponentials"), or
    None."""
    if _strictly_monotone_chain(symbolic.core):
        return None
    try:
        if symbolic.derivative() == 0:
            return "derivative"
    except LossError:
        pass
    return "exponentials" if _constant_in_exponentials(symbolic.core) else None


def _constant_in_exponentials(core: sp.Expr) -> bool:
    """Whether `core`, rewritten by exact identities, holds no y_pred: each head as plain SymPy
    (`sigmoid(x)` as `1 / (1 + exp(-x))`), `tanh`, `sinh` and `cosh` in exponentials, a
    `log_softmax(x)` as `x - logsumexp(x)`, a two-argument `max(a, b)` as `(a + b + |a - b|) / 2`
    (and `min`), `logsumexp(x + c)` as `logsumexp(x) + c` for `c` one value per sample; then,
    where y_pred is left only in exponentials `exp(k y_pred + c)` of whole `k`, each as `t^k
    exp(c)` for `t = exp(y_pred)`, each fraction of polynomials in `t` cancelled. The identities
    SymPy's derivative leaves uncancelled: `sigmoid(y_pred) + sigmoid(-y_pred)` (1),
    `relu(y_pred) - relu(-y_pred) - y_pred` (0), `cosh(y_pred) - sinh(y_pred) - exp(-y_pred)`,
    `log_softmax(y_pred) - y_pred + logsumexp(y_pred)`, `logsumexp(log_softmax(y_pred))` (a
    conformance review: each was a "looks constant" warning where the spec has an error)."""
    if subtrees.size(core, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
        return False
    form = rebuild.plain(core)
    # (a `tanh` in exponentials holds its argument four times: nested, 4^n nodes, and a nest of
    # ten took minutes; the change review)
    if _rewritten_size(form, {}) > MAX_REWRITTEN_NODES:
        return False
    # Each float as a symbol of its own, one for each value: cancelled in floats, a term below
    # the rounding of the rest vanished (`1e20 + sigmoid(y_pred) * sigmoid(-y_pred)` was "proved"
    # constant; the change review), and as the exact rational it holds, SymPy's evaluation took
    # `cosh(y_pred^(1e-7))`'s sign through polynomials in its 17-digit denominator until memory
    # ran out. A symbol cancels only against itself, or its negative: `0.3 sigmoid(x) + 0.3
    # sigmoid(-x)` is 0.3. SymPy spreads a number over a sum, not a symbol: such a symbol is
    # spread below as the number would be (`0.1 relu(x) - 0.1 relu(-x) - 0.1 x` was a warning).
    magnitudes: dict[float, sp.Dummy] = {}

    def symbol_for(value: float) -> sp.Expr:
        if value == 0 or not math.isfinite(value):
            return sp.Float(value)
        symbol = magnitudes.setdefault(abs(value), sp.Dummy("c", positive=True))
        return symbol if value > 0 else -symbol

    form = form.xreplace({f: symbol_for(float(f)) for f in form.atoms(sp.Float)})
    form = form.replace(
        lambda x: isinstance(x, (sp.tanh, sp.sinh, sp.cosh)),
        lambda x: x.rewrite(sp.exp),
    ).replace(
        lambda x: isinstance(x, sf.LogSoftmax) and len(x.args) == 1,
        lambda x: x.args[0] - sf.LogSumExp(x.args[0]),
    )
    form = form.replace(
        lambda x: isinstance(x, _SHIFTABLE) and isinstance(x.args[0], sp.Add),
        _shifts_out,
    )
    form = form.replace(
        lambda x: isinstance(x, (sp.Max, sp.Min)) and len(x.args) == 2,
        _as_absolute_values,
    )
    form = _coefficients_spread(form, set(magnitudes.values()))
    if Y_PRED not in subtrees.free_symbols(form):
        return True
    t = sp.Dummy("t", positive=True)
    powers = {}
    for power in subtrees.atoms(form, sp.exp):
        constant, scaled = sp.expand(power.args[0]).as_independent(Y_PRED, as_Add=True)
        k = scaled / Y_PRED
        if not (k.is_Integer and abs(k) <= MAX_EXPANDED_POWER):
            if Y_PRED in subtrees.free_symbols(power):
                return False  # y_pred in an exponent other than `k y_pred`
            continue
        powers[power] = t**k * sp.exp(constant)
    in_t = form.xreplace(powers)
    if Y_PRED in subtrees.free_symbols(in_t):
        return False
    return t not in _cancelled(in_t, t).free_symbols


def _cancelled(expr: sp.Basic, t: sp.Symbol) -> sp.Basic:
    """`expr` with each largest part that is a small fraction of polynomials in `t` cancelled
    (`sum(y_true * (1 / (1 + 1/t) + 1 / (1 + t)))` is `sum(y_true)`)."""
    if t not in expr.free_symbols:
        return expr
    if isinstance(expr, sp.Expr) and expr.is_rational_function(t):
        return (
            sp.cancel(expr) if _fraction_degree(expr) <= MAX_FRACTION_DEGREE else expr
        )
    return expr.func(*(_cancelled(arg, t) for arg in expr.args)) if expr.args else expr


# The largest loss, in nodes, that `_constant_in_exponentials` rewrites.
MAX_REWRITTEN_NODES = 800
_COPIES = {sp.tanh: 4, sp.sinh: 2, sp.cosh: 2, sp.Max: 2, sp.Min: 2, sf.LogSoftmax: 2}


def _rewritten_size(expr: sp.Basic, memo: dict) -> int:
    """A bound on the nodes of `expr` rewritten as `_constant_in_exponentials` does: a `tanh`'s
    argument four times over, a `sinh`'s, `cosh`'s, `log_softmax`'s or two-argument `max`'s or
    `min`'s twice; past MAX_REWRITTEN_NODES, just past it."""
    if not expr.args:
        return 1
    if expr in memo:
        return memo[expr]
    inner = sum(_rewritten_size(arg, memo) for arg in expr.args)
    copies = _COPIES.get(type(expr), 1)
    if copies > 1 and isinstance(expr, (sp.Max, sp.Min)) and len(expr.args) != 2:
        copies = 1
    size = min(copies * inner + 4, MAX_REWRITTEN_NODES + 1)
    memo[expr] = size
    return size


def _coefficients_spread(expr: sp.Basic, coefficients: set) -> sp.Basic:
    """`expr` with each product of numbers and `coefficients` (the floats' symbols) and one sum
    written as a sum, the factor on each term, as SymPy writes a number times a sum: `c (x +
    |x|) / 2 - c x` is `c |x| / 2 - c x / 2`. (Only those products: multiplying out every
    product took minutes on products of a dozen sums of sigmoids, and made fractions of a degree
    that `_cancelled` no longer takes on; a review.)"""

    def spreads(node: sp.Basic) -> bool:
        if not isinstance(node, sp.Mul):
            return False
        sums = [f for f in node.args if isinstance(f, sp.Add)]
        return len(sums) == 1 and all(
            f.is_Number or f in coefficients for f in node.args if f is not sums[0]
        )

    def spread(node: sp.Mul) -> sp.Expr:
        (total,) = [f for f in node.args if isinstance(f, sp.Add)]
        factor = sp.Mul(*(f for f in node.args if f is not total))
        return sp.Add(*(factor * term for term in total.args))

    return expr.replace(spreads, spread)


# The reductions that a shift by one value per sample passes through.
_SHIFTABLE = (sf.LogSumExp, sf.ReduceMax, sf.ReduceMin)


def _shifts_out(reduction: sp.Basic) -> sp.Expr:
    """`logsumexp(x + c)` as `logsumexp(x) + c`, and `max` and `min` over the axis likewise, for
    the terms `c` of the argument that are one value per sample (a number, a reduction):
    `logsumexp(y_pred - logsumexp(y_pred))` and `max(y_pred - max(y_pred))` are 0."""
    shifts, rest = [], []
    for term in reduction.args[0].args:
        (shifts if term.is_number or sf.one_per_sample(term) else rest).append(term)
    if not shifts or not rest:
        return reduction
    return reduction.func(sp.Add(*rest)) + sp.Add(*shifts)


def _as_absolute_values(extreme: sp.Basic) -> sp.Expr:
    a, b = extreme.args
    sign = 1 if isinstance(extreme, sp.Max) else -1
    return (a + b + sign * sp.Abs(a - b)) / 2


# Functions of one argument that are strictly monotone in it, whose derivative SymPy writes as a
# product of factors none of which is 0 (`exp(x)`, `1/x`, `sigmoid(x)`, `sigmoid(x) (1 - sigmoid(x))`).
_MONOTONE = (sp.exp, sp.log, sf.Softplus, sf.Sigmoid)
_INFINITE = (sp.S.Infinity, sp.S.NegativeInfinity, sp.S.ComplexInfinity, sp.S.NaN)


def _strictly_monotone_chain(expr: sp.Basic) -> bool:
    """Whether `expr` reads y_pred along one path of parts each strictly monotone in the one
    argument that reads it: a sum with terms that do not read y_pred, a product with numbers, a
    power to a number, or one of `_MONOTONE`. Its derivative is then a product of factors none
    of which is 0 (the chain rule's at each part), which SymPy neither writes as 0 nor finds is 0
    (the function is not constant): `_differentiates_to_zero` is False without building it.
    (Nested powers over a base SymPy knows is positive, `(2 + (2 + exp(y_pred))^-0.5)^-0.5` 20
    levels deep, look constant to the probe, and building their derivative asks SymPy the sign of
    each sum, whose numerator and denominator it expands at each level: 10-30 s.)"""
    if expr.has(*_INFINITE):
        return False
    memo: dict = {}
    node = expr
    while node != Y_PRED:
        reading = [
            arg for arg in node.args if Y_PRED in subtrees.known_free_symbols(arg, memo)
        ]
        if len(reading) != 1:
            return False
        (arg,) = reading
        kind = type(node)
        if kind is sp.Mul:
            monotone = all(
                factor.is_Number and factor.is_zero is False
                for factor in node.args
                if factor is not arg
            )
        elif kind is sp.Pow:
            monotone = (
                arg is node.base and node.exp.is_Number and node.exp.is_zero is False
            )
        else:
            monotone = kind is sp.Add or kind in _MONOTONE
        if not monotone:
            return False
        node = arg
    return True


def _looks_constant_warning(resolved: Resolved, symbolic: SymbolicLoss) -> Diagnostic:
    result = resolved.result
    tried = "rows" if _over_axis(symbolic.core) else "values"
    return Diagnostic.at(
        "warning",
        "no-prediction",
        f"the loss has the same value at all {len(PROBE_PREDICTIONS)} {tried} of y_pred tried"
        " (from -1e9 to 1e9, for several y_true and parameter values): it looks constant in"
        " y_pred (terms that cancel?), so training cannot move the predictions",
        result.span,
        resolved.source,
    )


def _per_sample_split(symbolic: SymbolicLoss) -> sp.Expr:
    """The per-sample loss with each sum and mean over the last axis taken term by term (exact:
    they are linear), a factor constant along the axis taken out of it and a softmax's sum as 1;
    other operations as they are. An elementwise program's implicit mean is one of them."""
    core = symbolic.core
    if not _over_axis(core):
        return core  # one element's loss: its mean depends on y_pred where it does
    return _split(core) if symbolic.per_sample else _reduced(sf.ReduceMean, core)


def _over_axis(expr: sp.Basic) -> bool:
    return expr.has(sf.TensorFunction, sf.Vector)


def _split(expr: sp.Basic) -> sp.Basic:
    if isinstance(expr, (sf.ReduceSum, sf.ReduceMean)):
        return _reduced(type(expr), expr.args[0])
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)) and _over_axis(expr):
        return expr.func(*map(_split, expr.args))
    return expr


def _reduced(reduction: type, arg: sp.Expr) -> sp.Expr:
    """`reduction(arg)` over the last axis, split term by term."""
    terms = []
    for term in sp.Add.make_args(arg):
        outside, inside = [], []
        for factor in sp.Mul.make_args(term):
            if sf.varies_along_axis(factor, (Y_TRUE, Y_PRED)):
                inside.append(factor)
            else:
                outside.append(_split(factor))
        # the sum of a factor constant along the axis is C times it; a mean as a sum over C, so
        # that `sum(y_pred - mean(y_pred))` cancels (and a softmax sums to 1: `ReduceSum.eval`)
        value = sf.ReduceSum(_split(sp.Mul(*inside))) if inside else sf.C
        terms.append(
            sp.Mul(*outside, value if reduction is sf.ReduceSum else value / sf.C)
        )
    return sp.Add(*terms)


def _cancels_when_expanded(expr: sp.Basic) -> bool:
    """`expr` is a small polynomial in y_pred whose expansion does not hold y_pred."""
    if subtrees.size(expr, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
        return False
    if any(
        not (p.exp.is_Integer and 0 < p.exp <= MAX_EXPANDED_POWER)
        for p in subtrees.atoms(expr, sp.Pow)
    ):
        return False
    if not (isinstance(expr, sp.Expr) and expr.is_polynomial(Y_PRED)):
        return False
    if _expanded_terms(expr) > MAX_EXPANDED_TERMS:
        # A product of powers of sums (`(e + 1)^9 (y_true + y_pred + 5)^9 ...`) expands to
        # millions of terms (15 s for five factors): too large to be a cancellation anyone wrote.
        return False
    return (
        Y_PRED
        not in sp.expand(
            expr, power_base=False, power_exp=False, log=False
        ).free_symbols
    )


def _cancels_as_a_fraction(expr: sp.Basic) -> bool:
    """`expr`, or each part of it that is a small fraction of polynomials in y_pred, has no y_pred
    once that fraction is cancelled: `-e / e`, which SymPy holds as `(y_pred - y_true) / (y_true -
    y_pred)` (it cancels `e / e` itself), is -1 wherever it is defined, as `e / e` is 1, and so is
    `cos(-e / e)` cos(-1) (the code's common subexpressions made it so, and the autodiff module
    then had no y_pred to read; inside a function, found by a review of bad input)."""
    if subtrees.size(expr, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
        return False
    if _fraction_cancels(expr):
        return True
    # (each part replaced by its value: a stand-in 0 took a product or a power with it)
    cancelled = {
        part: sp.cancel(part)
        for part in subtrees.preorder(expr)
        if part is not expr
        and Y_PRED in subtrees.free_symbols(part)
        and _fraction_cancels(part)
    }
    return bool(cancelled) and Y_PRED not in expr.xreplace(cancelled).free_symbols


def _fraction_cancels(expr: sp.Basic) -> bool:
    """`expr` is a small fraction of polynomials in y_pred whose y_pred cancels."""
    powers = subtrees.atoms(expr, sp.Pow)
    if not any(p.exp.is_Integer and p.exp < 0 for p in powers):
        return False  # (no division: `_cancels_when_expanded`'s)
    if any(
        not (p.exp.is_Integer and 0 < abs(p.exp) <= MAX_EXPANDED_POWER) for p in powers
    ):
        return False
    if not (isinstance(expr, sp.Expr) and expr.is_rational_function(Y_PRED)):
        return False
    # (over one denominator first: `(2 + (2 + y_pred^2)^-2)^-2` nested 30 deep is 200 nodes, and
    # a polynomial of degree 2^31)
    if _fraction_degree(expr) > MAX_FRACTION_DEGREE:
        return False
    return Y_PRED not in sp.cancel(expr).free_symbols


MAX_FRACTION_DEGREE = 24


def _fraction_degree(expr: sp.Basic) -> int:
    """A bound on the degree, in all its symbols, of the numerator and the denominator of `expr`
    written over one denominator (a sum's terms each multiply the others' denominators)."""
    if isinstance(expr, (sp.Add, sp.Mul)):
        return sum(_fraction_degree(a) for a in expr.args)
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer:
        return min(abs(int(expr.exp)), MAX_FRACTION_DEGREE + 1) * _fraction_degree(
            expr.base
        )
    return 0 if expr.is_number else 1


MAX_EXPANDED_TERMS = 5_000


def _expanded_terms(expr: sp.Basic) -> int:
    """An upper bound on the number of terms of `expr` expanded (a sum's add, a product's
    multiply), past MAX_EXPANDED_TERMS reported as just past it."""
    if isinstance(expr, sp.Add):
        total = sum(_expanded_terms(a) for a in expr.args)
    elif isinstance(expr, sp.Mul):
        total = 1
        for a in expr.args:
            total *= _expanded_terms(a)
            if total > MAX_EXPANDED_TERMS:
                break
    elif isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        base = _expanded_terms(
            expr.base
        )  # (a_1 + ... + a_n)^k has at most C(n + k - 1, k) terms
        total = (
            math.comb(base + int(expr.exp) - 1, int(expr.exp))
            if base < MAX_EXPANDED_TERMS
            else base
        )
    else:
        total = 1
    return min(total, MAX_EXPANDED_TERMS + 1)


# The values of y_pred at which a loss is evaluated, for each of the y_true values and parameter
# shifts below; both signs, from far below 1 to far above, and the values of a probability.
PROBE_PREDICTIONS = tuple(
    sign * x
    for x in (
        0.0,
        1e-6,
        1e-3,
        0.1,
        0.25,
        0.5,
        0.75,
        0.9,
        0.999,
        1.0,
        1.5,
        2.0,
        3.0,
        7.0,
        30.0,
        1e3,
        1e6,
        1e9,
    )
    for sign in ((1.0,) if x == 0 else (1.0, -1.0))
)
PROBE_TRUES = (0.0, 1.0, 0.4, -1.3, 2.7)
# ... and each number the program holds (a parameter's default among them), and it plus and
# minus 0.5: a loss may be flat in y_pred except where y_true passes one (`where(y_true > 3, ...)`,
# `where(y_true == k, ...)`).
PROBE_OFFSETS = (0.0, 0.5, -0.5)
# A (y_true, parameters) pair shows a loss flat only with this many finite values.
MIN_FINITE = 3
PARAM_SHIFTS = (0.0, 0.37)
# A probe stops at the first two values that differ (at once for almost every loss); a loss that
# looks constant costs every point: at most this many node evaluations in all (a larger program
# that looks constant is not reported).
MAX_PROBE_EVALUATIONS = 100_000
# Values this close, relative to the largest of them and of the loss's terms, are the same value
# up to rounding (`softplus(x) - softplus(-x) - x` is 1.4e-15 off 0 at x = 30, with terms of 30);
# `1e13 + sigmoid(y_pred)` varies by 0.5, more than 1e-14 of 1e13.
SAME_VALUE = 1e-14
# Targets taken from the program's numbers and comparisons, at most (each costs a pass of the probe).
MAX_THRESHOLDS = 24


def _looks_constant(symbolic: SymbolicLoss) -> bool:
    """True if, for each y_true and parameter value tried, the loss has one value (up to rounding)
    at every y_pred in PROBE_PREDICTIONS where it is finite, and at MIN_FINITE of them at least
    for one of those. A loss over the last axis is evaluated per sample, on rows (`_row`).

    False too where the probe cannot tell: labels (`onehot`), no finite value, or a program too
    large to evaluate everywhere within MAX_PROBE_EVALUATIONS.
    """
    # as the code computes it (the stable forms): `log(exp(k) + exp(y_pred))` overflows float64 at
    # every y_pred tried past its kink at k = 100, its code's softplus does not (a review)
    expr = inlined_code_form(symbolic)
    if expr is None:
        expr = symbolic.core
    params = list(symbolic.params.values())
    rows = _over_axis(expr)
    if not expr.free_symbols <= {Y_TRUE, Y_PRED, *params, *([sf.C] if rows else [])}:
        return False
    size = subtrees.size(expr, MAX_PROBE_EVALUATIONS // 20)
    if size > MAX_PROBE_EVALUATIONS // 20:
        return False  # not even 20 points within the budget
    # (the terms and the bound below are made of the loss's parts: each part's closure is built once)
    memo: dict = {}
    if rows:
        length = _row_length(expr)
        size *= length  # each position of the row (a function over the axis once for the row)
        value_of = lambda e: compiled_rows(e, length, symbolic.per_sample, memo=memo)  # noqa: E731
        at = lambda x: _row(x, length)  # noqa: E731
    else:
        value_of, at = lambda e: compiled(e, memo=memo), lambda x: x  # noqa: E731
    budget = MAX_PROBE_EVALUATIONS
    value_at = value_of(expr)
    # Each term of the sum too: rounding scales with the largest of them (`100 sigmoid(x) +
    # 100 sigmoid(-x) - 100` is 100 times 1e-16 off 0).
    terms = (
        [value_of(term) for term in sp.Add.make_args(expr)]
        if isinstance(expr, sp.Add)
        else []
    )
    # ... and of every sum inside it, a product's or a reduction's (`sum(y_true * (sigmoid(x) +
    # sigmoid(-x)))` is 4e-14 of its value off constant where the row's elements cancel: passed)
    if isinstance(
        expr, (sp.Add, sp.Mul, sf.ReduceSum, sf.ReduceMean, sf.LogSumExp)
    ):  # (else the value's own)
        terms.append(value_of(_magnitude(expr)))
    size *= 1 + bool(terms) + (len(terms) > 1)
    defaults = [float(v) for v in symbolic.resolved.params.values()]
    env = {symbol: default for symbol, default in zip(params, defaults, strict=True)}
    # (an elementwise loss that does not read y_true, or has no parameter, is probed once over
    # y_pred, not once for each y_true or shift: `0.1 (relu(x) - relu(-x) - x) + 0.2 (sigmoid(x)
    # + sigmoid(-x))`, 18 nodes, spent the budget on y_true values it never read. Not a loss over
    # the axis: there the budget keeps the rows' false alarms in check, a `min` over a row whose
    # elements move apart always meeting one of them below eps, say; a digest of fuzzed programs)
    trues = (
        sorted(
            {
                *PROBE_TRUES,
                *(t + d for t in _thresholds(expr, env) for d in PROBE_OFFSETS),
            }
        )
        if Y_TRUE in expr.free_symbols or rows
        else [PROBE_TRUES[0]]
    )
    flat = False
    try:
        for shift in PARAM_SHIFTS if params or rows else PARAM_SHIFTS[:1]:
            env = {
                symbol: default + shift
                for symbol, default in zip(params, defaults, strict=True)
            }
            for y_true in trues:
                env[Y_TRUE] = at(y_true)
                first, finite = None, 0
                for y_pred in PROBE_PREDICTIONS:
                    env[Y_PRED] = at(y_pred)
                    budget -= size
                    if budget < 0:
                        return False
                    value = value_at(env)
                    if not math.isfinite(value):
                        continue
                    finite += 1
                    scale = max([abs(value), *(abs(term(env)) for term in terms)])
                    if first is None:
                        first, first_scale = value, scale
                    elif abs(value - first) > SAME_VALUE * max(
                        scale, first_scale, abs(first)
                    ):
                        return False
                flat = flat or finite >= MIN_FINITE
    except Unsupported:
        return False
    return flat


def _magnitude(expr: sp.Basic, reads: dict | None = None) -> sp.Basic:
    """A bound on the size of what `expr` adds up: each sum, product, `sum` and `mean` in it of the
    absolute values of its parts (unevaluated: nothing cancels). A part free of y_pred is taken as
    its value: its rounding is the same at every y_pred tried (`y_pred * (1e15 sigmoid(y_true) +
    1e15 sigmoid(-y_true) - 1e15 + 1)` varies with y_pred; taken apart, it looked constant).
    `reads`: the free symbols of the parts asked about so far (`subtrees.known_free_symbols`)."""
    reads = {} if reads is None else reads
    if Y_PRED not in subtrees.known_free_symbols(expr, reads):
        return sp.Abs(expr, evaluate=False)
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func(*(_magnitude(a, reads) for a in expr.args), evaluate=False)
    if isinstance(expr, (sf.ReduceSum, sf.ReduceMean)):
        return expr.func(_magnitude(expr.args[0], reads), evaluate=False)
    if isinstance(
        expr, sf.LogSumExp
    ):  # its rounding is that of its largest elements (a review:
        # `logsumexp(y_pred - logsumexp(y_pred))`, 0 whatever y_pred is, was 1e-7 off 0 at 1e9), each
        # element's bound weighted by its share, the softmax: an element of -1e30 adds nothing
        # (`logsumexp(y_pred - 1e30 y_true)`, a mask, looked constant at that scale; a review)
        x = expr.args[0]
        share = sf.ReduceSum(sf.Softmax(x) * _magnitude(x, reads), evaluate=False)
        return sp.Add(sp.Abs(expr, evaluate=False), share, evaluate=False)
    return sp.Abs(expr, evaluate=False)


# A row of the probe: the value tried at its first position, then values that move with it at
# other rates, each its own (so that a softmax, a max or a weighted sum over the row changes too).
ROW_LENGTH = 3


def _row(x: float, length: int) -> tuple[float, ...]:
    return tuple((-1) ** j * (1 + 0.377 * j) * x + 0.7 * j for j in range(length))


def _row_length(expr: sp.Basic) -> int:
    """The length of the program's list literals (all one but those of one value, which broadcast
    along any row, or the shapes check said no), else ROW_LENGTH."""
    lengths = [
        len(vector.args)
        for vector in subtrees.atoms(expr, sf.Vector)
        if len(vector.args) > 1
    ]
    return max(lengths, default=ROW_LENGTH)


def _thresholds(expr: sp.Basic, env: dict) -> list[float]:
    """Targets where a loss flat elsewhere may change: the numbers of the program, with both signs
    (SymPy writes `y_true - 7` as `y_true + (-7)`), and the sides of its comparisons that hold
    neither y_true nor y_pred (`y_true > 2 k`), at the parameters' defaults; at most
    MAX_THRESHOLDS of them, the comparisons' first."""
    found: list[float] = []
    for relation in subtrees.atoms(expr, sp.Rel):
        for side in relation.args:
            if not side.has(Y_TRUE, Y_PRED):
                with contextlib.suppress(
                    Unsupported, TypeError, ValueError, OverflowError
                ):
                    found.append(compiled(side)(env))
    found += [float(n) for n in subtrees.atoms(expr, sp.Number) if n.is_finite]
    found += list(env.values())
    signed = dict.fromkeys(
        x
        for value in found
        if math.isfinite(value) and abs(value) < 1e300
        for x in (value, -value)
    )
    return list(signed)[:MAX_THRESHOLDS]
