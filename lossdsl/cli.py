"""The `lossdsl` command line: `main(argv) -> exit code`.

Exit codes: 0 success; 1 the program was rejected (diagnostics with carets
on stderr) or a command failed (an output that cannot be written: its folder
missing, say); 2 a usage error, an unreadable input file, or an output that
would overwrite an input. Nothing prints a Python traceback, and a command
that fails leaves no partial output behind.

Every program is read as Python reads a text file: a leading byte-order mark
dropped, `\r\n` and `\r` read as `\n`, whether it comes from a FILE, from
standard input or from `-e`; so the three give the same diagnostics, at the
columns an editor shows.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import select
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import lossdsl
from lossdsl import library
from lossdsl.errors import LossError, LossLimitError, UnknownLossError
from lossdsl.outputs import write_text
from lossdsl.parse import MAX_CHARS
from lossdsl.pipeline import validate_class_name

# The choices of `plot --kind` and `docs --images` (lossdsl.plot.KINDS and
# lossdsl.docs.IMAGE_FORMATS: those modules import matplotlib, so they load only when used).
KINDS = ("regression", "positive", "probability", "logits")
IMAGE_FORMATS = ("svg", "png")
PLOT_FORMATS = (".png", ".svg")

EXAMPLES = {
    "check": "lossdsl check -e 'abs(e)*0.5*(1+abs(e))'\n  lossdsl check huber.loss\n  lossdsl check *.loss\n"
    "  cat huber.loss | lossdsl check -",
    "compile": "lossdsl compile huber.loss --name Huber -o huber_loss.py",
    "latex": "lossdsl latex -e 'mean(e^2)' --inline\n  lossdsl latex huber.loss --gradient",
    "plot": "lossdsl plot huber.loss -o huber.png\n  lossdsl plot mse.loss huber.loss -o compare.svg\n"
    "  lossdsl plot -e 'softplus(y_pred) - y_true * y_pred' --kind logits -o bce.png",
    "docs": "lossdsl docs huber.loss mse.loss -o losses.md\n  lossdsl docs huber.loss -o huber.md --images png",
    "demo": "lossdsl demo",
    "library": "lossdsl library\n  lossdsl library huber > huber.loss",
}
# `demo --epochs`: the demo compares the first epoch's loss with the last, so at least two.
MIN_EPOCHS, MAX_EPOCHS = 2, 10_000


class _UsageError(Exception):
    """A command-line usage problem: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with usage, never a traceback
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


