"""The lossdsl AST: frozen dataclasses that hold data only.

Every node has a `span` (excluded from comparison, so tests compare
structure). Sums and products are n-ary chains that keep the user's order of
operands and operators, which the LaTeX printer needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lossdsl.span import Span

_NO_SPAN = Span(0, 0, 1, 1, 1, 1)


@dataclass(frozen=True)
class Node:
    """Base of all nodes."""

    @property
    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal; `text` is how the user wrote it."""

    value: float
    text: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Name(Node):
    """A reference to a name: an input, a builtin constant, a parameter or a binding."""

    id: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Unary(Node):
    """`-x` or `+x`."""

    op: str
    operand: Node
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Chain(Node):
    """`a + b - c` (kind "add") or `a * b / c` (kind "mul"): operands with the operators between them."""

    kind: str
    operands: tuple[Node, ...]
    ops: tuple[str, ...]
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Power(Node):
    """`base ^ exponent` (also written `**`)."""

    base: Node
    exponent: Node
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.base, self.exponent)


@dataclass(frozen=True)
class Compare(Node):
    """`a < b` and the other comparisons: a condition."""

    op: str
    left: Node
    right: Node
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class BoolOp(Node):
    """`a and b and c` or `a or b`: a condition."""

    op: str
    operands: tuple[Node, ...]
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Not(Node):
    """`not a`: a condition."""

    operand: Node
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Call(Node):
    """`f(a, ...)`; `name_span` covers the function name."""

    func: str
    args: tuple[Node, ...]
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True)
class Vector(Node):
    """`[0.3, 0.7]`: a constant vector along the last axis."""

    items: tuple[Node, ...]
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True)
class Assign(Node):
    """`name = value`."""

    name: str
    value: Node
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (self.value,)


@dataclass(frozen=True)
class Param(Node):
    """`param name = number`."""

    name: str
    default: float
    text: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    value_span: Span = field(
        default=_NO_SPAN, compare=False, repr=False
    )  # the default's number


@dataclass(frozen=True)
class Program(Node):
    """Statements, then the loss expression; `description` is the leading comment block."""

    statements: tuple[Assign | Param, ...]
    result: Node
    description: str = ""
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return (*self.statements, self.result)


def walk(node: Node):
    """Every node under `node` (itself included), parents before children, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))
