"""Stage 4: the checks of LANGUAGE.md, as `Diagnostic`s.

`run_checks(resolved, symbolic)` returns every finding, sorted by position:
a constant the code's stable forms make infinite, dependence on y_pred and
dead terms (errors), domain hazards (in the reals, and values float32 rounds
to 0), `where` jumps, numbers float32 cannot hold and parts that overflow it
(warnings), kinks and an unread binding that the loss's leading sign seems to
continue (notes). A check that cannot finish on some exotic input reports a
note instead of failing the compile.
"""

from __future__ import annotations

from lossdsl.checks.code_constants import check_code_constants
from lossdsl.checks.dependence import IDENTITY, check_dependence
from lossdsl.checks.differentiability import check_dead_terms
from lossdsl.checks.domain import check_domain
from lossdsl.checks.overflow import check_overflow
from lossdsl.checks.precision import check_float32
from lossdsl.checks.saturation import check_saturation
from lossdsl.checks.smoothness import check_smoothness
from lossdsl.checks.unused import check_unused
from lossdsl.errors import Diagnostic, LossError
from lossdsl.semantics import Resolved
from lossdsl.symbolic import SymbolicLoss

__all__ = ["run_checks"]


def run_checks(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """Every diagnostic for a resolved, translated program, sorted by position."""
    # (a zoo in the code's form first: `y_pred + 1 / (log(1 + y_pred) - log1p(y_pred))` is a
    # division by 0 there before it is a loss without y_pred)
    found = _guarded(
        "code-constant", lambda: check_code_constants(resolved, symbolic), resolved
    )
    if not found:
        found = check_dependence(resolved, symbolic)
    if not any(
        d.level == "error" for d in found
    ):  # (a loss that only looks constant may have dead terms)
        found += _guarded(
            "dead-term", lambda: check_dead_terms(resolved, symbolic), resolved
        )
    elif any(IDENTITY in d.message for d in found):
        # a constant proved by its derivative may be a dead term, whose error names the culprit
        # (`max(sin(y_pred)^2 + cos(y_pred)^2, 2)`: its `max` is never above 2)
        dead = _guarded(
            "dead-term", lambda: check_dead_terms(resolved, symbolic), resolved
        )
        found = dead if any(d.level == "error" for d in dead) else found
    domain = _guarded("domain", lambda: check_domain(resolved, symbolic), resolved)
    found += domain
    # (where the real numbers reach 0 already, the domain warning says so)
    found += _apart(
        _guarded(
            "float32-zero", lambda: check_saturation(resolved, symbolic), resolved
        ),
        domain,
    )
    # A `where` that the dead-term error names as a step function needs no jump warning as well.
    steps = [d for d in found if d.code == "not-differentiable"]
    smoothness = _guarded(
        "smoothness", lambda: check_smoothness(resolved, symbolic), resolved
    )
    found += [d for d in smoothness if d.code != "jump"] + _apart(
        [d for d in smoothness if d.code == "jump"], steps
    )
    found += _guarded("float32", lambda: check_float32(resolved, symbolic), resolved)
    # (a divisor that float32 rounds to 0 is often computed as a reciprocal that overflows: one warning)
    found += _apart(
        _guarded(
            "float32-overflow", lambda: check_overflow(resolved, symbolic), resolved
        ),
        found,
    )
    found += check_unused(resolved)
    return sorted(found, key=lambda d: (d.line or 0, d.column or 0, d.level))


def _apart(diagnostics: list[Diagnostic], said: list[Diagnostic]) -> list[Diagnostic]:
    """`diagnostics` less those at the very place of one of `said` (what says the same again there)."""
    places = {(d.span.start, d.span.end) for d in said if d.span is not None}
    return [
        d
        for d in diagnostics
        if d.span is None or (d.span.start, d.span.end) not in places
    ]


def _guarded(name: str, check, resolved: Resolved) -> list[Diagnostic]:
    try:
        return check()
    except LossError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError) as err:
        message = (
            f"the {name} check could not finish on this program ({type(err).__name__})"
        )
        return [Diagnostic("note", message, None, None, name, None, resolved.source)]
