"""Check: a loss that float32 computes as NaN or inf because a part of it overflows, where its value is a number.

The domain and saturation checks look at the low end of float32's range, a
value that rounds to 0. This one looks at the high end, about 3.4e38: `exp(x)`
is inf in float32 past x of about 88.7, `cosh` and `sinh` likewise,
`y_pred^20` past y_pred of about 85. Where such a part meets another the loss
is NaN (inf times 0, inf over inf, inf less inf) or inf, though its value is
a number float32 holds: `exp(x) / (1 + exp(x))^1.5` is computed as
`exp(x) * sigmoid(-x)^1.5`, inf times 0 at x = 200, where its value is 3.7e-44.

The loss is evaluated as its code computes it (the stable rewrites applied,
each binding a local), once with each operation rounded to float32 and once
in float64, at probe points: y_pred from +-20 to +-1e4, y_true at 0, 1, -1
and 5, parameters at their defaults; a loss over the last axis on a row of
two values, y_pred = [p, 0] and y_true = [t, 1 - t], or of the length of its
list literals, and where it has them with the point in each column in turn
(y_pred = [0, p], y_true = [1 - t, t]: a list mask picks one column out,
`s = sum(y_pred * [0, 1])`; up to `MAX_COLUMNS`, as many as the budget
allows). Where float32 gives NaN or inf and float64 a number float32 holds,
and computed without overflowing (values past the range kept as they are)
it is finite, the parts that overflowed there (inf from finite
arguments) are tried one by one: each that alone, at inf, makes the loss NaN
or inf is a cause (all of them, where none alone does; a `tanh` of an inf is
1), and is warned of at the first part of the program the code computes as
it, or at the loss where none is. Not
warned of: a loss whose own value is past the range (`exp(y_pred)` at 200 is
7.2e86: inf, as it is), a NaN that no overflow causes (the saturation
check's), the gradient, programs with `onehot` (not evaluated); nor where
another check warns at the same place (checks/__init__). At most
`MAX_PROBED` operations are evaluated, less the capped retries.
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import hyperbolic, nodes, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.numeric import (
    FLOAT32_INF_FROM,
    OVERFLOWED,
    Unsupported,
    compiled_rows,
)
from lossdsl.checks.saturation import MAX_PROBED
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import Rewriter, inlined_code_form, reshared_stable_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# (y_true, y_pred) points: y_pred where exp of it, or of a few times it, overflows float32 but not float64
PROBES = [
    (t, sign * p)
    for p in (20.0, 100.0, 200.0, 500.0, 1e4)
    for sign in (1.0, -1.0)
    for t in (0.0, 1.0, -1.0, 5.0)
]
# At most this many parts that overflowed are tried as the cause, at one probe point.
MAX_TRIED = 8
# The probe point is put in at most this many columns of a row, one at a time.
MAX_COLUMNS = 4
_GROWING_FORMS = (sp.exp, hyperbolic.cosh, hyperbolic.sinh, sf.Expm1)

_EXPONENTIAL_HINT = (
    "write it with `sigmoid`, `softplus`, `softmax`, `log_softmax` or `logsumexp`, which do not overflow,"
    " or clip the argument"
)
_HINTS = {
    "exp": _EXPONENTIAL_HINT,
    "expm1": _EXPONENTIAL_HINT,
    "cosh": "write it with `tanh` or `softplus` (`log(cosh(x))` is computed without overflowing), or clip the argument",
    "sinh": "write it with `tanh` (`sinh(x) / cosh(x)`), or clip the argument",
    "exponent": "clip the exponent (or write `b^x / (1 + b^x)` as `sigmoid(x * log(b))`)",
    "base": "clip the base",
}
_GENERAL_HINT = (
    "keep each part within float32's range: clip it, or write it with `sigmoid`, `softplus`, `softmax`,"
    " `log_softmax` or `logsumexp`, which do not overflow"
)


def check_overflow(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """A warning at each part of the program that overflows float32 where the loss, as float32
    computes it, is NaN or inf and its value is a number float32 holds."""
    inlined = inlined_code_form(symbolic)
    if inlined is None:
        return []
    size = _row_size(inlined, resolved.per_sample)
    # (without list literals every column is computed alike: another column's row is a permutation)
    # (as many columns as the budget allows: the first always, where it alone fits; a review)
    columns = min(size, MAX_COLUMNS) if inlined.has(sf.Vector) else 1
    while columns and not _fits(inlined, columns * len(PROBES)):
        columns -= 1
    if not columns:
        return []
    points = [(t, p, column) for column in range(columns) for t, p in PROBES]
    statements, code = reshared_stable_form(symbolic)
    bound = [(symbol, value) for _, symbol, value in statements]
    if not any(
        _can_overflow(value) for value in [code, *(value for _, value in bound)]
    ):
        return []
    params = symbolic.defaults()

    def loss(float32: bool = True, overflow: bool = True, fixed: dict | None = None):
        return compiled_rows(
            code, size, resolved.per_sample, float32, bound, fixed, overflow
        )

    in_float32, exact, unbounded = loss(), loss(float32=False), loss(overflow=False)
    for t, p, column in points:
        env = {**params, **_rows(t, p, size, column)}
        overflowed: list[sp.Basic] = []
        try:
            wrong = in_float32({**env, OVERFLOWED: overflowed})
            if math.isfinite(wrong):
                continue
            value = exact(env)
            if not math.isfinite(value) or abs(value) >= FLOAT32_INF_FROM:
                continue
            if not overflowed or not math.isfinite(unbounded(env)):
                continue  # no overflow made it NaN or inf: float32's range is not the matter
            # (each tried rebuilds the evaluator: the first few, in the order they overflowed)
            signs = {
                part: _sign(part, bound, env, size)
                for part in list(dict.fromkeys(overflowed))[:MAX_TRIED]
            }
            causes = [
                part
                for part in signs
                if not math.isfinite(
                    loss(overflow=False, fixed={part: signs[part]})(env)
                )
            ] or list(signs)
        except (Unsupported, TypeError, ArithmeticError, RecursionError):
            return []
        places = _places(resolved, symbolic, causes, bound, env, size)
        return [
            _warning(resolved, node, env, wrong, value, beyond)
            for node, beyond in places
        ]
    return []


def _can_overflow(code: sp.Basic) -> bool:
    """Whether `code` holds a function that overflows for a finite argument, or a power whose
    exponent is not a small number."""
    if code.has(*_GROWING_FORMS):
        return True
    return any(
        not p.exp.is_number or abs(p.exp) > 2 for p in subtrees.atoms(code, sp.Pow)
    )


def _fits(code: sp.Basic, points: int) -> bool:
    """Whether evaluating `code` twice at each of `points` probe points stays within `MAX_PROBED` operations."""
    size = min(subtrees.size(code, MAX_PROBED), MAX_PROBED)
    return 2 * points * size <= MAX_PROBED


def _row_size(code: sp.Basic, per_sample: bool) -> int:
    """The length of the rows probed: a list literal's, two for a loss over the last axis, else one."""
    lengths = [
        len(vector.args)
        for vector in subtrees.atoms(code, sf.Vector)
        if len(vector.args) > 1
    ]
    if lengths:  # (one value broadcasts along any row)
        return max(lengths)
    return 2 if per_sample or code.has(sf.TensorFunction) else 1


