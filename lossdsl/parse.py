"""Stage 1: program text -> `nodes.Program`.

The grammar (grammar/lossdsl.lark, LALR) is loaded once from the installed
package or from the checkout. A post-lexer turns newlines and `;` into
statement separators (newlines inside brackets are dropped). Lark's errors
become `LossSyntaxError`s that name the expected tokens in words
(`syntax_errors.py` writes the message and its hint).

Limits enforced here: 10,000 characters of text and a nesting depth of 200
(brackets, calls and nested operations alike); beyond them a `LossLimitError`.
The tree is transformed without recursion, so no input can exhaust the stack.

Every entry point (the API, the command line's `-e`, standard input and
files) comes through `parse`, so the text's normalization lives here
(`source_text.lexer_text`): a leading byte-order mark is ignored, and `\r\n`,
`\r` and `\n` are line breaks alike (Python's universal newlines). It keeps
the text's length, so every offset, line and column is one of the text as given.
"""

from __future__ import annotations

import operator
import threading
from importlib import resources
from pathlib import Path

from lark import Lark, Token, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError
from lark.parse_tree_builder import ExpandSingleChild, PropagatePositions
from lark.visitors import Transformer_NonRecursive

from lossdsl import nodes
from lossdsl.api_arguments import require_text
from lossdsl.errors import LossError, LossLimitError, LossSyntaxError
from lossdsl.forking import hold_across_fork
from lossdsl.source_text import description, lexer_text
from lossdsl.span import Span

MAX_CHARS = 10_000
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
                        span=_tok_span(tok),
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


def parse(text: str) -> nodes.Program:
    """Parse a program into nodes; raises `LossSyntaxError` or `LossLimitError`."""
    text = require_text(text)
    given, text = text, lexer_text(text)
    if len(text) > MAX_CHARS:
        span = Span.at_offset(text, MAX_CHARS)
        raise LossLimitError(
            f"the program is {len(text):,} characters long; the limit is {MAX_CHARS:,}",
            span=span,
            source=given,
        )
    try:
        tree = parser().parse(text)
        program = _ToNodes(text).transform(tree)
    except UnexpectedInput as err:
        # (imported here: the messages read the text again with `parser()`, so that module imports this one)
        from lossdsl.syntax_errors import syntax_error

        raise syntax_error(text, err).with_source(given) from None
    except VisitError as err:
        inner = err.orig_exc
        if isinstance(inner, LossError):
            raise inner.with_source(given) from None
        raise LossSyntaxError(
            f"cannot read the program: {inner}", source=given
        ) from None
    except LossError as err:
        raise err.with_source(given) from None
    except LarkError as err:  # any other parser failure is still a syntax error
        raise LossSyntaxError(f"cannot read the program: {err}", source=given) from None
    return program


# ---------------------------------------------------------------- tree -> nodes


def _span(meta) -> Span:
    return Span(
        meta.start_pos,
        meta.end_pos,
        meta.line,
        meta.column,
        meta.end_line,
        meta.end_column,
    )


def _tok_span(tok: Token) -> Span:
    return Span(
        tok.start_pos, tok.end_pos, tok.line, tok.column, tok.end_line, tok.end_column
    )


def _number(tok: Token, sign: str = "", span: Span | None = None) -> nodes.Number:
    """The number of `tok`, with `sign` before it; `span` covers both (the token's by default)."""
    text = sign + tok.value
    value = float(text)
    span = span or _tok_span(tok)
    if value in (float("inf"), float("-inf")):
        raise LossLimitError(
            f"the number {_shown(text)} is too large for a float", span=span
        )
    if value == 0 and any(digit in "123456789" for digit in text.lower().split("e")[0]):
        # 1e-400 is 0 in floats: said here, not as "its terms in y_pred cancel" (found by fuzzing)
        raise LossLimitError(
            f"the number {_shown(text)} is too small for a float (it would be 0)",
            span=span,
        )
    return nodes.Number(value, text, span=span)


def _shown(text: str, limit: int = 24) -> str:
    """A number as a message shows it: long ones (thousands of digits) cut in the middle."""
    if len(text) <= limit:
        return text
    return f"{text[:12]}...{text[-6:]} ({len(text):,} characters)"


