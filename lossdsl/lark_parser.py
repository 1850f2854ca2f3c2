"""The LALR parser of lossdsl's grammar (grammar/lossdsl.lark), built once and shared.

The grammar is loaded from the installed package or from the checkout. A post-lexer turns
newlines and `;` into statement separators (newlines inside brackets are dropped) and stops
bracket nesting past MAX_DEPTH before any tree is built. `parse.py` turns the parser's trees into
nodes, and `syntax_errors.py` reads the text with it again to say what was expected.
"""

from __future__ import annotations

import operator
import threading
from importlib import resources
from pathlib import Path

from lark import Lark, Token
from lark.parse_tree_builder import ExpandSingleChild, PropagatePositions

from lossdsl.errors import LossLimitError
from lossdsl.forking import hold_across_fork
from lossdsl.span import Span

MAX_DEPTH = 200
GRAMMAR_FILE = "lossdsl.lark"


def grammar_text() -> str:
    """The grammar, from the installed package first, then from the checkout."""
    try:
        return (
            resources.files("lossdsl")
            .joinpath("grammar")
            .joinpath(GRAMMAR_FILE)
            .read_text(encoding="utf-8")
        )
    except (FileNotFoundError, NotADirectoryError, OSError):
        pass
    checkout = Path(__file__).resolve().parent.parent / "grammar" / GRAMMAR_FILE
    return checkout.read_text(encoding="utf-8")


class _Separators:
    """Post-lexer: newlines and `;` become SEP; newlines inside brackets vanish.

    Runs of separators collapse into one, and separators before the first and
    after the last statement are dropped. Bracket nesting beyond MAX_DEPTH
    raises `LossLimitError` here, before any tree is built.
    """

    always_accept = ("NEWLINE", "SEMICOLON")

    def process(self, stream):
        depth = 0
        pending = None
        started = False
        for tok in stream:
            if tok.type in ("NEWLINE", "SEMICOLON"):
                if tok.type == "NEWLINE" and depth > 0:
                    continue
                if started and pending is None:
                    pending = Token.new_borrow_pos("SEP", tok.value, tok)
                continue
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
                if depth > MAX_DEPTH:
                    raise LossLimitError(
                        f"brackets nested deeper than {MAX_DEPTH} levels",
                        span=token_span(tok),
                    )
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            if pending is not None:
                yield pending
                pending = None
            started = True
            yield tok


_parser: Lark | None = None
_parser_lock = threading.Lock()
hold_across_fork("parser", _parser_lock)


def parser() -> Lark:
    """The shared LALR parser, built on first use (thread-safe)."""
    global _parser
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                built = Lark(
                    grammar_text(),
                    start="program",
                    parser="lalr",
                    lexer="basic",
                    propagate_positions=True,
                    postlex=_Separators(),
                    maybe_placeholders=False,
                )
                _pass_through_unwrapped(built)
                _parser = built
    return _parser


def _pass_through_unwrapped(built: Lark) -> None:
    """Drop the position bookkeeping of the rules that only pass their one child up (`?expr: or_test`
    and the rest of the chain from `expr` down to `atom`, which every operand goes through).

    Lark wraps each rule's callback to set the positions of the tree it returns from its children;
    for such a rule that tree is the child itself, whose positions (and those of the brackets around
    it) it set when it was built: the wrapper recomputes each from itself, the same value, at every
    level of the chain. Without it, and with the child passed up by `itemgetter` (the reduction of a
    rule of one symbol has one child), the tree is the same, and Lark's parse about a fifth faster. (Where
    a Lark version builds its callbacks otherwise, nothing is changed.)"""
    callbacks = getattr(built, "_callbacks", None)
    if not isinstance(callbacks, dict):
        return
    for rule, callback in list(callbacks.items()):
        expansion = getattr(rule, "expansion", ())
        if (
            getattr(rule.options, "expand1", False)
            and not rule.alias
            and len(expansion) == 1
            and not expansion[0].is_term
            and isinstance(callback, PropagatePositions)
            and callback.node_filter is None
            and isinstance(callback.node_builder, ExpandSingleChild)
        ):
            callbacks[rule] = operator.itemgetter(
                0
            )  # (its one child, as ExpandSingleChild returns it)


def token_span(tok: Token) -> Span:
    """The place of one token in the text."""
    return Span(
        tok.start_pos, tok.end_pos, tok.line, tok.column, tok.end_line, tok.end_column
    )
