r"""Inline LaTeX kept within the nesting that matplotlib's mathtext can parse.

mathtext's parser recurses into every group: a `\left( ... \right)` pair, a `{...}`, the
arguments of `\frac` and `\sqrt`. About 30 nested groups (22 nested fractions) exhaust
Python's default recursion limit, and mathtext raises RecursionError: 32 nested calls,
`sin(sin(...))`, which the language allows up to its depth limit of 200, did.

A string nested deeper than MATHTEXT_MAX_DEPTH groups is spelled flat instead: plain
delimiters for `\left( \right)` and `\left[ \right]` (mathtext reads a plain `(` as a
symbol, not a group), `\mathrm{abs}(x)` for `\left|x\right|` (plain bars nest
ambiguously: `y |y |\hat{y}||`; `\mathrm`, since KaTeX counts each `\operatorname`
against its 1,000 macro expansions), `a/b` for `\frac{a}{b}`, `(a)^{1/2}` for
`\sqrt{a}` (an operand of more than one token in parentheses), `\exp(x)` for `e^{x}`, and
`\cos(x)` for SymPy's `\cos{(x)}`. KaTeX reads both
spellings; strings within the depth are left as they are.
"""

from __future__ import annotations

import re

from lossdsl.emit.tex_notation import GRADIENT_LHS

# Nested groups a string may hold and keep its usual spelling. mathtext parsed 31 nested
# `\left(` and 22 nested `\frac` from a fresh interpreter (matplotlib 3.10); a caller's own
# frames (pytest, a figure's draw) take some of the limit, and a `\frac` costs more than a pair.
MATHTEXT_MAX_DEPTH = 12

_GROUP = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\[{}]|[{}]")
_SIZED_DELIMITER = re.compile(r"\\(?:left|right)(?=[()|\[\]])")
# A function's name followed by a brace group (`\\cos{`), not a command that reads the group as
# its argument (`\\sqrt{(x)}` is not `\\sqrt(x)`).
# (`\\operatorname{erf}{(x)}` too, and a power of one: `\\sin^{2}{(x)}`.)
_COMMAND_BRACE = re.compile(
    r"(?:\\(?:operatorname|mathrm)\{[a-zA-Z]+\}"
    r"|\\(?!(?:sqrt|frac|hat|bar|tilde|vec|overline|mathrm|mathit|mathbf|operatorname|text)(?![a-zA-Z]))[a-zA-Z]+)"
    r"(?:\^\{[^{}]*\})?\{(?=\()"
)
# An absolute value's braced argument: `\mathrm{abs}({`.
_ABS_BRACE = re.compile(r"\\mathrm\{abs\}\(\{")
# SymPy's exponential (`e^{x}`): an `e` that is not the end of a name or a command.
_EXPONENTIAL = re.compile(r"(?<![a-zA-Z\\])e\^\{")
_FLAT_HEADS = (r"\frac{", r"\sqrt{")
# The head of a gradient's string: a fraction at the top level, kept as written.
_DERIVATIVE = GRADIENT_LHS + " = "


