"""The error hierarchy and diagnostics.

Every error the compiler raises is a `LossError` (a `ValueError`) with the
1-based `line` and `column` of the part it is about (None where no place
applies), a `message`, and a `str()` that shows the source line with a caret.
Checks produce `Diagnostic` values; the pipeline raises once, listing every
error.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass, field, replace

from lossdsl.span import Span, caret_block

LEVELS = ("error", "warning", "note")


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler: level ("error", "warning" or "note"), message and place."""

    level: str
    message: str
    line: int | None
    column: int | None
    code: str = ""
    span: Span | None = field(default=None, compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown diagnostic level {self.level!r}")

    @classmethod
    def at(
        cls, level: str, code: str, message: str, span: Span, source: str
    ) -> Diagnostic:
        """A finding at `span` of `source`, its line and column the span's: how each check
        makes one."""
        return cls(level, message, span.line, span.column, code, span, source)

    def format(self, source: str | None = None) -> str:
        """`line:column: level: message`, then the source line with a caret."""
        text = self.source if source is None else source
        where = f"{self.line}:{self.column}: " if self.line is not None else ""
        block = caret_block(text, self.line, self.column, _width(self.span))
        head = f"{where}{self.level}: {self.message}"
        return f"{head}\n{block}" if block else head

    def __str__(self) -> str:
        return self.format()

    def _fields(self) -> tuple:
        return (self.level, self.message, self.line, self.column)

    def __iter__(self):
        """`level, message, line, column = diagnostic`: the four fields INTERFACE.md names, as a tuple
        (`len()` and indexing read them too; equality stays the dataclass's, with `code`)."""
        return iter(self._fields())

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index):
        return self._fields()[index]


class LossWarning(UserWarning):
    """A warning of the checks about a program made into a Keras object (`loss()`, `metric()`,
    `FormulaLoss`, `FormulaMetric`), where nobody reads `spec.diagnostics`: `str()` is the
    diagnostic with its caret. Silence it with `warnings.filterwarnings("ignore", category=...)`."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


# Longest excerpt of the program (a term, a name) that a message quotes whole.
MAX_EXCERPT = 120


def shorten(text: str, limit: int | None = None) -> str:
    """`text`, or its start and end around ` ... ` when it is longer than `limit` (default MAX_EXCERPT).

    Messages quote the user's names and terms; a program of 10,000 characters must
    not make a message of 30,000 (a dead term is quoted three times).
    """
    limit = MAX_EXCERPT if limit is None else limit
    if len(text) <= limit:
        return text
    tail = limit // 4
    return f"{text[: limit - tail - 5].rstrip()} ... {text[-tail:].lstrip()}"


def warn_of(diagnostics, prefix: str = "") -> None:
    """Each diagnostic of level "warning" as a `LossWarning` (its text after `prefix`), attributed to
    the first caller outside lossdsl (notes are not warned of: a kink is usually fine)."""
    for diagnostic in diagnostics:
        if diagnostic.level == "warning":
            warnings.warn(LossWarning(f"{prefix}{diagnostic}"), stacklevel=_outside())


def _outside() -> int:
    """The `stacklevel` of `warnings.warn`, called from `warn_of`, that names the first frame outside lossdsl."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE
    ):
        level, frame = level + 1, frame.f_back
    return level


def _width(span: Span | None) -> int:
    if span is None or span.end_line != span.line:
        return 1
    return max(1, span.end - span.start)


