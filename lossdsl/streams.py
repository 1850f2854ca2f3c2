"""Standard output and error for the command line, each failing in words a user can read: a
closed pipe, a full disk or a closed descriptor is said in one line, never a traceback. What a
message shows of the user's text is escaped (`shown`)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator


class ClosedOutput(io.TextIOBase):
    """Standard output that the shell closed (`lossdsl latex -e X >&-`), where Python leaves
    `sys.stdout` None: a write fails as writing to a closed descriptor does (`cat`'s
    "write error: Bad file descriptor"), and main() reports it without a traceback."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text:
            return 0
        raise ClosedOutputError(f"cannot write to standard {self.name}: it is closed")


# What a message does not carry raw: control characters (a file named `a<ESC>[2J.loss` cleared
# the terminal when `check` named it, and one with a carriage return overwrote its own line) and
# the bidirectional overrides, which reorder what follows them. Tab and newline stay.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """`text` with what a terminal would act on escaped as Python escapes it (`\\x1b`, `\\u202e`):
    a message's file names, options and arguments are the user's."""
    return _UNSHOWABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class Unfailing:
    """Standard error whose writes cannot fail: where it is a closed pipe or a full disk
    (`lossdsl check 2>/dev/full`) what is said is lost, there being nowhere to say it, and the exit
    status stays the one it was for (the BrokenPipeError of printing a usage error made exit 2 a 1;
    a review). What is written is `shown`; everything else is the stream's own."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(shown(text))
        except (OSError, ValueError):  # ValueError: a stream already closed
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._discard()

    def _discard(self) -> None:
        """What the stream still buffers goes to /dev/null: Python's flush at exit failed on it
        again, and made the exit status 120 (a review)."""
        discard_output(self._stream)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class Output:
    """Standard output whose failed writes say what failed: a full disk (`lossdsl compile x.loss >
    /dev/full`) is `cannot write to standard output: No space left on device`, exit 1, where it was
    the catch-all's `failed: OSError: [Errno 28] ...` (a review of robustness). A closed pipe stays
    a BrokenPipeError, which ends the command quietly; everything else is the stream's own."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with _writing_output():
            return self._stream.write(text)

    def flush(self) -> None:
        with _writing_output():
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _writing_output() -> Iterator[None]:
    """A write to standard output, its failure said as `Output` says it (a closed pipe, or a
    failure said already, passed on as it is)."""
    try:
        yield
    except (BrokenPipeError, OutputError):
        raise
    except OSError as err:
        raise ClosedOutputError(
            f"cannot write to standard output: {err.strerror or err}"
        ) from err


def write_utf8(text: str) -> None:
    """A file's text (a Python module, a program) to standard output in UTF-8, the encoding of
    the file it stands for, whatever the locale's: under `LC_ALL=C` a program's non-ASCII
    description could not be encoded, and `lossdsl compile x.loss > x.py` failed."""
    try:
        sys.stdout.write(text)
    except (
        UnicodeEncodeError
    ):  # the whole text failed to encode: nothing of it was written
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            raise
        sys.stdout.flush()
        with _writing_output():  # (the buffer is the stream's own, under `Output`)
            buffer.write(text.encode("utf-8"))


def say(line: str) -> None:
    """A status line on standard output (`wrote é.py`), what its encoding cannot hold escaped, as
    Python escapes standard error's: under PYTHONIOENCODING=ascii a file's name past ASCII made a
    command that had written its file report a failure, and `check` stop at that file (a review).
    Control characters are `shown` escaped, as on standard error."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    line = shown(line)
    try:
        line = line.encode(encoding, "backslashreplace").decode(encoding)
    except (
        LookupError,
        UnicodeError,
    ):  # a codec Python does not know, or one that cannot escape
        line = line.encode("ascii", "backslashreplace").decode("ascii")
    print(line)


def closed_pipe() -> int:
    """Standard output was closed by its reader (`lossdsl library | head -1`): stop quietly, with
    the status of a process that SIGPIPE ended, as `cat` and `ls` do; what is still buffered goes
    to /dev/null, so that Python's flush at exit prints no error either."""
    discard_output()
    return 128 + 13  # SIGPIPE


def discard_output(stream=None) -> None:
    """What `stream` (standard output by default) still buffers goes to /dev/null: its reader has
    gone, or its disk is full."""
    try:
        descriptor = (stream or sys.stdout).fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)
    except (
        OSError,
        ValueError,
        AttributeError,
    ):  # no descriptor: a stream in memory (a test's capture)
        pass


class OutputError(Exception):
    """An output that cannot be written (its folder is missing, say): exit 1."""


class ClosedOutputError(OutputError, OSError):
    """A write to a closed standard output: an OSError too, which argparse's `--help` and
    `--version` pass over as they do a failed write (a traceback otherwise; a review)."""