def nesting_depth(tex: str) -> int:
    """The deepest nesting of groups (`{...}`, `\\left ... \\right`) in `tex`."""
    depth = deepest = 0
    for match in _GROUP.finditer(tex):
        token = match.group(0)
        if token in ("\\{", "\\}"):
            continue  # an escaped brace is a symbol
        if token in ("{", "\\left"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def within_mathtext_depth(tex: str) -> str:
    """`tex`, or where it nests deeper than MATHTEXT_MAX_DEPTH groups, its flat spelling."""
    if nesting_depth(tex) <= MATHTEXT_MAX_DEPTH:
        return tex
    head = _DERIVATIVE if tex.startswith(_DERIVATIVE) else ""
    # Bars nest ambiguously when plain (`y |y |\hat{y}||`, a review): an absolute value is a call.
    flat = tex[len(head) :].replace(r"\left|", r"\mathrm{abs}\left(").replace(r"\right|", r"\right)")
    flat = _SIZED_DELIMITER.sub("", flat)
    return head + _flat_fractions(_flat_groups(flat))


def _flat_groups(tex: str) -> str:
    r"""`tex` with the brace groups that have a flat equivalent spelled without braces.

    SymPy's braces around a function's parenthesised argument go (`\cos{(x)}` is `\cos(x)`;
    only after a command's name, where a group and what it holds read the same: after `^`,
    `{(x)}` is not `(x)`), and an exponential `e^{x}` is written `\exp(x)`.
    """
    braces = _partners(tex, "{", "}")
    parens = _partners(tex, "(", ")")
    edits: dict[int, tuple[int, str]] = {}  # index -> (characters replaced, replacement)
    for match in _COMMAND_BRACE.finditer(tex):
        opening = match.end() - 1
        closing = braces.get(opening)
        if closing is not None and parens.get(opening + 1) == closing - 1:
            edits[opening] = edits[closing] = (1, "")
    for match in _ABS_BRACE.finditer(tex):  # SymPy's `\left|{x}\right|`: the braces nest too
        opening = match.end() - 1
        closing = braces.get(opening)
        if closing is not None and parens.get(opening - 1) == closing + 1:
            edits[opening] = edits[closing] = (1, "")
    for match in _EXPONENTIAL.finditer(tex):
        closing = braces.get(match.end() - 1)
        if closing is not None:
            edits[match.start()] = (3, "\\exp(")
            edits[closing] = (1, ")")
    pieces = []
    index = 0
    for at in sorted(edits):
        length, replacement = edits[at]
        pieces += [tex[index:at], replacement]
        index = at + length
    return "".join(pieces) + tex[index:]


def _partners(tex: str, open_char: str, close_char: str) -> dict[int, int]:
    """The index of each unescaped `open_char` in `tex` -> the index of the one that closes it."""
    partners: dict[int, int] = {}
    stack: list[int] = []
    escaped = False
    for index, char in enumerate(tex):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == open_char:
            stack.append(index)
        elif char == close_char and stack:
            partners[stack.pop()] = index
    return partners


def _flat_fractions(tex: str) -> str:
    r"""`tex` with every `\frac{a}{b}` as `a/b` and every `\sqrt{a}` as `a^{1/2}`, innermost first.

    The rightmost head is always innermost: a fraction or root nested in another starts after
    it. Each step replaces one head, so the loop ends.
    """
    while True:
        start = max(tex.rfind(head) for head in _FLAT_HEADS)
        if start < 0:
            return tex
        first = start + len(r"\frac")  # both heads are five characters long
        end = _closing(tex, first)
        numerator = tex[first + 1 : end]
        if tex.startswith(r"\frac", start) and end + 1 < len(tex) and tex[end + 1] == "{":
            close = _closing(tex, end + 1)
            flat = f"{_operand(numerator)}/{_operand(tex[end + 2 : close])}"
            if _factor_follows(tex, close + 1):  # `a/b c` reads as a/(b c) as well as (a/b) c
                flat = f"({flat})"
        else:
            close = end
            flat = f"{_operand(numerator, base=True)}^{{1/2}}"
            if tex.startswith("^", close + 1):  # a power of the root: `(x^{1/2})^{3}`
                flat = f"({flat})"
        tex = tex[:start] + flat + tex[close + 1 :]


def _closing(tex: str, opening: int) -> int:
    """The index of the `}` that closes the `{` at `opening` (the end of `tex` if none does)."""
    depth = 0
    index = opening
    while index < len(tex):
        char = tex[index]
        if char == "\\":
            index += 2  # `\{`, `\}`, or a command's first letter: never a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return len(tex) - 1


def _operand(tex: str, base: bool = False) -> str:
    """`tex` as an operand of `/` (or the base of `^`): as it is where it is one atom (`x`,
    `\\hat{y}_{c}`, `\\mathrm{foo}`, `\\exp(x)`, `(a + b)`, with a subscript, and but for a base a
    superscript), else in parentheses: `\\mathrm{foo}\\,\\hat{y}` and `\\log\\sum_{c} x` run on
    to the right (each was written bare: `\\hat{y}/\\mathrm{foo}\\,\\mathrm{bar}` for
    y_pred / (foo * bar); a review).
    """
    tex = tex.strip()
    return tex if _atomic(tex, base) else f"({tex})"


_WORD = re.compile(r"\\[a-zA-Z]+|[A-Za-z]|\d+(?:\.\d+)?")


def _atomic(tex: str, base: bool) -> bool:
    """Whether `tex` is one atom (see `_operand`)."""
    if tex.startswith("("):
        at = _partners(tex, "(", ")").get(0)
        if at is None:
            return False
        at += 1
    else:
        word = _WORD.match(tex)
        if word is None:
            return False
        at = word.end()
        if word.group().startswith("\\") and tex.startswith("{", at):  # `\hat{y}`, `\mathrm{foo}`
            at = _closing(tex, at) + 1
        if tex.startswith("(", at):  # a function's application: `\exp(x)`, `\mathrm{relu}(x)`
            close = _partners(tex, "(", ")").get(at)
            if close is None:
                return False
            at = close + 1
    while at < len(tex):
        mark = tex[at]
        if mark == "'":
            at += 1
        elif mark == "_" or (mark == "^" and not base):
            if tex.startswith("{", at + 1):
                at = _closing(tex, at + 1) + 1
            else:
                word = _WORD.match(tex, at + 1)
                if word is None:
                    return False
                at = word.end()
        else:
            return False
    return True


# What may follow a flat fraction without reading as a factor of its denominator.
_NO_FACTOR = re.compile(
    r"\s*(?:$|[-+=<>)\]|},&]|\\(?:right|le|leq|ge|geq|ne|neq|not|wedge|vee|lor|land|quad|\\)(?![a-zA-Z]))"
)


def _factor_follows(tex: str, at: int) -> bool:
    """Whether what follows index `at` of `tex` is a factor (or a power) of what precedes it."""
    return _NO_FACTOR.match(tex, at) is None
