"""The recipe: text -> parse -> analyze -> SymPy -> checks -> `CompiledLoss`.

`compile` raises one `LossError` listing every error; `check` returns the
diagnostics and never raises for a bad program. The front half (everything
up to the diagnostics) is cached per (source, strict), its errors included,
so compiling the same program twice, or checking one that failed to compile,
costs a dictionary look-up.
"""

from __future__ import annotations

import copy
import functools
import sys
import threading
from dataclasses import dataclass

from lossdsl.api_arguments import checked_arguments, require_flag, require_text
from lossdsl.checks import run_checks
from lossdsl.compiled import CompiledLoss, validate_class_name
from lossdsl.errors import (
    ERROR_CLASSES,
    Diagnostic,
    LossError,
    LossInternalError,
    contained,
)
from lossdsl.parse import MAX_CHARS, parse
from lossdsl.semantics import Resolved, analyze
from lossdsl.symbolic import SYMPY_LOCK, SymbolicLoss, to_sympy

DEFAULT_NAME = "FormulaLoss"
# SymPy walks expressions recursively, several frames per level; nesting is
# capped at 200 levels, which needs more than Python's default 1000 frames
# (the deepest programs allowed need under 2,500 to compile, print and
# differentiate). The limit must stay well below what the C stack holds: SymPy
# can also recurse without end (a `where` whose condition compares with
# another `where` sends Piecewise's canonicalization round in a loop), and at
# 20,000 frames that overflowed the 8 MB stack and killed the process before
# Python's RecursionError could stop it.
_RECURSION_LIMIT = 4000
# Warnings that `strict=True` promotes, by diagnostic code -> error class code.
_STRICT = {
    "domain": "domain",
    "jump": "not-differentiable",
    "no-prediction": "no-prediction",
}


@dataclass(frozen=True)
class FrontEnd:
    """What the front half of the compiler knows of one program."""

    resolved: Resolved
    symbolic: SymbolicLoss
    diagnostics: tuple[Diagnostic, ...]


@checked_arguments
def compile(
    source: str, name: str | None = None, *, strict: bool = False
) -> CompiledLoss:  # noqa: A001
    """Compile a lossdsl program into a `CompiledLoss`.

    Args:
        source: the program text.
        name: the generated class name (a Python identifier, not a keyword);
            default "FormulaLoss".
        strict: turn warnings into errors.

    Raises:
        LossError: a subclass naming the first error, with all of them in `.diagnostics`.
    """
    class_name = validate_class_name(DEFAULT_NAME if name is None else name)
    strict = require_flag("strict", strict)
    source = require_text(source)
    front = front_end(source, strict)
    return CompiledLoss(
        class_name,
        source,
        front.resolved,
        front.symbolic,
        list(front.diagnostics),
        strict,
    )


@checked_arguments
def check(source: str, *, strict: bool = False) -> list[Diagnostic]:
    """Every diagnostic of a program; never raises for a bad program (one that is not text is one
    error diagnostic)."""
    try:
        return list(front_end(source, require_flag("strict", strict)).diagnostics)
    except LossError as err:
        return list(err.diagnostics) or [err.as_diagnostic()]


def front_end(source: str, strict: bool = False) -> FrontEnd:
    """Parse, analyze, translate and check `source`; raise once if there are errors."""
    source = require_text(source)
    with SYMPY_LOCK:
        if len(source) > 2 * MAX_CHARS:
            # Over the limit even with every `\r\n` read as one character: rejected, and not cached
            # (512 cached texts of any length held their memory for ever; found by a review).
            _analyse(source, bool(strict))
            raise LossInternalError("a program over the size limit was not rejected")
        result = _front_end_cached(source, bool(strict))
    if isinstance(result, LossError):
        # A copy: the cached error is shared, and raising an exception writes to it.
        raise copy.copy(result) from None
    return result


@functools.lru_cache(maxsize=512)
def _front_end_cached(source: str, strict: bool) -> FrontEnd | LossError:
    """The front end of `source`, or its error: errors are cached too, so that `check()` after a
    failed `compile()` (as the CLI and editors do) costs a look-up, not a second analysis."""
    try:
        return _analyse(source, strict)
    except LossError as err:
        return err


def _analyse(source: str, strict: bool) -> FrontEnd:
    _ensure_recursion_room()
    too_deep = (
        "the program is nested too deeply, or is too intricate, to analyse"
        " (SymPy's simplification ran past its recursion limit)"
    )
    with contained("analyse", source, too_deep):
        try:
            program = parse(source)
            resolved = analyze(program, source)
            if resolved.errors:
                raise _combined([e.as_diagnostic() for e in resolved.errors], source)
            symbolic = to_sympy(resolved)
            diagnostics = run_checks(resolved, symbolic)
        except LossError as err:
            if not err.diagnostics:
                err.diagnostics = (err.as_diagnostic(),)
            raise err.with_source(source) from None
    if strict:
        diagnostics = [_promote(d) for d in diagnostics]
    if any(d.level == "error" for d in diagnostics):
        raise _combined(diagnostics, source)
    return FrontEnd(resolved, symbolic, tuple(diagnostics))


def _promote(diagnostic: Diagnostic) -> Diagnostic:
    if diagnostic.level != "warning":
        return diagnostic
    return Diagnostic(
        "error",
        diagnostic.message + " (an error under strict=True)",
        diagnostic.line,
        diagnostic.column,
        _STRICT.get(diagnostic.code, "domain"),
        diagnostic.span,
        diagnostic.source,
    )


def refused(warnings: list[Diagnostic], source: str) -> LossError:
    """The error that `warnings` of `source` are under strict=True."""
    return _combined([_promote(d) for d in warnings], source)


def _combined(diagnostics: list[Diagnostic], source: str) -> LossError:
    """One error of the class of the first error diagnostic, carrying all of them in order of position.

    (Semantic analysis finds some errors only after the walk, e.g. a second
    use of y_true beside onehot; sorting keeps `str(err)`, which lists them,
    starting with the one whose place the error carries.)
    """
    diagnostics = sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0))
    errors = [d for d in diagnostics if d.level == "error"]
    first = errors[0]
    cls = ERROR_CLASSES.get(first.code, LossError)
    return cls(
        first.message,
        first.line,
        first.column,
        span=first.span,
        source=source,
        diagnostics=tuple(diagnostics),
    )


_recursion_lock = threading.Lock()


def _ensure_recursion_room() -> None:
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        with _recursion_lock:
            if sys.getrecursionlimit() < _RECURSION_LIMIT:
                sys.setrecursionlimit(_RECURSION_LIMIT)