@v_args(meta=True)
class _ToNodes(Transformer_NonRecursive):
    """Lark tree -> nodes, checking the nesting depth as it builds bottom-up."""

    def __init__(self, text: str) -> None:
        # (tokens are passed on as they are: no method is named for a terminal, and Lark looking one
        # up for each token raised an AttributeError per token)
        super().__init__(visit_tokens=False)
        self.text = text
        self.depth: dict[int, int] = {}

    def _node(self, node: nodes.Node) -> nodes.Node:
        # Levels of operations: a name or a number is 0, `abs(y_pred)` 1, 200 nested calls 200.
        depth = 1 + max((self.depth.get(id(c), 0) for c in node.children), default=-1)
        if depth > MAX_DEPTH:
            raise LossLimitError(
                f"the expression is nested deeper than {MAX_DEPTH} levels",
                span=node.span,
            )
        self.depth[id(node)] = depth
        return node

    # ---- leaves
    def number(self, meta, children):
        return self._node(_number(children[0]))

    def signed_number(self, meta, children):
        sign, tok = children
        # placed at the sign, as the float32 check places its warning (a mutation audit: an
        # underflow was placed one past it)
        return _number(tok, sign.value, span=_span(meta))

    def name(self, meta, children):
        return self._node(nodes.Name(children[0].value, span=_tok_span(children[0])))

    # ---- operators
    def add_chain(self, meta, children):
        return self._chain("add", meta, children)

    def mul_chain(self, meta, children):
        return self._chain("mul", meta, children)

    def _chain(self, kind, meta, children):
        operands = tuple(children[0::2])
        ops = tuple(tok.value for tok in children[1::2])
        return self._node(nodes.Chain(kind, operands, ops, span=_span(meta)))

    def unary(self, meta, children):
        sign, operand = children
        return self._node(nodes.Unary(sign.value, operand, span=_span(meta)))

    def power(self, meta, children):
        base, _, exponent = children
        return self._node(nodes.Power(base, exponent, span=_span(meta)))

    def compare(self, meta, children):
        left, op, right = children
        return self._node(nodes.Compare(op.value, left, right, span=_span(meta)))

    def and_op(self, meta, children):
        return self._node(nodes.BoolOp("and", tuple(children), span=_span(meta)))

    def or_op(self, meta, children):
        return self._node(nodes.BoolOp("or", tuple(children), span=_span(meta)))

    def not_op(self, meta, children):
        return self._node(nodes.Not(children[0], span=_span(meta)))

    def arguments(self, meta, children):
        return tuple(children)

    def call(self, meta, children):
        name = children[0]
        args = children[1] if len(children) > 1 else ()
        return self._node(
            nodes.Call(name.value, args, span=_span(meta), name_span=_tok_span(name))
        )

    def vector(self, meta, children):
        items = children[0] if children else ()
        return self._node(nodes.Vector(items, span=_span(meta)))

    # ---- statements
    def assign(self, meta, children):
        name, value = children
        return nodes.Assign(
            name.value, value, span=_span(meta), name_span=_tok_span(name)
        )

    def param(self, meta, children):
        name, number = children
        return nodes.Param(
            name.value,
            number.value,
            number.text,
            span=_span(meta),
            name_span=_tok_span(name),
            value_span=number.span,
        )

    def program(self, meta, children):
        items = [c for c in children if not isinstance(c, Token)]
        *statements, last = items
        for item in statements:
            if not isinstance(item, (nodes.Assign, nodes.Param)):
                raise LossSyntaxError(_not_last(last), span=item.span)
        if isinstance(last, (nodes.Assign, nodes.Param)):
            raise LossSyntaxError(
                f"the program ends with a {'parameter' if isinstance(last, nodes.Param) else 'binding'}"
                f" of `{last.name}`; its last line must be the loss expression",
                span=last.span,
            )
        return nodes.Program(
            tuple(statements), last, description(self.text), span=_span(meta)
        )


def _not_last(last: nodes.Node) -> str:
    """The message for an expression before the last line, given the program's last item."""
    if isinstance(last, nodes.Param):  # the loss first, then its declarations
        ending = f"`param {last.name}`"
    elif isinstance(last, nodes.Assign):
        ending = f"the binding of `{last.name}`"
    else:
        return "only the last line is the loss; bind this expression to a name (`name = ...`) or remove it"
    return (
        f"only the last line is the loss, and the program ends with {ending} (line {last.span.line}):"
        " declare parameters and bindings before the loss"
    )
