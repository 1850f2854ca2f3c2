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

from lossdsl.emit.tex_notation import GRADIENT_LHS, SUMMED_GRADIENT_LHS

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
# The heads of a gradient's string: a fraction at the top level, kept as written.
_DERIVATIVES = (GRADIENT_LHS + " = ", SUMMED_GRADIENT_LHS + " = ")


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
    head = next((head for head in _DERIVATIVES if tex.startswith(head)), "")
    # Bars nest ambiguously when plain (`y |y |\hat{y}||`, a review): an absolute value is a call.
    flat = (
        tex[len(head) :]
        .replace(r"\left|", r"\mathrm{abs}\left(")
        .replace(r"\right|", r"\right)")
    )
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
    edits: dict[
        int, tuple[int, str]
    ] = {}  # index -> (characters replaced, replacement)
    for match in _COMMAND_BRACE.finditer(tex):
        opening = match.end() - 1
        closing = braces.get(opening)
        if closing is not None and parens.get(opening + 1) == closing - 1:
            edits[opening] = edits[closing] = (1, "")
    for match in _ABS_BRACE.finditer(
        tex
    ):  # SymPy's `\left|{x}\right|`: the braces nest too
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
    for match in _ESCAPE_OR[(open_char, close_char)].finditer(tex):
        char = match.group()
        if char == open_char:
            stack.append(match.start())
        elif char == close_char and stack:
            partners[stack.pop()] = match.start()
    return partners


def _escape_or(*chars: str) -> re.Pattern:
    """A backslash and the character after it (an escape, or a command's first letter: never a
    group), or one of `chars`."""
    return re.compile(r"\\.|[" + re.escape("".join(chars)) + "]", re.DOTALL)


_ESCAPE_OR = {pair: _escape_or(*pair) for pair in (("{", "}"), ("(", ")"))}
# A fraction's or a root's head, a brace, or an escape (which `\\frac{` is not).
_FLAT_TOKEN = re.compile(r"\\(?:frac|sqrt)\{|\\.|[{}]", re.DOTALL)


def _flat_fractions(tex: str) -> str:
    r"""`tex` with every `\frac{a}{b}` as `a/b` and every `\sqrt{a}` as `a^{1/2}`, innermost first.

    One pass from left to right, with a stack of the groups open at each point: a group's text is
    spelled flat when it closes, so an operand is flat when its fraction is (a fraction rescanned
    for each head took 12-30 s over the 923 KB gradient of `mean(y_pred / ...)` nested 99 deep).
    What follows a fraction is read in `tex` as written, where a later fraction is still a head: a
    head, as its flat spelling, is a factor.
    """
    # Each open group: its kind ("{", "frac", "over", "sqrt"), the pieces of its text, and for
    # "over" (a denominator) the numerator's flat text.
    stack: list[tuple[str, list[str], str]] = [("", [], "")]
    index = 0
    while (match := _FLAT_TOKEN.search(tex, index)) is not None:
        stack[-1][1].append(tex[index : match.start()])
        index = match.end()
        token = match.group()
        if token in (r"\frac{", r"\sqrt{"):
            stack.append((token[1:5], [], ""))
        elif token == "{":
            stack.append(("{", [], ""))
        elif token == "}" and len(stack) > 1:
            kind, pieces, numerator = stack.pop()
            text = "".join(pieces)
            if kind == "{":
                text = f"{{{text}}}"
            elif kind == "frac" and tex.startswith("{", index):
                stack.append(("over", [], text))
                index += 1
                continue
            elif kind == "over":
                text = f"{_operand(numerator)}/{_operand(text)}"
                if _factor_follows(
                    tex, index
                ):  # `a/b c` reads as a/(b c) as well as (a/b) c
                    text = f"({text})"
            else:  # a root (or a fraction with no denominator)
                text = f"{_operand(text, base=True)}^{{1/2}}"
                if tex.startswith("^", index):  # a power of the root: `(x^{1/2})^{3}`
                    text = f"({text})"
            stack[-1][1].append(text)
        else:
            stack[-1][1].append(token)
    stack[-1][1].append(tex[index:])
    while (
        len(stack) > 1
    ):  # a group left open (never in the printers' LaTeX): as it was written
        kind, pieces, numerator = stack.pop()
        head = {
            "{": "{",
            "frac": r"\frac{",
            "sqrt": r"\sqrt{",
            "over": rf"\frac{{{numerator}}}{{",
        }[kind]
        stack[-1][1].append(head + "".join(pieces))
    return "".join(stack[0][1])


def _closing(tex: str, opening: int) -> int:
    """The index of the `}` that closes the `{` at `opening` (the end of `tex` if none does)."""
    closing = _partner(tex, opening, "{", "}")
    return len(tex) - 1 if closing is None else closing


def _partner(tex: str, opening: int, open_char: str, close_char: str) -> int | None:
    """The index of the `close_char` that closes the `open_char` at `opening`, if one does."""
    depth = 0
    for match in _ESCAPE_OR[(open_char, close_char)].finditer(tex, opening):
        char = match.group()
        if char == open_char:
            depth += 1
        elif char == close_char:
            depth -= 1
            if depth == 0:
                return match.start()
    return None


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
        at = _partner(tex, 0, "(", ")")
        if at is None:
            return False
        at += 1
    else:
        word = _WORD.match(tex)
        if word is None:
            return False
        at = word.end()
        if word.group().startswith("\\") and tex.startswith(
            "{", at
        ):  # `\hat{y}`, `\mathrm{foo}`
            at = _closing(tex, at) + 1
        if tex.startswith(
            "(", at
        ):  # a function's application: `\exp(x)`, `\mathrm{relu}(x)`
            close = _partner(tex, at, "(", ")")
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