class _Once(argparse.Action):
    """An option that takes one value: given twice, a usage error (argparse keeps the last one
    silently: `-o a.py -o b.py` wrote b.py alone, `--name A --name B` named the class B; fuzzing)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, "_given_once", set())
        if self.dest in given:
            parser.error(f"{option_string} given twice: give it once")
        namespace._given_once = given | {self.dest}
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="lossdsl",
        description="lossdsl: write a loss as math; get checks, Keras code and LaTeX.",
        epilog="example:\n  lossdsl demo\n  lossdsl check -e 'abs(e)*0.5*(1+abs(e))'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lossdsl {lossdsl.__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subs.required = True

    def sub(name: str, help_text: str, program_input: bool = True) -> argparse.ArgumentParser:
        p = subs.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if program_input:
            p.add_argument("file", nargs="?", metavar="FILE", help="a .loss file, or - for standard input")
            p.add_argument("-e", dest="program", action="append", metavar="PROGRAM", help="the program text itself")
        return p

    p = sub("check", "check programs and print their diagnostics", program_input=False)
    p.add_argument("files", nargs="*", metavar="FILE", help=".loss files, each checked in turn (- for standard input)")
    p.add_argument(
        "-e", dest="programs", action="append", default=[], metavar="PROGRAM", help="a program text (repeatable)"
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")

    p = sub("compile", "write the Keras loss module for a program")
    p.add_argument("--name", action=_Once, default=None, help="the class name (default: FormulaLoss)")
    p.add_argument("-o", dest="output", action=_Once, metavar="OUT.py", help="write here instead of standard output")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument(
        "--xla",
        action="store_true",
        help="spell the code for XLA (softplus/sigmoid, log_softmax/softmax written out to share one exp; log1p)",
    )

    p = sub("latex", "print the LaTeX of a program")
    p.add_argument("--gradient", action="store_true", help="the gradient with respect to y_pred")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--inline", action="store_true", help="one line, bindings substituted")
    form.add_argument("--display", action="store_true", help="bindings as lines of an aligned block")

    p = sub("plot", "plot losses and their gradients", program_input=False)
    p.add_argument("files", nargs="*", metavar="FILE", help=".loss files (- for standard input)")
    p.add_argument("-e", dest="programs", action="append", default=[], metavar="PROGRAM", help="a program text")
    p.add_argument("-o", dest="output", action=_Once, required=True, metavar="OUT.(png|svg)", help="the image to write")
    p.add_argument(
        "--kind",
        action=_Once,
        choices=KINDS,
        default=None,
        help="the x axis: regression (against e), positive (against y_pred > 0), probability "
        "(y_pred in (0, 1)) or logits; default: read from the program",
    )

    p = sub("docs", "write a Markdown page for .loss files", program_input=False)
    p.add_argument("files", nargs="*", metavar="FILE", help=".loss files (the file names name the losses)")
    # A page names each loss after its file: -e is answered with that (a user test tried it).
    p.add_argument("-e", dest="programs", action="append", default=[], help=argparse.SUPPRESS)
    p.usage = f"%(prog)s [-h] -o OUT.md [--images {{{','.join(IMAGE_FORMATS)}}}] FILE [FILE ...]"
    p.add_argument("-o", dest="output", action=_Once, required=True, metavar="OUT.md", help="the page to write")
    p.add_argument(
        "--images",
        action=_Once,
        choices=IMAGE_FORMATS,
        default="svg",
        help="format of the plots written to OUT_files/ beside the page (default svg)",
    )

    p = sub("library", "list the bundled losses, or print one's program (a file to start from)", False)
    p.add_argument("name", nargs="?", metavar="NAME", help="a bundled loss (default: list their names)")

    p = sub("demo", "compile the seed formula, train a small model with it, show what happened", False)
    p.add_argument(
        "--epochs",
        action=_Once,
        type=_epochs,
        default=30,
        help=f"training epochs, {MIN_EPOCHS} to {MAX_EPOCHS:,} (default 30)",
    )
    return parser


def _epochs(text: str) -> int:
    """`demo --epochs`: a whole number from MIN_EPOCHS to MAX_EPOCHS (argparse reports the error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of epochs, not {text!r}") from None
    if not MIN_EPOCHS <= value <= MAX_EPOCHS:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: give {MIN_EPOCHS} to {MAX_EPOCHS:,} epochs"
            " (the demo compares the first epoch's loss with the last)"
        )
    return value


class _ClosedOutput(io.TextIOBase):
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
        raise _ClosedOutputError(f"cannot write to standard {self.name}: it is closed")


# What a message does not carry raw: control characters (a file named `a<ESC>[2J.loss` cleared
# the terminal when `check` named it, and one with a carriage return overwrote its own line) and
# the bidirectional overrides, which reorder what follows them. Tab and newline stay.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """`text` with what a terminal would act on escaped as Python escapes it (`\\x1b`, `\\u202e`):
    a message's file names, options and arguments are the user's."""
    return _UNSHOWABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class _Unfailing:
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
        _discard_output(self._stream)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Output:
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
    """A write to standard output, its failure said as `_Output` says it (a closed pipe, or a
    failure said already, passed on as it is)."""
    try:
        yield
    except (BrokenPipeError, _OutputError):
        raise
    except OSError as err:
        raise _ClosedOutputError(f"cannot write to standard output: {err.strerror or err}") from err


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if sys.stdout is None:
        sys.stdout = _ClosedOutput("output")
    if sys.stderr is None:  # print(file=None) would write to standard output
        sys.stderr = io.StringIO()
    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    stderr, sys.stderr = sys.stderr, _Unfailing(sys.stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args, extra = parser.parse_known_args(_join_programs(argv, _options(parser, argv)))
        if extra:  # the subcommand's usage, not the top level's (`latex -o`)
            _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
        _restore_dashes(parser, args)
    except SystemExit as exit_:
        try:  # `--help` to a full disk: lost, as argparse loses a write that fails at once
            sys.stdout.flush()
        except (OSError, _OutputError):
            _discard_output()
        return int(exit_.code or 0)
    try:
        code = COMMANDS[args.command](args)
        # What is still buffered (all of it, where standard output is a file) is written while a
        # failure can be said as the command's; failed, it stays buffered, and is thrown away.
        sys.stdout.flush()
        return code
    except _UsageError as err:
        print(f"lossdsl {args.command}: {err}", file=sys.stderr)
        return 2
    except LossError as err:
        print(str(err), file=sys.stderr)
        return 1
    except _Rejected as err:
        print(str(err), file=sys.stderr)
        return 1
    except (_OutputError, _KerasUnavailable) as err:
        print(f"lossdsl {args.command}: {err}", file=sys.stderr)
        if isinstance(err, _ClosedOutputError):
            _discard_output()
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        print(f"lossdsl {args.command}: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _write_utf8(text: str) -> None:
    """A file's text (a Python module, a program) to standard output in UTF-8, the encoding of
    the file it stands for, whatever the locale's: under `LC_ALL=C` a program's non-ASCII
    description could not be encoded, and `lossdsl compile x.loss > x.py` failed."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:  # the whole text failed to encode: nothing of it was written
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            raise
        sys.stdout.flush()
        with _writing_output():  # (the buffer is the stream's own, under `_Output`)
            buffer.write(text.encode("utf-8"))


