"""Syntax errors: Lark's `UnexpectedInput` turned into a `LossSyntaxError` with a position and a hint.

`syntax_error(text, err)` is called by `parse.parse` when the grammar rejects the text. The message
names what the grammar takes there in a user's words (`_expected_words`; for a character no token
takes, read from the parser fed the text before it, `_expected_before`), and a hint after a `;`
says what a Python, NumPy or LaTeX reader most likely meant (`_token_hint`, `_character_message`).
"""

from __future__ import annotations

import re
import unicodedata

from lark import Token
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
)

from lossdsl.errors import LossError, LossSyntaxError
from lossdsl.lark_parser import parser
from lossdsl.span import Span

# How each terminal is named in an error message.
TOKEN_WORDS = {
    "RPAR": "`)`",
    "LPAR": "`(`",
    "RSQB": "`]`",
    "LSQB": "`[`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "SIGN": "`+` or `-`",
    "MULDIV": "`*` or `/`",
    "POW": "`^`",
    "COMPARE": "a comparison",
    "AND": "`and`",
    "OR": "`or`",
    "NOT": "`not`",
    "PARAM": "`param`",
    "NAME": "a name",
    "NUMBER": "a number",
    "SEP": "a new line or `;`",
    "$END": "the end of the program",
}
_OPERATOR_TOKENS = {"SIGN", "MULDIV", "POW", "COMPARE", "AND", "OR"}
# Where one of these may follow, a comparison there chains onto one before it (`a < b < c`); where
# none may (an operand's place, a parameter's declaration), it is only out of place.
_CHAINING = {"MULDIV", "POW", "AND", "OR"}


def syntax_error(text: str, err: UnexpectedInput) -> LossSyntaxError:
    if isinstance(err, UnexpectedCharacters):
        offset = err.pos_in_stream
        ch = text[offset] if offset < len(text) else ""
        span = Span.at_offset(text, offset)
        expected = _expected_before(text, offset)
        return LossSyntaxError(
            _unexpected_character(ch, text[:offset], expected), span=span, source=text
        )
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            offset = _end_of_last_token(text)
            span = Span.at_offset(text, offset, 0)
            found = "end of the program"
        else:
            offset = tok.start_pos
            span = Span(
                tok.start_pos,
                tok.end_pos,
                tok.line,
                tok.column,
                tok.end_line,
                tok.end_column,
            )
            found = _describe_token(tok)
        if (
            tok.type == "COMPARE" and set(err.expected) & _CHAINING
        ):  # (where an operator goes)
            return LossSyntaxError(
                f"unexpected {found}: comparisons do not chain; join them with `and`",
                span=span,
                source=text,
            )
        opened = _open_bracket(text, offset)
        bracket = opened.type if opened is not None else None
        expected = _expected_words(set(err.expected), bracket)
        if opened is not None and span.line > opened.line:
            # A newline inside brackets is no statement's end: the statement on the next line was
            # read as part of the bracket's (`a = [1, 2` then `b = 3`: told a product needs `*`)
            hint = (
                f"; the `{opened.value}` at {opened.line}:{opened.column} is still open"
            )
        else:
            hint = _token_hint(text, tok, bracket)
        return LossSyntaxError(
            f"unexpected {found}: expected {expected}{hint}", span=span, source=text
        )
    return LossSyntaxError(f"cannot read the program: {err}", source=text)


# A parameter's declaration up to its number: what may come after it is the end of the statement.
_PARAM_PREFIX = re.compile(
    r"(?:^|[\r\n;])[ \t]*param[ \t]+\w+[ \t]*=[ \t]*[-+]?[ \t]*[0-9.]+(?:[eE][-+]?[0-9]+)?[ \t]*$"
)


