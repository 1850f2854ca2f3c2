"""Check: a binding that nothing reads, whose line the loss seems to continue, is noted.

A statement ends with its line, so `x = square(e)` with `  + abs(e)` on the
next line is the binding `x` and then the loss `+abs(e)`: the loss compiles,
and `x` is left out of the code (docs/decisions.md, "Bindings the code does
not read are left out"). Where the loss starts with a sign at the start of
the line after a binding that nothing reads, the user most likely meant one
expression over two lines: a note at the binding's name says how to write
that. (A parameter's line cannot go on: its default is a number.) Other
unread names get no diagnostic (a binding the loss does not read has none,
as it has no code), and this is a note, not a warning: such a program is
valid, and `strict=True` turns warnings into errors.
"""

from __future__ import annotations

from lossdsl import nodes
from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved
from lossdsl.span import source_line


def check_unused(resolved: Resolved) -> list[Diagnostic]:
    """A note at the name of the binding the loss's leading sign seems to continue, if unread."""
    result = resolved.result
    # (its first token, not its node: the sign of `+ 0.1 * abs(e)` binds tighter than the product)
    sign = resolved.source[result.span.start : result.span.start + 1]
    if sign not in ("+", "-") or not resolved.program.statements:
        return []
    binding = resolved.program.statements[-1]
    if not isinstance(binding, nodes.Assign) or binding.name in resolved.read:
        return []
    if result.span.line != binding.span.end_line + 1:
        return []
    if source_line(resolved.source, result.span.line)[: result.span.column - 1].strip():
        return []  # the sign is not the first thing on its line
    message = (
        f"`{binding.name}` is bound but never read, and the loss starts with `{sign}` on the next"
        " line: a statement ends with its line; to continue one on the next, wrap it in parentheses"
    )
    span = binding.name_span
    return [Diagnostic.at("note", "unused", message, span, resolved.source)]
