"""Numbers a float32 loss cannot hold: a warning at each one.

Input: a resolved program and its SymPy translation. Output: a `float32`
warning at every number written (or parameter default) beyond float32's range,
which a float32 loss (Keras's default dtype) reads as inf, and at every nonzero
one so small that it reads as 0; and likewise at every constant the compiler
folds out of numbers that float32 holds (`1e20 * 1e20`, `exp(100)`, `2^200`),
at the smallest part of the program that makes it, and at every part made of parameters alone
whose value at their defaults is such a number (`param k = 100` then `exp(k) * e^2`: the code
computes `exp(k)` in the loss's dtype, inf, and the loss is NaN where e is 0). The compile itself is
exact in float64, where `1e39` is an ordinary number; the generated code
converts each number to the loss's dtype (docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import math

import sympy as sp

from lossdsl import nodes, subtrees
from lossdsl.checks.numeric import FLOAT32_INF_FROM, Unsupported, evaluate
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import SymbolicLoss

# Half of float32's smallest subnormal (1.4e-45): anything nonzero below it rounds to 0.
FLOAT32_ZERO_BELOW = 7.006492321624085e-46

_READS_INF = "a float32 loss, Keras's default, reads it as inf"
_INF = f"beyond float32's range (about 3.4e38): {_READS_INF}"
_ZERO = "below float32's smallest number (about 1.4e-45): a float32 loss reads it as 0"


def check_float32(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """A warning at each number of the program, written or folded, that float32 reads as inf or as 0."""
    found = []

    def warn(message: str, span) -> None:
        found.append(
            Diagnostic.at("warning", "float32", message, span, resolved.source)
        )

    built = symbolic.node_exprs
    # Only what the loss still holds once folded whole: `y_pred / (1e20 * 1e20)` holds 1e-40,
    # `log(2^200)` 138.6 (the emitted code is printed from it).
    kept = _outside(symbolic.core, everywhere=True)
    # not in a binding the loss does not read, which the code leaves out (`a = 1e39 * y_pred`
    # then `e^2` was warned of; a review)
    unread = [
        st
        for st in resolved.program.statements
        if isinstance(st, nodes.Assign) and st.name not in resolved.read
    ]
    skipped = {id(node) for st in unread for node in nodes.walk(st)}
    warned: set[float] = set()
    for node in nodes.walk(resolved.program):
        if id(node) in skipped:
            continue
        if isinstance(node, (nodes.Number, nodes.Param)):
            value = node.value if isinstance(node, nodes.Number) else node.default
            span = node.span if isinstance(node, nodes.Number) else node.value_span
            problem = _problem(value)
            if problem:
                warn(f"`{node.text}` is {problem}", span)
                warned.add(abs(float(value)))
            continue
        if id(node) not in built:
            continue
        # A folded constant is warned of where it is first made, and not above a number already warned of.
        if any(_outside(built[id(c)]) for c in node.children if id(c) in built):
            warned |= _outside(built[id(node)])
            continue
        for value in sorted(_outside(built[id(node)]) & kept):
            warn(
                f"this part holds the constant {value:.6g} once folded, {_problem(value)}",
                node.span,
            )
            warned.add(value)
    # Made only where bindings meet (`a = 1e20` then `e^2 * a * a`: the code's `a * a` is inf in
    # float32), so no part holds it: at the loss (a review of the checks).
    for value in sorted(kept - warned):
        message = f"the loss holds the constant {value:.6g} once its bindings are substituted, {_problem(value)}"
        warn(message, resolved.result.span)
    for node, value in _parameter_parts(resolved, symbolic, skipped):
        held = f"holds {value:.6g}, {_problem(value)}"
        if not math.isfinite(value):
            held = f"overflows even float64: {_READS_INF}"
        warn(f"at the parameters' defaults this part {held}", node.span)
    return found


def _parameter_parts(
    resolved: Resolved, symbolic: SymbolicLoss, skipped: set[int]
) -> list:
    """(node, value) for each smallest part of the program made of parameters alone (and numbers,
    and bindings of such parts) whose value at the parameters' defaults float32 cannot hold, where
    the code computes it (the stable rewrites applied: `log(1 + exp(k))` is `softplus(k)`)."""
    if not symbolic.params:
        return []
    defaults = symbolic.defaults()
    # (a default float32 cannot hold is warned of at it, not again above it)
    known = {s for s in symbolic.params.values() if not _problem(defaults[s])}
    statements, result = reshared_stable_form(symbolic)
    env, code = _code_values(statements, result, defaults, known)
    built = symbolic.node_exprs
    outside: set[int] = set()  # the parts found, and every part above one
    found = []
    free: dict = {}  # (the free symbols of the parts asked about: each node's built form holds its children's)
    for node in reversed(list(nodes.walk(resolved.program))):  # children before parents
        if (
            id(node) in skipped
            or id(node) not in built
            or isinstance(node, nodes.Param)
        ):
            continue
        if any(id(c) in outside for c in node.children):
            outside.add(id(node))
            continue
        for part in _parameter_pieces(built[id(node)], known, free):
            try:
                value = evaluate(_computed(part), env)
                if (
                    not _problem(value)
                    or _pole(part, value, env)
                    or not any(e.has(part) for e in code)
                ):
                    continue
                if _problem(value) == _ZERO and not _zero_reaches(
                    part, code, known, env
                ):
                    continue
            except (
                Unsupported
            ):  # (a reduction or a list in a branch `evaluate` did not take first)
                continue
            outside.add(id(node))
            found.append((node, value))
            break
    return found


def _computed(part: sp.Expr) -> sp.Expr:
    """What the code computes for `part`: a power with a negative exponent is a division by the
    positive power (`s / k^2` is `s / square(k)`: 1e40 at k = 1e20, not 1e-40)."""
    if isinstance(part, sp.Pow) and part.exp.is_Number and part.exp < 0:
        return sp.Pow(part.base, -part.exp)
    return part


def _zero_reaches(part: sp.Expr, code: list, known: set, env: dict) -> bool:
    """Whether a `part` that float32 reads as 0 makes a largest part of parameters alone that holds
    it 0 too: `1 + exp(-k)` is 1 whatever `exp(-k)` reads as (as a written `1 + exp(-200)` is 1
    once folded, and not warned of), `3 * exp(-k)` is 0."""
    stack = list(code)
    while stack:
        expr = stack.pop()
        if expr.free_symbols and expr.free_symbols <= known:
            if expr.has(part) and _problem(evaluate(_computed(expr), env)) == _ZERO:
                return True
        else:
            stack.extend(expr.args)
    return False


def _code_values(
    statements: list, result: sp.Basic, defaults: dict, known: set
) -> tuple[dict, list]:
    """The values of the parameters and of the bindings made of them alone, at the defaults (`known`
    gets each binding whose value float32 holds), and what the code computes: the result and the
    values of the bindings it reads."""
    env = dict(defaults)
    values = {}
    for _, symbol, value in statements:
        if symbol is None:
            continue
        values[symbol] = value
        if value.free_symbols and value.free_symbols <= known:
            with contextlib.suppress(Unsupported):
                env[symbol] = evaluate(value, env)
                if not _problem(env[symbol]):
                    known.add(symbol)
    code, stack, seen = [], [result], set()
    while stack:
        expr = stack.pop()
        code.append(expr)
        for symbol in expr.free_symbols & values.keys() - seen:
            seen.add(symbol)
            stack.append(values[symbol])
    return env, code


def _pole(part: sp.Expr, value: float, env: dict) -> bool:
    """Whether `value`, infinite, is a division by 0 (the domain check's), not an overflow."""
    if math.isfinite(value):
        return False
    for power in subtrees.atoms(part, sp.Pow):
        # (a power `evaluate` cannot compute, a reduction's, was in a branch not taken: no pole)
        with contextlib.suppress(Unsupported):
            if evaluate(power.base, env) == 0 and evaluate(power.exp, env) < 0:
                return True
    return False


def _parameter_pieces(
    expr: sp.Basic, params: set[sp.Symbol], free: dict | None = None
) -> list[sp.Expr]:
    """The parts of `expr` made of `params` alone (parameters, and bindings of them) that its code
    may compute: `expr` itself, or its terms and factors (and their products: `k*k*e^2` is one
    node, whose code computes `k**2`); not a symbol alone (judged where it is made). `free`: the
    free symbols of the parts asked about so far (`subtrees.known_free_symbols`)."""
    free = {} if free is None else free
    if not isinstance(expr, sp.Expr) or not subtrees.known_free_symbols(expr, free):
        return []
    if subtrees.known_free_symbols(expr, free) <= params:
        return [] if expr.is_Symbol else [expr]
    pieces = []
    for term in sp.Add.make_args(expr):
        symbols = subtrees.known_free_symbols(term, free)
        if symbols and symbols <= params:
            pieces.append(term)
            continue
        factors = [
            f
            for f in sp.Mul.make_args(term)
            if (s := subtrees.known_free_symbols(f, free)) and s <= params
        ]
        pieces += factors + ([sp.Mul(*factors)] if len(factors) > 1 else [])
    return pieces


def _problem(value: float) -> str | None:
    if abs(value) >= FLOAT32_INF_FROM:
        return _INF
    if 0 < abs(value) < FLOAT32_ZERO_BELOW:
        return _ZERO
    return None


def _outside(expr: sp.Basic, everywhere: bool = False) -> set[float]:
    """The magnitudes of the numbers at the top of `expr` (itself, or its terms' coefficients; with
    `everywhere`, anywhere in it) that float32 cannot hold."""
    if everywhere:
        numbers = list(subtrees.atoms(expr, sp.Number))
    elif not isinstance(expr, sp.Expr):
        return set()
    else:
        numbers = (
            [expr]
            if expr.is_Number
            else [term.as_coeff_Mul()[0] for term in sp.Add.make_args(expr)]
        )
    return {abs(float(n)) for n in numbers if n.is_Number and _problem(float(n))}