def _rows(t: float, p: float, size: int, column: int = 0) -> dict:
    """y_true and y_pred rows whose entries in `column` are the probe point's (a one-hot y_true for t
    of 0 or 1: `1 - t` in the next column, round the row)."""
    if size == 1:
        return {Y_TRUE: (t,), Y_PRED: (p,)}
    true = [0.0] * size
    true[column], true[(column + 1) % size] = t, 1.0 - t
    pred = [0.0] * size
    pred[column] = p
    return {Y_TRUE: tuple(true), Y_PRED: tuple(pred)}


def _sign(part: sp.Basic, bound, env: dict, size: int) -> float:
    """The infinite float32 value of `part` at `env` (inf where its sign cannot be told)."""
    try:
        value = compiled_rows(part, size, per_sample=True, float32=True, bound=bound)(
            env
        )
    except (Unsupported, TypeError, ArithmeticError, RecursionError):
        return math.inf
    return -math.inf if value < 0 else math.inf


def _places(
    resolved: Resolved, symbolic: SymbolicLoss, causes, bound, env: dict, size: int
):
    """(node, its value at `env`) for each cause: the first part of the program, outside
    conditions, that the code computes as it (the loss itself where none is)."""
    rewriter = Rewriter({}, share=False)
    wanted = {}
    for cause in causes:
        whole = cause
        for symbol, value in reversed(bound):  # each value reads only earlier symbols
            whole = (
                whole.xreplace({symbol: value})
                if symbol in whole.free_symbols
                else whole
            )
        forms = {cause, whole, rewriter.rewrite(whole)}
        # (SymPy takes a sign out, `sinh(-x)` is `-sinh(x)`, and a division is a product with a
        # reciprocal: `y_true / exp(y_pred)` is computed as `y_true * exp(-y_pred)`)
        wanted[cause] = {
            sign * form**power
            for form in forms
            for sign in (1, -1)
            for power in (1, -1)
        }
    found: dict[sp.Basic, nodes.Node] = {}
    for node in _parts(resolved):
        if len(found) == len(causes):
            break
        try:
            form = rewriter.rewrite(node_expr(symbolic, node))
        except (Unsupported, TypeError, ValueError, ArithmeticError, RecursionError):
            continue
        for cause, forms in wanted.items():
            if cause not in found and form in forms:
                found[cause] = node
    places = []
    for cause in causes:
        node = found.get(cause, resolved.result)
        try:
            beyond = compiled_rows(cause, size, per_sample=True, bound=bound)(env)
        except (Unsupported, TypeError, ArithmeticError, RecursionError):
            beyond = math.inf
        if all(node is not seen for seen, _ in places):
            places.append((node, beyond))
    return sorted(places, key=lambda place: (place[0].span.start, place[0].span.end))


