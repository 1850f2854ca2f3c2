"""Printed Python: `Code` (text and the precedence of its outermost operator), number
literals, and the layout of lines as `ruff format` keeps it (88 columns)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from lossdsl.errors import KerasEmitError

LINE_LENGTH = 88
BODY_INDENT = " " * 8
# The extra indentation of a fused call(): its forward and backward functions.
NESTED_INDENT = " " * 4

# Python operator precedence, loosest to tightest.
PREC_ADD, PREC_MUL, PREC_UNARY, PREC_ATOM = 10, 20, 30, 100


@dataclass(frozen=True)
class Code:
    """Printed Python: its text and the precedence of its outermost operator."""

    text: str
    prec: int = PREC_ATOM


def unwrap(text: str) -> str:
    """`text` without parentheses that enclose all of it (`(a - b)` -> `a - b`)."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(text) - 1:
            return text  # `(a) * (b)`: the first parenthesis closes early
    return text[1:-1]


def indented(lines: list[str]) -> list[str]:
    return [NESTED_INDENT + line if line else "" for line in lines]


def is_name(text: str) -> bool:
    return text.isidentifier()


def float_literal(value) -> str:
    """A finite number as a Python float literal, in the form `ruff format` keeps."""
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise KerasEmitError(f"the constant {value} is not a finite number")
    return repr(number).replace("e+", "e")


def typed_number(code: Code) -> Code:
    """A number as a tensor of y_pred's dtype, converted from the Python float itself.

    Not `keras.ops.cast(0.1, dtype)`, nor the number as an argument of `keras.ops.where`,
    `equal`, `maximum` (or PyTorch's `clip`): those make a float32 tensor of it first, so that
    in float64 `0.1` was 0.10000000149 (`where(y_true == 0.1, ...)` took the wrong branch; the
    binary cross-entropy's fused gradient was 0 just inside its clip bounds, where the forward
    pass's clip kept the exact bound and the backward pass's comparison did not). Every number
    that float32 does not hold exactly is passed so, so that the passes agree on every backend.
    """
    return Code(
        f"keras.ops.convert_to_tensor({code.text}, dtype=y_pred.dtype)", PREC_ATOM
    )


TYPED_NUMBER = re.compile(
    r"keras\.ops\.convert_to_tensor\(([-0-9.e]+), dtype=y_pred\.dtype\)"
)


def exact_in_float32(text: str) -> bool:
    """Whether the float literal `text` is a float32 number (so no precision is lost through one)."""
    value = float(text)
    try:
        return struct.unpack("f", struct.pack("f", value))[0] == value
    except OverflowError:
        return False


def if_lines(test: str, indent: int) -> list[str]:
    """`if <test>:` at `indent`, split over lines as `ruff format` splits it where it is too long."""
    line = f"if {test}:"
    if indent + len(line) <= LINE_LENGTH:
        return [line]
    first, *rest = test.split(" or ")
    lines = ["if ("]
    for prefix, part in (("", first), *(("or ", part) for part in rest)):
        call = re.fullmatch(r"([\w.]+)\((.*)\)", part)
        if call and indent + len(NESTED_INDENT) + len(prefix + part) > LINE_LENGTH:
            # (a call too long for its line: its argument on a line of its own, as ruff puts it)
            lines += [f"    {prefix}{call[1]}(", f"        {call[2]}", "    )"]
        else:
            lines.append(f"    {prefix}{part}")
    return [*lines, "):"]


def call_lines(
    name: str, function: str, arguments: list[str], indent: int
) -> list[str]:
    """`name = function(arguments)` at `indent`, split over lines as `ruff format` splits a call
    where it is too long: the arguments on one line of their own, else one per line."""
    joined = ", ".join(arguments)
    if indent + len(f"{name} = {function}({joined})") <= LINE_LENGTH:
        return [f"{name} = {function}({joined})"]
    if indent + len(NESTED_INDENT) + len(joined) <= LINE_LENGTH:
        return [f"{name} = {function}(", f"{NESTED_INDENT}{joined}", ")"]
    return [f"{name} = {function}(", *(f"{NESTED_INDENT}{a}," for a in arguments), ")"]


def wrap(code: Code, prec: int) -> str:
    return f"({code.text})" if code.prec < prec else code.text


def is_short(text: str) -> bool:
    """A name or a number: moving it to a temporary would not shorten anything."""
    return is_name(text) or is_number_text(text)


def is_number_text(text: str) -> bool:
    return bool(re.fullmatch(r"-?[0-9][0-9.e-]*", text))