class LossError(ValueError):
    """Base of every error lossdsl raises for a bad program."""

    code = "error"

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        span: Span | None = None,
        source: str = "",
        diagnostics: tuple[Diagnostic, ...] = (),
    ) -> None:
        if span is not None and line is None:
            line, column = span.line, span.column
        self.message = message
        self.line = line
        self.column = column
        self.span = span
        self.source = source
        # (one Diagnostic is one, not the four fields it unpacks to)
        self.diagnostics = (
            (diagnostics,)
            if isinstance(diagnostics, Diagnostic)
            else tuple(diagnostics)
        )
        super().__init__(message)

    def with_source(self, source: str) -> LossError:
        """Attach the program text (for the caret), to the error and to each of its diagnostics
        made without it, and return self. (A diagnostic of an error raised before the text was at
        hand printed an empty line over its caret: `str(check("log([1, 0, 2]) * e")[0])`.)"""
        self.source = source
        self.diagnostics = tuple(
            d if d.source else replace(d, source=source) for d in self.diagnostics
        )
        return self

    def placed(self, span: Span | None, source: str) -> LossError:
        """Give an error raised without a place `span` (and the program text); return self."""
        if self.line is None and span is not None:
            self.span, self.line, self.column = span, span.line, span.column
        if not self.source:
            self.source = source
        return self

    def as_diagnostic(self) -> Diagnostic:
        """This error as an "error" diagnostic."""
        return Diagnostic(
            "error",
            self.message,
            self.line,
            self.column,
            self.code,
            self.span,
            self.source,
        )

    def __str__(self) -> str:
        others = [d for d in self.diagnostics if d.level == "error"]
        if len(others) <= 1:
            return self.as_diagnostic().format(self.source)
        return "\n".join(d.format(self.source) for d in others)

    def __reduce__(self):
        kwargs = {
            "span": self.span,
            "source": self.source,
            "diagnostics": self.diagnostics,
        }
        return (_rebuild, (type(self), self.message, self.line, self.column, kwargs))


def _rebuild(cls, message, line, column, kwargs):
    return cls(message, line, column, **kwargs)


class LossSyntaxError(LossError):
    """Text the grammar rejects; the message names the expected tokens."""

    code = "syntax"


class LossNameError(LossError):
    """An unknown, misplaced or rebound name or function; suggests the closest known one."""

    code = "name"


class LossTypeError(LossError):
    """Wrong arity, a condition used as a number, a bad onehot use, a bad parameter or class name."""

    code = "type"


class LossArgumentError(LossTypeError, TypeError):
    """An argument of lossdsl's API that it does not take: a keyword argument the loss does not
    declare, or a program that is not text. A LossTypeError, and a TypeError as Python's own for
    an unexpected keyword argument or an argument of the wrong type."""

    code = "type"


class UnknownLossError(LossNameError, KeyError):
    """No bundled loss has the name asked for: a LossNameError, and a KeyError as a mapping's
    failed lookup."""

    code = "name"


class NoPredictionDependenceError(LossError):
    """The loss does not depend on y_pred."""

    code = "no-prediction"


class NotDifferentiableError(LossError):
    """The loss or one of its terms has zero gradient almost everywhere."""

    code = "not-differentiable"


class LossLimitError(LossError):
    """Over the size, depth or constant-folding limits."""

    code = "limit"


class LossDomainError(LossError):
    """A domain warning (log, sqrt, division of a value that can reach 0) under `strict=True`."""

    code = "domain"


class KerasEmitError(LossError):
    """A program the Keras printer cannot express (a gap in lossdsl, not a user mistake)."""

    code = "emit"


class LossInternalError(LossError):
    """A program lossdsl cannot handle because of a gap in lossdsl (or SymPy), not a mistake in the program."""

    code = "internal"


ERROR_CLASSES = {
    cls.code: cls
    for cls in (
        LossSyntaxError,
        LossNameError,
        LossTypeError,
        NoPredictionDependenceError,
        NotDifferentiableError,
        LossLimitError,
        LossDomainError,
        LossInternalError,
    )
}


@contextlib.contextmanager
def contained(what: str, source: str, too_deep: str = ""):
    """Let only LossErrors out, as INTERFACE.md asks of every input: a RecursionError becomes a
    LossLimitError (`too_deep`, or one that says it could not `what`), anything else from SymPy
    or an emitter, a gap in lossdsl, a LossInternalError that names it."""
    try:
        yield
    except LossError:
        raise
    except RecursionError:
        message = (
            too_deep
            or f"the program is too intricate to {what} (SymPy ran past its recursion limit)"
        )
        raise LossLimitError(message, source=source) from None
    except Exception as err:  # noqa: BLE001 - the contract: nothing but a LossError escapes
        raise LossInternalError(
            f"lossdsl could not {what} this program ({type(err).__name__}: {err});"
            " this is a gap in lossdsl, not necessarily a mistake in the program",
            source=source,
        ) from None
