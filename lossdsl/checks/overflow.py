"""Check: a loss that float32 computes as NaN or inf because a part of it overflows, where its value is a number.

The domain and saturation checks look at the low end of float32's range, a
value that rounds to 0. This one looks at the high end, about 3.4e38: `exp(x)`
is inf in float32 past x of about 88.7, `cosh` and `sinh` likewise,
`y_pred^20` past y_pred of about 85. Where such a part meets another the loss
is NaN (inf times 0, inf over inf, inf less inf) or inf, though its value is
a number float32 holds: `exp(x) / (1 + exp(x))^1.5` is computed as
`exp(x) * sigmoid(-x)^1.5`, inf times 0 at x = 200, where its value is 3.7e-44.

The loss is evaluated in the form the code computes (the stable rewrites
applied), once with each operation rounded to float32 and once in float64, at
the saturation check's probe points (parameters at their defaults; a loss over
the last axis on a row of two values, y_pred = [p, 0] and y_true = [t, 1 - t], or of
the length of its list literals).
Where float32 gives NaN or inf and float64 a number within float32's range, it
warns at each `exp`, `cosh`, `sinh`, `expm1` and power of the program that the
code computes and whose value there is beyond float32's range. Not warned of:
a loss whose own value is beyond the range (`exp(y_pred)` at 200 is 7.2e86;
the loss is inf, as it is), a NaN with no overflowing part (the saturation
check's), the gradient. At most `MAX_PROBED` operations are evaluated.
"""

from __future__ import annotations

import itertools
import math

import sympy as sp

from lossdsl import hyperbolic, nodes
from lossdsl import symfuncs as sf
from lossdsl.checks.numeric import FLOAT32_INF_FROM, Unsupported, compiled_rows
from lossdsl.checks.saturation import MAX_PROBED, PROBES
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import Rewriter, inlined_code_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# The functions of the program that overflow float32 for a finite argument.
_GROWING = ("exp", "cosh", "sinh", "expm1", "pow")
_GROWING_FORMS = (sp.exp, hyperbolic.cosh, hyperbolic.sinh, sf.Expm1)


def check_overflow(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """A warning at each part of the program that overflows float32 where the loss, as float32
    computes it, is NaN or inf and its value is a number float32 holds."""
    code = inlined_code_form(symbolic)
    if code is None or not _can_overflow(code) or not _fits(code):
        return []
    size = _row_size(code, resolved.per_sample)
    params = {symbolic.params[name]: float(value) for name, value in resolved.params.items()}
    in_float32 = compiled_rows(code, size, resolved.per_sample, float32=True)
    exact = compiled_rows(code, size, resolved.per_sample)
    for t, p in PROBES:
        env = {**params, **_rows(t, p, size)}
        try:
            wrong, value = in_float32(env), exact(env)
        except (Unsupported, TypeError, ArithmeticError, RecursionError):
            return []
        if math.isfinite(wrong) or not math.isfinite(value) or abs(value) >= FLOAT32_INF_FROM:
            continue
        found = [
            _warning(resolved, node, env, wrong, value, beyond)
            for node, beyond in _overflowing(resolved, symbolic, code, env, size)
        ]
        if found:
            return found
    return []


def _can_overflow(code: sp.Basic) -> bool:
    """Whether `code` holds a function that overflows for a finite argument, or a power whose
    exponent is not a small number (1e4, a probe, to the 10th is past float32's range)."""
    if code.has(*_GROWING_FORMS):
        return True
    return any(not p.exp.is_number or abs(p.exp) >= 10 for p in code.atoms(sp.Pow))


def _fits(code: sp.Basic) -> bool:
    """Whether evaluating `code` twice at every probe point stays within `MAX_PROBED` operations."""
    size = sum(1 for _ in itertools.islice(sp.preorder_traversal(code), MAX_PROBED))
    return 2 * len(PROBES) * size <= MAX_PROBED


def _row_size(code: sp.Basic, per_sample: bool) -> int:
    """The length of the rows probed: a list literal's, two for a loss over the last axis, else one."""
    vector = next(iter(code.atoms(sf.Vector)), None)
    if vector is not None:
        return len(vector.args)
    return 2 if per_sample or code.has(sf.TensorFunction) else 1


def _rows(t: float, p: float, size: int) -> dict:
    """y_true and y_pred rows whose first entries are the probe point's (a one-hot y_true for t of 0 or 1)."""
    if size == 1:
        return {Y_TRUE: (t,), Y_PRED: (p,)}
    return {Y_TRUE: (t, 1.0 - t, *[0.0] * (size - 2)), Y_PRED: (p, *[0.0] * (size - 1))}


def _shown_row(row: tuple) -> str:
    return f"{row[0]:g}" if len(row) == 1 else "[" + ", ".join(f"{v:g}" for v in row) + "]"


def _overflowing(resolved: Resolved, symbolic: SymbolicLoss, code: sp.Basic, env: dict, size: int):
    """(node, its value) for the first place of each growing part of the program, outside conditions, that the code
    computes and whose value at `env` (the first position of the row) float32 cannot hold."""
    rewriter = Rewriter({}, share=False)
    forms: set[sp.Basic] = set()  # one warning for each part computed, at its first place
    seen: set[int] = set()
    stack = [(resolved.result, False), *((st.value, False) for st in resolved.bindings.values())]
    found = []
    while stack:
        node, in_condition = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        inside = in_condition or isinstance(node, (nodes.Compare, nodes.BoolOp, nodes.Not))
        stack.extend((child, inside) for child in node.children)
        growing = isinstance(node, nodes.Power) or isinstance(node, nodes.Call) and node.func in _GROWING
        if inside or not growing or not resolved.of(node).pred:
            continue
        try:
            form = rewriter.rewrite(node_expr(symbolic, node))
            if not code.has(form):
                continue
            value = compiled_rows(form, size, per_sample=True)(env)
        except (Unsupported, TypeError, ValueError, ArithmeticError, RecursionError):
            continue
        if not math.isnan(value) and abs(value) >= FLOAT32_INF_FROM:
            found.append((node, form, value))
    found.sort(key=lambda found: (found[0].span.start, found[0].span.end))
    for node, form, value in found:
        if form not in forms:
            forms.add(form)
            yield node, value


def _warning(resolved, node, env: dict, wrong: float, value: float, beyond: float) -> Diagnostic:
    where = f"y_true={_shown_row(env[Y_TRUE])}, y_pred={_shown_row(env[Y_PRED])}"
    part = "inf" if math.isinf(beyond) else f"about {beyond:.2g}"
    if isinstance(node, nodes.Call) and node.func != "pow":
        hint = (
            "write it with `sigmoid`, `softplus`, `logsumexp` or `log_softmax`, which do not overflow,"
            " or clip the argument"
        )
    else:
        hint = "clip the base, or write the loss so that no part of it leaves float32's range"
    message = (
        f"`{resolved.text(node)}` overflows float32 (its value is {part} at {where}; float32 holds up to"
        f" about 3.4e38), and there the loss is {_shown(wrong)} in float32 though its value is about"
        f" {value:.2g}; {hint}"
    )
    span = node.span
    return Diagnostic("warning", message, span.line, span.column, "float32-overflow", span, resolved.source)


def _shown(value: float) -> str:
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