def _parts(resolved: Resolved):
    """The parts of the program that read y_pred, outside conditions, in source order (each once)."""
    parts = [
        node
        for node in resolved.outside_conditions()
        if resolved.of(node).pred and not isinstance(node, (nodes.Name, nodes.Number))
    ]
    return sorted(parts, key=lambda node: (node.span.start, -node.span.end))


def _hint(node: nodes.Node, resolved: Resolved) -> str:
    if isinstance(node, nodes.Call) and node.func in _HINTS:
        return _HINTS[node.func]
    exponent = node.exponent if isinstance(node, nodes.Power) else None
    if isinstance(node, nodes.Call) and node.func == "pow" and len(node.args) == 2:
        exponent = node.args[1]
    if exponent is not None:
        return _HINTS["exponent"] if resolved.of(exponent).pred else _HINTS["base"]
    return _GENERAL_HINT


def _warning(
    resolved, node, env: dict, wrong: float, value: float, beyond: float
) -> Diagnostic:
    where = f"y_true={_shown_row(env[Y_TRUE])}, y_pred={_shown_row(env[Y_PRED])}"
    part = "inf" if math.isinf(beyond) or math.isnan(beyond) else f"about {beyond:.2g}"
    if node is resolved.result:
        what = f"a part of `{resolved.text(node)}` overflows float32 (it is {part}"
    else:
        what = f"`{resolved.text(node)}` overflows float32 (its value is {part}"
    message = (
        f"{what} at {where}; float32 holds up to about 3.4e38), and there the loss is {_shown(wrong)} in"
        f" float32 though its value is about {value:.2g}; {_hint(node, resolved)}"
    )
    span = node.span
    return Diagnostic.at("warning", "float32-overflow", message, span, resolved.source)


def _shown_row(row: tuple) -> str:
    return (
        f"{row[0]:g}" if len(row) == 1 else "[" + ", ".join(f"{v:g}" for v in row) + "]"
    )


def _shown(value: float) -> str:
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
