"""The `lossdsl` command line: `main(argv) -> exit code`.

Exit codes: 0 success; 1 the program was rejected (diagnostics with carets
on stderr) or a command failed (an output that cannot be written: its folder
missing, say); 2 a usage error, an unreadable input file, or an output that
would overwrite an input. Nothing prints a Python traceback, and a command
that fails leaves no partial output behind.

The commands are here; beside them, `arguments.py` parses the command line,
`inputs.py` reads each program (a FILE, standard input or `-e`, all three
alike), `outputs.py` writes files whole or not at all, and `streams.py` says
a failed write to standard output or error in one line.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

import lossdsl
from lossdsl import library
from lossdsl.arguments import (
    UsageError,
    build_parser,
    join_programs,
    program_options,
    restore_dashes,
    subparser,
)
from lossdsl.errors import LossError, LossLimitError, UnknownLossError
from lossdsl.inputs import (
    file_label,
    inline_labels,
    read_argument,
    read_file,
    read_program,
    stdin_once,
)
from lossdsl.outputs import write_text
from lossdsl.pipeline import validate_class_name
from lossdsl.streams import (
    ClosedOutput,
    ClosedOutputError,
    Output,
    OutputError,
    Unfailing,
    closed_pipe,
    discard_output,
    say,
    write_utf8,
)

PLOT_FORMATS = (".png", ".svg")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if sys.stdout is None:
        sys.stdout = ClosedOutput("output")
    if sys.stderr is None:  # print(file=None) would write to standard output
        sys.stderr = io.StringIO()
    stdout, sys.stdout = sys.stdout, Output(sys.stdout)
    stderr, sys.stderr = sys.stderr, Unfailing(sys.stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _unrecognized(extra: list[str]) -> str:
    """What argparse left over, said: the options alone where there are any (`latex -o f.tex
    huber.loss` took `f.tex` for FILE and left `-o huber.loss`, naming the real input as the
    option's value; a review)."""
    options = [item for item in extra if item.startswith("-") and item != "-"]
    if not options:
        return f"unrecognized arguments: {' '.join(extra)}"
    return f"unrecognized option{'s' * (len(options) > 1)}: {' '.join(options)}"


def _unknown_top_level_option(item: str) -> bool:
    """`item`, the first argument, is an option the top level does not take (it takes `-h`,
    `--help` and `--version`, or an abbreviation of them, as argparse does)."""
    if not item.startswith("-") or item in ("-", "--"):
        return False
    return not any(option.startswith(item) for option in ("-h", "--help", "--version"))


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if argv and _unknown_top_level_option(argv[0]):
            # (argparse said "the following arguments are required: COMMAND" of `lossdsl --bogus`,
            # naming no option; a review of bad input)
            parser.error(
                f"unrecognized option: {argv[0]} (a COMMAND comes first; `lossdsl COMMAND --help`"
                " lists its options)"
            )
        args, extra = parser.parse_known_args(
            join_programs(argv, program_options(parser, argv))
        )
        if extra:  # the subcommand's usage, not the top level's (`latex -o`)
            subparser(parser, args.command).error(_unrecognized(extra))
        restore_dashes(parser, args)
    except SystemExit as exit_:
        try:  # `--help` to a full disk: lost, as argparse loses a write that fails at once
            sys.stdout.flush()
        except (OSError, OutputError):
            discard_output()
        return int(exit_.code or 0)
    try:
        code = COMMANDS[args.command](args)
        # What is still buffered (all of it, where standard output is a file) is written while a
        # failure can be said as the command's; failed, it stays buffered, and is thrown away.
        sys.stdout.flush()
        return code
    except UsageError as err:
        print(f"lossdsl {args.command}: {err}", file=sys.stderr)
        return 2
    except LossError as err:
        print(str(err), file=sys.stderr)
        return 1
    except _Rejected as err:
        print(str(err), file=sys.stderr)
        return 1
    except (OutputError, _KerasUnavailable) as err:
        print(f"lossdsl {args.command}: {err}", file=sys.stderr)
        if isinstance(err, ClosedOutputError):
            discard_output()
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return closed_pipe()
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        print(
            f"lossdsl {args.command}: failed: {type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 1


# ---------------------------------------------------------------- outputs


def check_output(
    output: str | os.PathLike, inputs: list[str], *, others: tuple = ()
) -> Path:
    """The path to write, once it is known to be writable without harm.

    `UsageError` (exit 2) if it is one of the input files (a FILE, not `-`),
    counting links to it: writing would destroy the program. `OutputError`
    (exit 1) if its folder does not exist or is not a folder: lossdsl creates
    no folders it was not asked for. `others` are further files the command
    would write (the plots of `docs`), checked against the inputs alike.
    """
    path = Path(output)
    for target, shown in (
        (path, os.fspath(output)),
        *((other, str(other)) for other in others),
    ):
        for name in inputs:
            if name != "-" and _same_file(target, Path(name)):
                raise UsageError(
                    f"refusing to write {shown}: it is the input file {name}; choose another -o"
                )
    text = os.fspath(output)
    # `-o out/` names a folder, whose slash Path drops: it wrote a file `out` (a new-user trial)
    named_folder = text.endswith(tuple(filter(None, (os.sep, os.altsep))))
    hint = "; give -o a file name" if named_folder else ""
    folder = path if named_folder else path.parent
    try:
        if not folder.is_dir():
            what = (
                f"{folder} is not a folder"
                if folder.exists()
                else f"the folder {folder} does not exist"
            )
            raise OutputError(f"cannot write {text}: {what}{hint}")
        if path.is_dir():
            raise OutputError(f"cannot write {text}: it is a folder{hint}")
    except OSError as err:  # a name over the system's limit: `is_dir` passes ENAMETOOLONG on (a review)
        raise OutputError(f"cannot write {text}: {err.strerror or err}") from None
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` are one file (through links too); False where either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _print_diagnostics(diagnostics, source: str, label: str) -> None:
    for d in diagnostics:
        # `FILE:line:column: level: ...`, as compilers print it; `FILE: level: ...` without a place
        print(
            f"{label}:{'' if d.line is not None else ' '}{d.format(source)}",
            file=sys.stderr,
        )


def cmd_check(args) -> int:
    """Each FILE (or each -e PROGRAM) checked in turn: its diagnostics, then `ok` or `rejected`. A
    FILE that cannot be read is said so where it comes, and the others are checked all the same
    (as linters go on past a missing file). Exit 2 if one could not be read, else 1 if any was
    rejected, else 0."""
    if args.programs:
        if args.files:
            raise UsageError("give either FILE or -e PROGRAM, not both")
        sources = [
            (label, lambda program=program: read_argument(program))
            for label, program in zip(
                inline_labels(args.programs), args.programs, strict=True
            )
        ]
    elif not args.files:
        raise UsageError("give a FILE, - for standard input, or -e PROGRAM")
    else:
        stdin_once(args.files)
        sources = [
            (file_label(name), lambda name=name: read_file(name)[0])
            for name in args.files
        ]
    rejected = unreadable = 0
    for label, read in sources:  # (label, the program's text read when its turn comes)
        try:
            source = read()
        except UsageError as err:
            if (
                len(sources) == 1
            ):  # one program: a usage error as for every other command
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
            print(
                f"{label}: rejected ({errors} error{'s' if errors != 1 else ''})",
                file=sys.stderr,
            )
            rejected += 1
        else:
            say(f"{label}: ok ({warnings} warning{'s' if warnings != 1 else ''})")
    return 2 if unreadable else (1 if rejected else 0)


def cmd_compile(args) -> int:
    source, label = read_program(args)
    if args.output == "":
        raise UsageError(
            "-o takes a file name (without -o, the code goes to standard output)"
        )
    if args.name is not None:  # an option's value, not the program: a usage error
        try:
            validate_class_name(args.name)
        except LossError as err:
            raise UsageError(f"--name: {err.message}") from None
    # `-o -` is standard output, as FILE `-` is standard input
    to_file = args.output not in (None, "-")
    output = (
        check_output(args.output, [args.file] if args.file else []) if to_file else None
    )
    spec = _compiled(source, label, name=args.name, strict=args.strict)
    code = spec.python_source(fast=not args.autodiff, xla=args.xla)
    if output is not None:
        try:
            write_text(output, code)
        except OSError as err:
            raise OutputError(
                f"cannot write {args.output}: {err.strerror or err}"
            ) from None
        say(f"wrote {args.output} (class {spec.name})")
    else:
        write_utf8(code)
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
    _print_diagnostics(
        [d for d in spec.diagnostics if d.level == "warning"], text, label
    )
    return spec


def _reject(err: LossError, text: str, label: str):
    """Print `err`'s diagnostics after `label`, as `check` does, and raise _Rejected."""
    diagnostics = list(err.diagnostics) or [err.as_diagnostic()]
    _print_diagnostics(diagnostics, text, label)
    errors = sum(d.level == "error" for d in diagnostics)
    raise _Rejected(
        f"{label}: rejected ({errors} error{'s' if errors != 1 else ''})"
    ) from None


class _Rejected(Exception):
    """A rejected program among several, its diagnostics printed already: exit 1."""


class _KerasUnavailable(Exception):
    """Keras or its backend cannot start (`KERAS_BACKEND=bogus`, a backend not installed): the
    environment's error, said as the command's own: exit 1."""


def _no_extension(output: str, stem: str, extensions) -> str:
    """Where `output`'s name is only an extension (`-o .md`, a hidden file's name, whose suffix
    is none), a word on it, with a name to give: the message named `.md` as what it was not (a
    review)."""
    name = Path(output).name
    if not name.startswith(".") or Path(output).suffix:
        return ""
    extension = name.lower() if name.lower() in extensions else extensions[0]
    return f" (`{name}` names a hidden file, with no extension: say {stem}{extension})"


def cmd_plot(args) -> int:
    stdin_once(args.files)
    if Path(args.output).suffix.lower() not in PLOT_FORMATS:
        raise UsageError(
            f"cannot write a plot as {args.output}: give -o a file name ending in .png or .svg"
            + _no_extension(args.output, "loss", PLOT_FORMATS)
        )
    # (FILEs and -e PROGRAMs together: one figure compares them, a file's loss and a variant of it
    # written inline; `check` keeps to INTERFACE.md's `(FILE | -e PROGRAM)`)
    sources = [read_file(f) for f in args.files] + [
        (read_argument(p), label)
        for label, p in zip(inline_labels(args.programs), args.programs, strict=True)
    ]
    if not sources:
        raise UsageError("give at least one FILE or -e PROGRAM")
    output = check_output(args.output, args.files)
    specs = _compile_all(sources)
    _start_keras_quietly()  # seconds: once the arguments, the output and the programs are known good
    from lossdsl.plot import KindRefused, MixedKinds, NeedsAutodiff, plot_losses

    try:
        plot_losses(
            specs, output, labels=[label for _, label in sources], kind=args.kind
        )
    except LossError:
        raise
    except MixedKinds as err:  # a choice the command line asks for: a usage error
        raise UsageError(
            f"these losses need different x axes: {err.listed}; choose one with --kind"
        ) from None
    except KindRefused as err:
        if args.kind is None:  # the kind inferred: the program has no plot as it stands
            print(f"lossdsl plot: {err}", file=sys.stderr)
            return 1
        raise UsageError(f"{err} (--kind {args.kind} was given)") from None
    except (ValueError, NeedsAutodiff) as err:
        print(f"lossdsl plot: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        raise OutputError(
            f"cannot write {args.output}: {err.strerror or err}"
        ) from None
    say(f"wrote {args.output}")
    return 0


def cmd_docs(args) -> int:
    if args.programs:
        raise UsageError(
            "a page names each loss after its file: save the program as NAME.loss and give the file"
        )
    if not args.files:
        raise UsageError(
            "give the .loss FILEs to document (lossdsl docs huber.loss -o page.md)"
        )
    stdin_once(args.files)
    sources = [read_file(f, formula_hint=False) for f in args.files]
    from lossdsl.docs import image_paths, named_sources, write_docs
    from lossdsl.plot import NeedsAutodiff

    try:
        named_sources(sources)
    except (
        ValueError
    ) as err:  # two FILEs that would be one section: the arguments', exit 2 (a review)
        raise UsageError(str(err)) from None
    images = image_paths([label for _, label in sources], args.output, args.images)
    output = check_output(args.output, args.files, others=tuple(images))
    if output.suffix.lower() not in (".md", ".markdown"):
        raise UsageError(
            f"the page is Markdown: give -o a file name ending in .md, not {args.output}"
            + _no_extension(args.output, "losses", (".md",))
        )
    folder = images[0].parent
    if (
        folder.exists() and not folder.is_dir()
    ):  # (it said "cannot write d_files: File exists"; a review)
        raise OutputError(
            f"cannot write the plots into {folder}: it is a file, not a folder"
        )
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
    except (ValueError, NeedsAutodiff) as err:
        print(f"lossdsl docs: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        # the page, or the folder of its images or one of them: the path the system named (the
        # target, where a finished temporary file was moved onto it)
        named = [f for f in (err.filename2, err.filename) if isinstance(f, str)]
        where = named[0] if named else args.output
        raise OutputError(f"cannot write {where}: {err.strerror or err}") from None
    say(f"wrote {args.output} and {len(written) - 1} image(s)")
    return 0


def cmd_library(args) -> int:
    if args.name is None:
        print("\n".join(library.names()))
        return 0
    try:
        text = library.source(args.name)
    except UnknownLossError as err:
        raise UsageError(f"{err.message} (`lossdsl library` lists them)") from None
    write_utf8(text)
    return 0


def cmd_demo(args) -> int:
    # (`fit` reads NumPy arrays through tf.data where TensorFlow is installed, whatever the
    # backend: started here, quietly, its lines did not appear under JAX and PyTorch; a review)
    _start_keras_quietly(tensorflow_too=True)
    import keras

    if keras.backend.backend() not in ("tensorflow", "jax", "torch"):
        # (Keras's NumPy backend has no `fit`: the demo printed its sections, then "failed:
        # NotImplementedError" from the last-resort handler)
        print(
            "lossdsl demo: the demo trains a model, which needs the Keras backend tensorflow,"
            f" jax or torch (KERAS_BACKEND={keras.backend.backend()} is set)",
            file=sys.stderr,
        )
        return 1
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


def _start_keras_quietly(tensorflow_too: bool = False) -> None:
    """Import Keras and start its backend with the process's native standard error closed (and,
    with `tensorflow_too`, import TensorFlow where it is installed and is not the backend).

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

            keras.ops.convert_to_tensor(
                0.0
            )  # the first operation starts the backend's devices
            if tensorflow_too and importlib.util.find_spec("tensorflow") is not None:
                import tensorflow  # noqa: F401
        except Exception as err:  # noqa: BLE001 - the environment's, whatever it is: said, not a traceback
            backend = os.environ.get("KERAS_BACKEND")
            setting = f" (KERAS_BACKEND={backend})" if backend else ""
            raise _KerasUnavailable(
                f"cannot start Keras{setting}: {type(err).__name__}: {err}"
            ) from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def entry() -> None:
    """Console-script entry point."""
    code = main()
    try:
        sys.stdout.flush()  # what is still buffered: its reader may have gone too
    except BrokenPipeError:
        code = closed_pipe()
    except OSError as err:  # a full disk, found only now (`main()` flushes): what was buffered is lost
        Unfailing(sys.stderr).write(
            f"lossdsl: cannot write to standard output: {err.strerror or err}\n"
        )
        discard_output()
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