# A parameter's declaration up to its `=` (`param w = [0.3, 0.7]`).
_PARAM_EQUALS = re.compile(r"(?:^|[\r\n;])[ \t]*param[ \t]+\w+[ \t]*=[ \t]*$")
# A statement that begins as a Python function does, up to the name after its keyword (`lambda
# y_true, y_pred: ...`, `return ...`), unless the program names a value so (`param lambda = 0.1`).
_PYTHON_FUNCTION = re.compile(r"(?:^|[\r\n;])[ \t]*(lambda|def|return)[ \t]+$")


# What Python's conditional is written as (here, and for `if` as a name or a function: `suggestions`).
NO_IF_HINT = "; lossdsl has no `if`: write `where(condition, a, b)`"
# A statement that begins with Python's `if` (or `elif`), up to a token in it.
_PYTHON_IF = re.compile(r"(?:^|[\r\n;])[ \t]*(?:el)?if\b[^\r\n;]*$")


def _token_hint(text: str, tok: Token, bracket: str | None) -> str:
    """What a Python or NumPy user most likely meant, for a token the grammar does not take there."""
    python = _PYTHON_FUNCTION.search(text, 0, tok.start_pos)
    if python and not re.search(
        rf"(?:^|[\r\n;])[ \t]*(?:param[ \t]+)?{python[1]}[ \t]*=", text
    ):
        return "; a program is the formula itself, not a Python function: write the expression alone (`abs(e)`)"
    if tok.value == "[" and _PARAM_EQUALS.search(text, 0, tok.start_pos):
        return "; a parameter is one number (a list of constants is bound without `param`: `w = [0.3, 0.7]`)"
    if tok.type == "EQUAL":
        return _equals_hint(text, tok, bracket)
    pair = (
        text[tok.start_pos - 1 : tok.start_pos + 1],
        text[tok.start_pos : tok.start_pos + 2],
    )
    if tok.type == "MULDIV" and any(p in ("//", "/*") for p in pair):
        return "; a comment starts with `#` (lossdsl has no `//` or `/* */`)"
    if tok.type == "NAME" and tok.value in ("if", "else"):
        return NO_IF_HINT
    # ... or anywhere in a statement that begins with `if` or `elif`, where the grammar took it as a
    # name (`if e > 0: e` stopped at the `e` with no hint, `if (e > 0) e` was told a product needs
    # `*`; reviews), unless the program binds that name
    if _PYTHON_IF.search(text, 0, tok.start_pos) and not re.search(
        r"(?:^|[\r\n;])[ \t]*(?:param[ \t]+)?(?:el)?if[ \t]*=", text
    ):
        return NO_IF_HINT
    if tok.type in ("SIGN", "MULDIV", "POW", "NAME", "LPAR") and _PARAM_PREFIX.search(
        text, 0, tok.start_pos
    ):
        return "; a parameter's default is one number (`param k = 0.5`); compute with it in a binding"
    for word in (tok.value, *re.findall(r"(\w+)[ \t]*$", text[: tok.start_pos])):
        # `AND`, `Param d = 1`; not a name the program binds (`Not = 2`)
        bound = re.search(
            rf"(?:^|[\r\n;])[ \t]*(?:param[ \t]+)?{re.escape(word)}[ \t]*=(?!=)", text
        )
        if (
            word.lower() in ("and", "or", "not", "param")
            and word != word.lower()
            and not bound
        ):
            return f"; keywords are lowercase: write `{word.lower()}`"
    called = text[tok.end_pos :].lstrip(" \t").startswith("(")
    if (
        tok.type == "NAME" and tok.value == "where" and not called
    ):  # `e^2 where e = ...`, as in Haskell or SQL
        return "; `where` is a function, `where(condition, a, b)`, and a binding is a statement before the loss"
    if (
        tok.type == "NAME"
        and tok.value[:1] == "_"
        and tok.value[1:].isdigit()
        and text[tok.start_pos - 1 : tok.start_pos].isdigit()
    ):
        return f"; numbers have no `_` between digits (write `{_digits_joined(text, tok)}`)"
    if (
        tok.type == "NAME" and called and _NUMBER_DOT.search(text, 0, tok.start_pos)
    ):  # `x^2.mean()`
        return f"; lossdsl has no attributes or methods: write `{tok.value}(x)`, not `x.{tok.value}()`"
    if tok.type in ("NAME", "LPAR") and _NUMBER_BEFORE.search(text, 0, tok.start_pos):
        if tok.value in ("e", "E") and text[tok.start_pos - 1 : tok.start_pos] in (
            *"0123456789",
            ".",
        ):
            # `1e * e`, `1e-e`: as likely an exponent with no digits (a review)
            return "; a product needs `*` (`2*e`, not `2e`), and a number's exponent needs digits (`1e-3`)"
        return "; a product needs `*` (`2*e`, not `2e` or `2 e`)"
    before = text[: tok.start_pos].rstrip(" \t")
    if tok.value == "[" and (before[-1:].isalnum() or before.endswith(("_", ")", "]"))):
        return "; lossdsl has no indexing: a loss reads whole rows (`sum`, `mean` and `max` reduce the last axis)"
    if tok.type in ("NAME", "LPAR", "NUMBER") and before.endswith(")"):
        # (a user test: `(1 - y_true) log(1 - y_pred)`)
        return (
            "; a product needs `*` (`(1 - y_true) * log(x)`, not `(1 - y_true) log(x)`)"
        )
    return ""


