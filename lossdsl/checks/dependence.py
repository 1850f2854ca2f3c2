"""Check: the loss depends on `y_pred`.

Judged on SymPy's canonical form, in which `y_pred - y_pred` has already
cancelled. (Numeric probing was rejected: a loss such as
`where(y_pred > 100, y_pred, 0)` is flat at any finite set of sample points
and still depends on y_pred.)
"""

from __future__ import annotations

from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, SymbolicLoss


def check_dependence(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """An error when the loss does not depend on y_pred."""
    result = resolved.result
    if Y_PRED in symbolic.core.free_symbols:
        return []
    mentioned = resolved.of(result).pred
    reason = "its terms in y_pred cancel" if mentioned else "y_pred does not appear in it"
    return [
        Diagnostic(
            "error",
            f"the loss does not depend on y_pred ({reason}), so training cannot move the predictions",
            result.span.line,
            result.span.column,
            "no-prediction",
            result.span,
            resolved.source,
        )
    ]
