r"""A program's text from where the command line takes it: a FILE, standard input (`-`) or `-e`.
Each is read as Python reads a text file (a byte-order mark dropped, `\r\n` and `\r` read as
`\n`), so that the three give the same diagnostics, at the columns an editor shows."""

from __future__ import annotations

import os
import select
import shlex
import sys

from lossdsl.arguments import UsageError
from lossdsl.errors import LossLimitError
from lossdsl.parse import MAX_CHARS


def read_program(args) -> tuple[str, str]:
    """(source, label) from -e, a file or standard input."""
    if getattr(args, "program", None) is not None:
        if args.file is not None:
            raise UsageError("give either FILE or -e PROGRAM, not both")
        if (
            len(args.program) > 1
        ):  # the last one alone was compiled, silently (a spec audit)
            raise UsageError(
                f"give one -e PROGRAM, not {len(args.program)}: `{args.command}` takes one program"
            )
        return read_argument(args.program[0]), "<-e>"
    if args.file is None:
        raise UsageError("give a FILE, - for standard input, or -e PROGRAM")
    return read_file(args.file)


# The most bytes a program within the size limit can take: four per character in UTF-8 and a BOM.
# A FILE or standard input is read no further (`lossdsl check /dev/zero` read until memory ran out).
MAX_BYTES = 4 * MAX_CHARS + 3


def _decoded(data: bytes, label: str) -> str:
    """`data` (at most MAX_BYTES + 1 bytes read) as UTF-8 text, or LossLimitError where it is longer
    than any program within the limit."""
    if len(data) > MAX_BYTES:
        raise LossLimitError(
            f"{label} holds more than {MAX_BYTES:,} bytes; the limit is {MAX_CHARS:,} characters"
        )
    return data.decode("utf-8-sig")


def read_argument(program: str) -> str:
    """An -e PROGRAM as read; bytes that are not UTF-8 (which Python escapes in arguments) are a
    usage error, as in a FILE."""
    if any("\udc80" <= ch <= "\udcff" for ch in program):
        # Under a locale that is not UTF-8 (LANG=C without Python's UTF-8 mode) Python escapes every
        # byte past ASCII, UTF-8 too (`-e "abs(é)"` was "not UTF-8 text"; fuzzing): the bytes given.
        try:
            program = os.fsencode(program).decode("utf-8")
        except (UnicodeError, ValueError):
            raise UsageError("-e PROGRAM is not UTF-8 text") from None
    return as_read(program)


def read_file(name: str, formula_hint: bool = True) -> tuple[str, str]:
    """(text, label) of a file, or of standard input for -; both read as `as_read` says.
    `formula_hint`: a missing FILE that reads as a formula says where one goes (not for `docs`,
    whose sections are named after files)."""
    if name == "-":
        return as_read(_standard_input()), file_label(name)
    try:  # the name as given: Path drops a trailing slash, and `good.loss/` read the file (a review)
        with open(name, "rb") as stream:
            return as_read(_decoded(stream.read(MAX_BYTES + 1), name)), file_label(name)
    except FileNotFoundError:
        raise UsageError(
            f"no such file: {name}{_formula_hint(name) if formula_hint else ''}"
        ) from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a directory, not a .loss file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text") from None
    except OSError as err:
        raise UsageError(f"cannot read {name}: {err.strerror}") from None


def file_label(name: str) -> str:
    """How diagnostics name the program read from FILE `name`."""
    return "<stdin>" if name == "-" else name


def _formula_hint(name: str) -> str:
    """For a missing FILE that reads as a formula (`lossdsl check 'log(y_pred)'`, a newcomer's first
    try): where a program written out goes."""
    if name.endswith(".loss") or not any(ch in name for ch in "()+*^"):
        return ""
    return f"; a program written out goes after -e: -e {shlex.quote(name)}"


def _standard_input() -> str:
    """Standard input as UTF-8 text, as a FILE is read (not the locale's codec, whose escapes of
    bytes that are not UTF-8 reached the parser as characters U+DC80-U+DCFF)."""
    if sys.stdin is None:  # closed when Python started (`lossdsl check - <&-`)
        raise UsageError("standard input is closed")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # replaced by a text stream (a test, an embedding application)
        text = sys.stdin.read(MAX_CHARS + 2)
        if len(text) > MAX_CHARS + 1:  # a BOM, then more than the limit
            raise LossLimitError(
                f"standard input holds more than {MAX_CHARS:,} characters, the limit"
            )
        return text
    try:
        return _decoded(_read_to_end(stream, MAX_BYTES + 1), "standard input")
    except UnicodeDecodeError:
        raise UsageError("standard input is not UTF-8 text") from None
    except (
        OSError
    ) as err:  # open but not for reading (`lossdsl check - 0>/dev/null`), as a FILE
        raise UsageError(f"cannot read standard input: {err.strerror or err}") from None


def _read_to_end(stream, limit: int) -> bytes:
    """Up to `limit` bytes of a binary stream, to its end. On a descriptor left non-blocking by the
    process that started lossdsl, a read gives None while nothing has come and stops at what has
    (an internal TypeError, or a program checked as the `abs(e` written so far; a review): there,
    read on, waiting for more, to the end."""
    try:
        descriptor = stream.fileno()
        blocking = os.get_blocking(descriptor)
    except (OSError, ValueError, AttributeError):  # no descriptor: a stream in memory
        blocking = True
    if blocking:
        return stream.read(limit)
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(limit - size)
        if chunk is None:  # nothing yet
            select.select([descriptor], [], [])
        elif not chunk:  # the end
            break
        else:
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def as_read(text: str) -> str:
    """A program as a text file reads: without a leading BOM, with `\r\n` and `\r` as `\n`.

    (`open()`'s universal newlines and the utf-8-sig codec do this for a FILE;
    standard input and `-e` get the same, so that the caret block of a
    diagnostic shows the right line. The parser itself accepts either form.)
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def inline_labels(programs: list[str]) -> list[str]:
    """How diagnostics name programs given with -e: `<-e>`, or `<-e 1>`, `<-e 2>`, ... for several
    (each was `<-e>`; a review)."""
    return (
        ["<-e>"]
        if len(programs) == 1
        else [f"<-e {i}>" for i in range(1, len(programs) + 1)]
    )


def stdin_once(files: list[str]) -> None:
    if (
        files.count("-") > 1
    ):  # the second read found nothing: "unexpected end of the program"
        raise UsageError("standard input can be read once: give - at most once")