def _equals_hint(text: str, tok: Token, bracket: str | None) -> str:
    """For an unexpected `=`: a comparison's operator misspelt (`=>`, `>==`); inside a call's
    parentheses, a comparison written with one `=` (`where(y_true = 1, ...)`, a condition) or a
    keyword argument (`sum(x, axis=-1)`: a name alone before it)."""
    after, before = (
        text[tok.end_pos : tok.end_pos + 1],
        text[: tok.start_pos].rstrip(" \t"),
    )
    if after in ("<", ">", "!"):  # `=>`, `=<`, `=!`
        return f"; write `{after}=`"
    if before.endswith(("<=", ">=", "==", "!=")):  # `>==`
        return f"; write `{before[-2:]}`"
    if before.endswith(("<", ">")):  # `> =`
        return f"; write `{before[-1]}=` with no space"
    if bracket != "LPAR":
        return ""
    opened = _open_bracket(text, tok.start_pos)
    call = (
        re.search(r"(\w+)[ \t]*$", text[: opened.start_pos])
        if opened is not None
        else None
    )
    depth, commas, argument = 0, 0, []
    try:
        for t in (
            parser().lex(text[opened.end_pos : tok.start_pos], dont_ignore=False)
            if opened
            else ()
        ):
            depth += t.type in ("LPAR", "LSQB")
            depth -= t.type in ("RPAR", "RSQB")
            if depth == 0 and t.type == "COMMA":
                commas, argument = commas + 1, []
            elif t.type not in ("NEWLINE", "SEMICOLON"):
                argument.append(t)
    except LarkError:
        argument = []
    if call is not None and call[1] == "where" and commas == 0:
        return "; a comparison is written `==` (`where(y_true == 1, a, b)`)"
    if call is not None and len(argument) == 1 and argument[0].type == "NAME":
        return (
            "; calls take no keyword arguments (every reduction is over the last axis)"
        )
    return "; a comparison is written `==`"


def _digits_joined(text: str, tok: Token) -> str:
    """`1_000` as `1000`: the number before `tok` and the digits of `tok` (`_000`), without `_`."""
    number = re.search(
        r"[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?$", text[: tok.start_pos]
    ).group()
    return (number + tok.value).replace("_", "")


# A number just before a token (`2e`, `0.5 y_pred`, `2(e)`), and one that ends in a dot (`x^2.mean()`).
_NUMBER_BEFORE = re.compile(r"(?<![\w.])[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?[ \t]*$")
_NUMBER_DOT = re.compile(r"[0-9]\.$")


