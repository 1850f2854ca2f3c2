"""Stage 1: program text -> `nodes.Program`.

The parser (`lark_parser.py`: grammar/lossdsl.lark, LALR, with a post-lexer
for statement separators) reads the text; its tree becomes nodes here. Lark's
errors become `LossSyntaxError`s that name the expected tokens in words
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

from lark import Token, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError
from lark.visitors import Transformer_NonRecursive

from lossdsl import nodes
from lossdsl.api_arguments import require_text
from lossdsl.errors import LossError, LossLimitError, LossSyntaxError
from lossdsl.lark_parser import MAX_DEPTH, parser, token_span
from lossdsl.source_text import description, lexer_text
from lossdsl.span import Span
from lossdsl.syntax_errors import syntax_error

MAX_CHARS = 10_000


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


def _number(tok: Token, sign: str = "", span: Span | None = None) -> nodes.Number:
    """The number of `tok`, with `sign` before it; `span` covers both (the token's by default)."""
    text = sign + tok.value
    value = float(text)
    span = span or token_span(tok)
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
        return self._node(nodes.Name(children[0].value, span=token_span(children[0])))

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
            nodes.Call(name.value, args, span=_span(meta), name_span=token_span(name))
        )

    def vector(self, meta, children):
        items = children[0] if children else ()
        return self._node(nodes.Vector(items, span=_span(meta)))

    # ---- statements
    def assign(self, meta, children):
        name, value = children
        return nodes.Assign(
            name.value, value, span=_span(meta), name_span=token_span(name)
        )

    def param(self, meta, children):
        name, number = children
        return nodes.Param(
            name.value,
            number.value,
            number.text,
            span=_span(meta),
            name_span=token_span(name),
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