def _say(line: str) -> None:
    """A status line on standard output (`wrote é.py`), what its encoding cannot hold escaped, as
    Python escapes standard error's: under PYTHONIOENCODING=ascii a file's name past ASCII made a
    command that had written its file report a failure, and `check` stop at that file (a review).
    Control characters are `shown` escaped, as on standard error."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    line = shown(line)
    try:
        line = line.encode(encoding, "backslashreplace").decode(encoding)
    except (LookupError, UnicodeError):  # a codec Python does not know, or one that cannot escape
        line = line.encode("ascii", "backslashreplace").decode("ascii")
    print(line)


def _closed_pipe() -> int:
    """Standard output was closed by its reader (`lossdsl library | head -1`): stop quietly, with
    the status of a process that SIGPIPE ended, as `cat` and `ls` do; what is still buffered goes
    to /dev/null, so that Python's flush at exit prints no error either."""
    _discard_output()
    return 128 + 13  # SIGPIPE


def _discard_output(stream=None) -> None:
    """What `stream` (standard output by default) still buffers goes to /dev/null: its reader has
    gone, or its disk is full."""
    try:
        descriptor = (stream or sys.stdout).fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor: a stream in memory (a test's capture)
        pass


def _restore_dashes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The value `--` of an option (the program of `-e --`, joined to `-e=--`; `-o=--`): argparse
    takes it for its separator and leaves an empty list in its place, unchecked (an AttributeError
    or a TypeError later, "failed:"; two reviews). It is put back, through the option's own type
    and choices. Only FILEs and the programs of `-e` are lists."""
    sub = _subparser(parser, args.command)
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if action.dest in ("program", "programs"):
            if value:
                setattr(args, action.dest, ["--" if item == [] else item for item in value])
            continue
        if action.dest == "files" or value != []:
            continue
        name = "/".join(action.option_strings)
        try:
            value = action.type("--") if callable(action.type) else "--"
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            sub.error(f"argument {name}: {err}")
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(repr(choice) for choice in action.choices)
            sub.error(f"argument {name}: invalid choice: '--' (choose from {choices})")
        setattr(args, action.dest, value)


def _join_programs(argv: list[str], options: set[str]) -> list[str]:
    """`-e PROGRAM` as `-e=PROGRAM` where the program starts with `-` (`-e '-y_true*log(y_pred)'`,
    `-e '--y_pred'`) and is not one of `options`.

    argparse would read such a program as an option and stop with a usage error.
    """
    joined, i = [], 0
    while i < len(argv):
        arg = argv[i]
        # `-e -e`: the program `-e` (minus the error), which argparse would take for a second -e
        if arg == "-e" and i + 1 < len(argv) and (argv[i + 1] == "-e" or _looks_like_program(argv[i + 1], options)):
            joined.append("-e=" + argv[i + 1])
            i += 2
            continue
        joined.append(arg)
        i += 1
    return joined


def _looks_like_program(arg: str, options: set[str]) -> bool:
    """A leading `-` followed by something other than an option of this parser (`-o`, `--strict`)."""
    return arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in options


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of the subcommand `command`."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The option strings of `parser` and of the subcommand `argv` names (`check`: `-e`, `--strict`)."""
    found: set[str] = set()
    for action in parser._actions:  # argparse keeps its actions here; there is no public list
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            command = next((arg for arg in argv if arg in action.choices), None)
            if command is not None:
                found.update(o for a in action.choices[command]._actions for o in a.option_strings)
    return found


def read_program(args) -> tuple[str, str]:
    """(source, label) from -e, a file or standard input."""
    if getattr(args, "program", None) is not None:
        if args.file is not None:
            raise _UsageError("give either FILE or -e PROGRAM, not both")
        if len(args.program) > 1:  # the last one alone was compiled, silently (a spec audit)
            raise _UsageError(f"give one -e PROGRAM, not {len(args.program)}: `{args.command}` takes one program")
        return _argument(args.program[0]), "<-e>"
    if args.file is None:
        raise _UsageError("give a FILE, - for standard input, or -e PROGRAM")
    return read_file(args.file)


# The most bytes a program within the size limit can take: four per character in UTF-8 and a BOM.
# A FILE or standard input is read no further (`lossdsl check /dev/zero` read until memory ran out).
MAX_BYTES = 4 * MAX_CHARS + 3


def _decoded(data: bytes, label: str) -> str:
    """`data` (at most MAX_BYTES + 1 bytes read) as UTF-8 text, or LossLimitError where it is longer
    than any program within the limit."""
    if len(data) > MAX_BYTES:
        raise LossLimitError(f"{label} holds more than {MAX_BYTES:,} bytes; the limit is {MAX_CHARS:,} characters")
    return data.decode("utf-8-sig")


def _argument(program: str) -> str:
    """An -e PROGRAM as read; bytes that are not UTF-8 (which Python escapes in arguments) are a
    usage error, as in a FILE."""
    if any("\udc80" <= ch <= "\udcff" for ch in program):
        # Under a locale that is not UTF-8 (LANG=C without Python's UTF-8 mode) Python escapes every
        # byte past ASCII, UTF-8 too (`-e "abs(é)"` was "not UTF-8 text"; fuzzing): the bytes given.
        try:
            program = os.fsencode(program).decode("utf-8")
        except (UnicodeError, ValueError):
            raise _UsageError("-e PROGRAM is not UTF-8 text") from None
    return as_read(program)


def read_file(name: str, formula_hint: bool = True) -> tuple[str, str]:
    """(text, label) of a file, or of standard input for -; both read as `as_read` says.
    `formula_hint`: a missing FILE that reads as a formula says where one goes (not for `docs`,
    whose sections are named after files)."""
    if name == "-":
        return as_read(_standard_input()), _label(name)
    try:  # the name as given: Path drops a trailing slash, and `good.loss/` read the file (a review)
        with open(name, "rb") as stream:
            return as_read(_decoded(stream.read(MAX_BYTES + 1), name)), _label(name)
    except FileNotFoundError:
        raise _UsageError(f"no such file: {name}{_formula_hint(name) if formula_hint else ''}") from None
    except IsADirectoryError:
        raise _UsageError(f"{name} is a directory, not a .loss file") from None
    except UnicodeDecodeError:
        raise _UsageError(f"{name} is not UTF-8 text") from None
    except OSError as err:
        raise _UsageError(f"cannot read {name}: {err.strerror}") from None


def _label(name: str) -> str:
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
        raise _UsageError("standard input is closed")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # replaced by a text stream (a test, an embedding application)
        text = sys.stdin.read(MAX_CHARS + 2)
        if len(text) > MAX_CHARS + 1:  # a BOM, then more than the limit
            raise LossLimitError(f"standard input holds more than {MAX_CHARS:,} characters, the limit")
        return text
    try:
        return _decoded(_read_to_end(stream, MAX_BYTES + 1), "standard input")
    except UnicodeDecodeError:
        raise _UsageError("standard input is not UTF-8 text") from None


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


# ---------------------------------------------------------------- outputs


def check_output(output: str | os.PathLike, inputs: list[str], *, others: tuple = ()) -> Path:
    """The path to write, once it is known to be writable without harm.

    `_UsageError` (exit 2) if it is one of the input files (a FILE, not `-`),
    counting links to it: writing would destroy the program. `_OutputError`
    (exit 1) if its folder does not exist or is not a folder: lossdsl creates
    no folders it was not asked for. `others` are further files the command
    would write (the plots of `docs`), checked against the inputs alike.
    """
    path = Path(output)
    for target, shown in ((path, os.fspath(output)), *((other, str(other)) for other in others)):
        for name in inputs:
            if name != "-" and _same_file(target, Path(name)):
                raise _UsageError(f"refusing to write {shown}: it is the input file {name}; choose another -o")
    text = os.fspath(output)
    # `-o out/` names a folder, whose slash Path drops: it wrote a file `out` (a new-user trial)
    named_folder = text.endswith(tuple(filter(None, (os.sep, os.altsep))))
    hint = "; give -o a file name" if named_folder else ""
    folder = path if named_folder else path.parent
    try:
        if not folder.is_dir():
            what = f"{folder} is not a folder" if folder.exists() else f"the folder {folder} does not exist"
            raise _OutputError(f"cannot write {text}: {what}{hint}")
        if path.is_dir():
            raise _OutputError(f"cannot write {text}: it is a folder{hint}")
    except OSError as err:  # a name over the system's limit: `is_dir` passes ENAMETOOLONG on (a review)
        raise _OutputError(f"cannot write {text}: {err.strerror or err}") from None
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` are one file (through links too); False where either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _OutputError(Exception):
    """An output that cannot be written (its folder is missing, say): exit 1."""


class _ClosedOutputError(_OutputError, OSError):
    """A write to a closed standard output: an OSError too, which argparse's `--help` and
    `--version` pass over as they do a failed write (a traceback otherwise; a review)."""


def _print_diagnostics(diagnostics, source: str, label: str) -> None:
    for d in diagnostics:
        # `FILE:line:column: level: ...`, as compilers print it; `FILE: level: ...` without a place
        print(f"{label}:{'' if d.line is not None else ' '}{d.format(source)}", file=sys.stderr)


def _inline_labels(programs: list[str]) -> list[str]:
    """How diagnostics name programs given with -e: `<-e>`, or `<-e 1>`, `<-e 2>`, ... for several
    (each was `<-e>`; a review)."""
    return ["<-e>"] if len(programs) == 1 else [f"<-e {i}>" for i in range(1, len(programs) + 1)]


def cmd_check(args) -> int:
    """Each FILE (or each -e PROGRAM) checked in turn: its diagnostics, then `ok` or `rejected`. A
    FILE that cannot be read is said so where it comes, and the others are checked all the same
    (as linters go on past a missing file). Exit 2 if one could not be read, else 1 if any was
    rejected, else 0."""
    if args.programs:
        if args.files:
            raise _UsageError("give either FILE or -e PROGRAM, not both")
        sources = [
            (label, lambda program=program: _argument(program))
            for label, program in zip(_inline_labels(args.programs), args.programs, strict=True)
        ]
    elif not args.files:
        raise _UsageError("give a FILE, - for standard input, or -e PROGRAM")
    else:
        _stdin_once(args.files)
        sources = [(_label(name), lambda name=name: read_file(name)[0]) for name in args.files]
    rejected = unreadable = 0
    for label, read in sources:  # (label, the program's text read when its turn comes)
        try:
            source = read()
        except _UsageError as err:
            if len(sources) == 1:  # one program: a usage error as for every other command
                raise
            print(f"lossdsl check: {err}", file=sys.stderr)
            unreadable += 1
            continue
        except LossLimitError as err:  # more than any program within the limit: rejected, and the next one read
            source, diagnostics = "", [err.as_diagnostic()]
        else:
            diagnostics = lossdsl.check(source, strict=args.strict)
        _print_diagnostics(diagnostics, source, label)
        errors = sum(d.level == "error" for d in diagnostics)
        warnings = sum(d.level == "warning" for d in diagnostics)
        if errors:
            print(f"{label}: rejected ({errors} error{'s' if errors != 1 else ''})", file=sys.stderr)
            rejected += 1
        else:
            _say(f"{label}: ok ({warnings} warning{'s' if warnings != 1 else ''})")
    return 2 if unreadable else (1 if rejected else 0)


def cmd_compile(args) -> int:
    source, label = read_program(args)
    if args.output == "":
        raise _UsageError("-o takes a file name (without -o, the code goes to standard output)")
    if args.name is not None:  # an option's value, not the program: a usage error
        try:
            validate_class_name(args.name)
        except LossError as err:
            raise _UsageError(f"--name: {err.message}") from None
    # `-o -` is standard output, as FILE `-` is standard input
    to_file = args.output not in (None, "-")
    output = check_output(args.output, [args.file] if args.file else []) if to_file else None
    spec = _compiled(source, label, name=args.name, strict=args.strict)
    code = spec.python_source(xla=args.xla)
    if output is not None:
        try:
            write_text(output, code)
        except OSError as err:
            raise _OutputError(f"cannot write {args.output}: {err.strerror or err}") from None
        _say(f"wrote {args.output} (class {spec.name})")
    else:
        _write_utf8(code)
    return 0


def cmd_latex(args) -> int:
    source, label = read_program(args)
    spec = _compiled(source, label)
    display = True if args.display else (False if args.inline else None)
    try:  # within the limits of the program, its LaTeX may still be over KaTeX's
        tex = spec.latex(gradient=args.gradient, display=display)
    except LossError as err:
        _reject(err, source, label)
    print(tex)
    return 0


def _compile_all(sources: list[tuple[str, str]]) -> list:
    """Compile each (text, label); a rejected program prints its diagnostics, as `check` does, and stops."""
    return [_compiled(text, label) for text, label in sources]


def _compiled(text: str, label: str, **options):
    """`lossdsl.compile(text, **options)`; when rejected, its diagnostics printed as `check` prints
    them (each after the label: FILE, <stdin> or <-e>), then _Rejected; when accepted, its warnings."""
    try:
        spec = lossdsl.compile(text, **options)
    except LossError as err:
        _reject(err, text, label)
    # Accepted: its warnings (not its notes) printed as `check` prints them, and the command goes on.
    _print_diagnostics([d for d in spec.diagnostics if d.level == "warning"], text, label)
    return spec


def _reject(err: LossError, text: str, label: str):
    """Print `err`'s diagnostics after `label`, as `check` does, and raise _Rejected."""
    diagnostics = list(err.diagnostics) or [err.as_diagnostic()]
    _print_diagnostics(diagnostics, text, label)
    errors = sum(d.level == "error" for d in diagnostics)
    raise _Rejected(f"{label}: rejected ({errors} error{'s' if errors != 1 else ''})") from None


class _Rejected(Exception):
    """A rejected program among several, its diagnostics printed already: exit 1."""


class _KerasUnavailable(Exception):
    """Keras or its backend cannot start (`KERAS_BACKEND=bogus`, a backend not installed): the
    environment's error, said as the command's own: exit 1."""


def _stdin_once(files: list[str]) -> None:
    if files.count("-") > 1:  # the second read found nothing: "unexpected end of the program"
        raise _UsageError("standard input can be read once: give - at most once")


def cmd_plot(args) -> int:
    _stdin_once(args.files)
    if Path(args.output).suffix.lower() not in PLOT_FORMATS:
        raise _UsageError(f"cannot write a plot as {args.output}: give -o a file name ending in .png or .svg")
    # (FILEs and -e PROGRAMs together: one figure compares them, a file's loss and a variant of it
    # written inline; `check` keeps to INTERFACE.md's `(FILE | -e PROGRAM)`)
    sources = [read_file(f) for f in args.files] + [
        (_argument(p), label) for label, p in zip(_inline_labels(args.programs), args.programs, strict=True)
    ]
    if not sources:
        raise _UsageError("give at least one FILE or -e PROGRAM")
    output = check_output(args.output, args.files)
    specs = _compile_all(sources)
    _start_keras_quietly()  # seconds: once the arguments, the output and the programs are known good
    from lossdsl.plot import KindRefused, MixedKinds, NeedsTensorFlow, plot_losses

    try:
        plot_losses(specs, output, labels=[label for _, label in sources], kind=args.kind)
    except LossError:
        raise
    except MixedKinds as err:  # a choice the command line asks for: a usage error
        raise _UsageError(f"these losses need different x axes: {err.listed}; choose one with --kind") from None
    except KindRefused as err:
        if args.kind is None:  # the kind inferred: the program has no plot as it stands
            print(f"lossdsl plot: {err}", file=sys.stderr)
            return 1
        raise _UsageError(f"{err} (--kind {args.kind} was given)") from None
    except (ValueError, NeedsTensorFlow) as err:
        print(f"lossdsl plot: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        raise _OutputError(f"cannot write {args.output}: {err.strerror or err}") from None
    _say(f"wrote {args.output}")
    return 0


def cmd_docs(args) -> int:
    if args.programs:
        raise _UsageError("a page names each loss after its file: save the program as NAME.loss and give the file")
    if not args.files:
        raise _UsageError("give the .loss FILEs to document (lossdsl docs huber.loss -o page.md)")
    _stdin_once(args.files)
    sources = [read_file(f, formula_hint=False) for f in args.files]
    from lossdsl.docs import image_paths, named_sources, write_docs
    from lossdsl.plot import NeedsTensorFlow

    try:
        named_sources(sources)
    except ValueError as err:  # two FILEs that would be one section: the arguments', exit 2 (a review)
        raise _UsageError(str(err)) from None
    images = image_paths([label for _, label in sources], args.output, args.images)
    output = check_output(args.output, args.files, others=tuple(images))
    if output.suffix.lower() not in (".md", ".markdown"):
        raise _UsageError(f"the page is Markdown: give -o a file name ending in .md, not {args.output}")
    folder = images[0].parent
    if folder.exists() and not folder.is_dir():  # (it said "cannot write d_files: File exists"; a review)
        raise _OutputError(f"cannot write the plots into {folder}: it is a file, not a folder")
    for spec, (text, label) in zip(_compile_all(sources), sources, strict=True):
        try:  # the page holds each gradient's LaTeX (as written here: built once)
            spec.latex(gradient=True, display=True)
        except LossLimitError:  # over the size limit: the page says so in its place
            pass
        except LossError as err:
            _reject(err, text, label)
    _start_keras_quietly()
    try:
        written = write_docs(sources, output, image_format=args.images)
    except LossError:
        raise
    except (ValueError, NeedsTensorFlow) as err:
        print(f"lossdsl docs: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        # the page, or the folder of its images or one of them: the path the system named (the
        # target, where a finished temporary file was moved onto it)
        named = [f for f in (err.filename2, err.filename) if isinstance(f, str)]
        where = named[0] if named else args.output
        raise _OutputError(f"cannot write {where}: {err.strerror or err}") from None
    _say(f"wrote {args.output} and {len(written) - 1} image(s)")
    return 0


def cmd_library(args) -> int:
    if args.name is None:
        print("\n".join(library.names()))
        return 0
    try:
        text = library.source(args.name)
    except UnknownLossError as err:
        raise _UsageError(f"{err.message} (`lossdsl library` lists them)") from None
    _write_utf8(text)
    return 0


def cmd_demo(args) -> int:
    _start_keras_quietly()
    from lossdsl.demo import run_demo

    return run_demo(epochs=args.epochs)


COMMANDS = {
    "check": cmd_check,
    "compile": cmd_compile,
    "latex": cmd_latex,
    "plot": cmd_plot,
    "docs": cmd_docs,
    "demo": cmd_demo,
    "library": cmd_library,
}


def _start_keras_quietly() -> None:
    """Import Keras and start its backend with the process's native standard error closed.

    TensorFlow's C++ side prints its start-up lines (oneDNN, CUDA drivers, `cuInit` on a
    machine without a GPU) before its logging reads TF_CPP_MIN_LOG_LEVEL, which TensorFlow
    2.21 does not honour for them: seven lines of noise before `lossdsl demo` says anything.
    Python's own errors still reach standard error (sys.stderr is flushed, and file
    descriptor 2 restored, before any exception leaves this function).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        try:
            import keras

            keras.ops.convert_to_tensor(0.0)  # the first operation starts the backend's devices
        except Exception as err:  # noqa: BLE001 - the environment's, whatever it is: said, not a traceback
            backend = os.environ.get("KERAS_BACKEND")
            setting = f" (KERAS_BACKEND={backend})" if backend else ""
            raise _KerasUnavailable(f"cannot start Keras{setting}: {type(err).__name__}: {err}") from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def entry() -> None:
    """Console-script entry point."""
    code = main()
    try:
        sys.stdout.flush()  # what is still buffered: its reader may have gone too
    except BrokenPipeError:
        code = _closed_pipe()
    except OSError as err:  # a full disk, found only now (`main()` flushes): what was buffered is lost
        _Unfailing(sys.stderr).write(f"lossdsl: cannot write to standard output: {err.strerror or err}\n")
        _discard_output()
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