# Python's and C's spellings of what lossdsl writes otherwise (a user test).
_CHARACTER_HINTS = {
    "|": "; write `abs(x)` for |x|, and `or` for ||",
    "&": "; write `and`",
    "!": "; write `not` (`!=` is not equal)",
    "%": "; lossdsl has no remainder",
    "@": "; lossdsl has no matrix product (a loss is elementwise; `sum` reduces the last axis)",
    "?": "; lossdsl has no `c ? a : b`: write `where(c, a, b)`",
}
# A name just before a `.`: a module or an object (`np.log`, `K.mean`), not a number's point.
_NAME_BEFORE = re.compile(r"(?<![\w.])[A-Za-z_]\w*[ \t]*$")
# A parameter's name, then a colon (`param delta: 1.0`).
_PARAM_NAME = re.compile(r"(?:^|[\r\n;])[ \t]*param[ \t]+\w+[ \t]*$")


def _expected_before(text: str, offset: int) -> str:
    """What the grammar takes at `offset`, in a user's words (`_expected_words`), from the tokens
    before it; "" where they cannot be read (the lexer stopped at `offset`: what precedes it lexed,
    and the parser took it)."""
    opened = _open_bracket(text, offset)
    try:
        interactive = parser().parse_interactive(text[:offset])
        interactive.exhaust_lexer()
        accepted = set(interactive.accepts())
        if (
            opened is None
            and "SEP" in accepted
            and text[:offset].rstrip(" \t\f").endswith(("\n", ";"))
        ):
            # a separator before it, which `_Separators` holds back until a token follows it
            interactive.feed_token(Token("SEP", ";"))
            accepted = set(interactive.accepts())
    except (LarkError, LossError):
        return ""
    return (
        _expected_words(accepted, opened.type if opened is not None else None)
        if accepted
        else ""
    )


def _unexpected_character(ch: str, before: str = "", expected: str = "") -> str:
    """The message for a character the grammar has no token for; `before` is the text up to it,
    `expected` what the grammar takes there, in words ("" to leave it out)."""
    if not ch:
        return "unexpected end of the program"
    message = _character_message(ch, before)
    if expected:
        found, _, hint = message.partition(";")
        message = f"{found}: expected {expected}" + (f";{hint}" if hint else "")
    return message


def _character_message(ch: str, before: str) -> str:
    """`unexpected character ...`, with a hint after a `;` where one fits."""
    if ch.isprintable() and ch.isascii():
        hint = _CHARACTER_HINTS.get(ch, "")
        if ch in "\"'`":
            hint = "; lossdsl has no strings"
        elif ch == "." and _NAME_BEFORE.search(before):
            hint = "; lossdsl has no modules or attributes: call a function by its own name (`log(x)`, not `np.log(x)`)"
        elif ch == ".":
            hint = "; lossdsl has no attributes (numbers are written like 0.5)"
        elif ch == ":" and _PARAM_NAME.search(before):
            hint = "; a parameter is declared with `=`: `param delta = 1.0`"
        elif ch == ":" and _PYTHON_IF.search(
            before
        ):  # `if(e > 0): e`, read as a call up to the colon
            hint = NO_IF_HINT
        return f"unexpected character `{ch}`{hint}"
    name = unicodedata.name(ch, "")
    code = f"U+{ord(ch):04X}"
    label = f"{code} {name}" if name else code
    hint = ""
    ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    if ch == "\u0177":  # ŷ, as the LaTeX writes the prediction
        hint = "; write `y_pred` (the LaTeX's ŷ)"
    elif (
        name.startswith("SUPERSCRIPT") and ascii_form.isdigit()
    ):  # `e²`: a power, not `e2`
        hint = f"; write a power as `^{ascii_form}`"
    elif name == "SUPERSCRIPT MINUS":  # `e⁻¹`
        hint = "; write a power as `^-1`"
    elif name.startswith("SUBSCRIPT") and ascii_form.isdigit():  # `e₂`: part of a name
        hint = f"; a subscript is part of a name, written with `_`: `x_{ascii_form}`"
    elif (
        ch in _MATH_SIGNS
    ):  # `e × 2`, `a ≤ b`, as a document or a word processor writes them (a review)
        hint = f"; did you mean `{_MATH_SIGNS[ch]}`?"
    elif "\u0338" in unicodedata.normalize(
        "NFKD", ch
    ):  # `≮`: a negated sign, not its ASCII base
        hint = ""
    elif ascii_form and ascii_form.isprintable():
        hint = f"; did you mean `{ascii_form}`?"
    elif "MINUS" in name or "DASH" in name or "HYPHEN" in name:
        hint = "; did you mean `-`?"
    elif name.startswith(("CYRILLIC", "GREEK")):
        hint = "; names use ASCII letters only"
    return f"unexpected character {label}{hint}"


