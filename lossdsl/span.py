"""Source positions and caret rendering.

A `Span` is a half-open range of character offsets into the program text,
with the 1-based line and column of its start and end. `caret_block` draws
the source line with a caret under a span, as every error and diagnostic
shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A range of the program text: offsets plus 1-based line/column."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def at_offset(cls, text: str, offset: int, length: int = 1) -> Span:
        """The span of `length` characters at `offset` in `text`."""
        offset = max(0, min(offset, len(text)))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        end = min(len(text), offset + max(length, 0))
        return cls(offset, end, line, column, line, column + (end - offset))

    def combine(self, other: Span) -> Span:
        """The smallest span covering both."""
        first = self if self.start <= other.start else other
        last = self if self.end >= other.end else other
        return Span(
            first.start,
            last.end,
            first.line,
            first.column,
            last.end_line,
            last.end_column,
        )


def source_lines(text: str) -> list[str]:
    """The lines of `text` as the parser counts them: split at "\r\n", "\r" and "\n" only.

    (`str.splitlines` also splits at form feeds, U+2028 and others, which
    the grammar treats as white space or rejects; the caret would land on
    the wrong line.)
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_line(text: str, line: int) -> str:
    """Line `line` (1-based) of `text`, without its newline; "" if absent."""
    lines = source_lines(text)
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return ""


WINDOW = 76


def caret_block(text: str, line: int | None, column: int | None, width: int = 1) -> str:
    """The source line and a caret line under `column`, indented by four spaces.

    Tabs before the column are kept so that the caret lines up in a terminal.
    Returns "" when there is no position or no such line (an empty program has an empty line 1).
    """
    if line is None or column is None:
        return ""
    src = source_line(text, line)
    if not src and line > max(1, len(source_lines(text))):
        return ""
    src = "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in src)
    if len(src) > WINDOW:
        # Show a window of the line around the column.
        first = max(0, min(column - 1 - WINDOW // 2, len(src) - WINDOW))
        src = (
            ("..." if first else "")
            + src[first : first + WINDOW]
            + ("..." if first + WINDOW < len(src) else "")
        )
        column = column - first + (3 if first else 0)
    pad = "".join("\t" if ch == "\t" else " " for ch in src[: column - 1])
    pad += " " * max(0, column - 1 - len(src))
    width = max(1, min(width, len(src) - column + 1 if column <= len(src) else 1))
    return f"    {src}\n    {pad}^{'~' * (width - 1)}"
