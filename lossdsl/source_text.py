"""A program's text as lines: the line breaks the parser reads, and the description.

Plain text, no grammar: the parser, the library and the Keras emitter each read the program's
leading comment lines (its description) by the one rule here.
"""

from __future__ import annotations

import re

BOM = "\ufeff"
_LONE_CR = re.compile(r"\r(?!\n)")


def lexer_text(text: str) -> str:
    """`text` as the lexer reads it: a leading BOM as a space, every `\r` not before `\n` as `\n`.

    The result has the length of `text`, character for character, so the
    offsets, lines and columns found in it are those of `text` as given (a
    BOM at the start is column 1 of line 1: it is a character of the str).
    """
    if text.startswith(BOM):
        text = " " + text[1:]
    if "\r" in text:
        text = _LONE_CR.sub("\n", text)
    return text


def description(text: str) -> str:
    """The leading comment lines of a program, without their `#` markers.

    Lines break where the parser breaks them (`lexer_text`: `\n`, `\r\n`, `\r`;
    not at the other breaks of `str.splitlines`, \x0b or U+2028), and a leading BOM is ignored.
    """
    lines = []
    for raw in split_description(text)[0]:
        body = raw.strip()[1:]
        lines.append(body[1:] if body.startswith(" ") else body)
    return "\n".join(lines).strip()


def split_description(text: str) -> tuple[list[str], list[str]]:
    """The program's lines (as `description` breaks them, `\r` dropped), split where its
    description ends: (the comment lines at its top, the blank lines among them left out, as
    LANGUAGE.md says blank lines carry no meaning; the rest, from the first line that is
    neither)."""
    lines = [raw.rstrip("\r") for raw in lexer_text(text).split("\n")]
    end = 0
    for number, line in enumerate(lines):
        if line.strip() and not line.strip().startswith("#"):
            break
        if line.strip():
            end = number + 1
    return [line for line in lines[:end] if line.strip()], lines[end:]