# Signs of typeset math with an ASCII spelling in the language.
_MATH_SIGNS = {
    "\u00d7": "*",  # ×
    "\u00b7": "*",  # ·
    "\u22c5": "*",  # ⋅ (dot operator)
    "\u2217": "*",  # ∗ (asterisk operator)
    "\u2219": "*",  # ∙ (bullet operator)
    "\u2a7d": "<=",  # ⩽
    "\u2a7e": ">=",  # ⩾
    "\u00f7": "/",  # ÷
    "\u2215": "/",  # ∕ (division slash)
    "\u2264": "<=",  # ≤
    "\u2265": ">=",  # ≥
    "\u2260": "!=",  # ≠
    "\u226e": ">=",  # ≮ (not less than)
    "\u226f": "<=",  # ≯
    "\u2227": "and",  # ∧
    "\u2228": "or",  # ∨
    "\u00ac": "not",  # ¬
}


def _expected_words(expected: set[str], bracket: str | None) -> str:
    """The expected terminals in a user's words, given the innermost open bracket."""
    words: list[str] = []
    if "NAME" in expected:
        # where no number may stand either, only a name does: after `param`
        words.append("an expression" if "NUMBER" in expected else "a name")
    elif "NUMBER" in expected:
        words.append("a number")
    elif expected & _OPERATOR_TOKENS:
        words.append("an operator")
    if bracket == "LPAR" and "RPAR" in expected:
        words.append("`)`")
    if bracket == "LSQB" and "RSQB" in expected:
        words.append("`]`")
    if bracket and "COMMA" in expected:
        words.append("`,`")
    if (
        bracket is None
        and (expected & {"SEP", "$END"})
        and not (expected & {"NAME", "NUMBER"})
    ):
        words.append("the end of the statement")
    if not words:
        words = sorted(TOKEN_WORDS.get(t, t) for t in expected)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(tok: Token) -> str:
    if tok.type == "SEP":
        return "`;`" if tok.value == ";" else "end of line"
    if tok.type == "NAME":
        return f"name `{tok.value}`"
    if tok.type == "NUMBER":
        return f"number `{tok.value}`"
    return f"`{tok.value}`"


def _open_bracket(text: str, offset: int) -> Token | None:
    """The innermost bracket still open before `offset` (its token: type "LPAR" or "LSQB"), or None."""
    stack: list[Token] = []
    try:
        for tok in parser().lex(text[:offset], dont_ignore=False):
            if tok.type in ("LPAR", "LSQB"):
                stack.append(tok)
            elif tok.type in ("RPAR", "RSQB") and stack:
                stack.pop()
    except LarkError:
        return None
    return stack[-1] if stack else None


def _end_of_last_token(text: str) -> int:
    end = 0
    try:
        for tok in parser().lex(text, dont_ignore=False):
            if tok.type not in ("NEWLINE", "SEMICOLON"):
                end = tok.end_pos
    except LarkError:
        end = len(text.rstrip())
    return end
