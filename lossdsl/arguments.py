"""The command line's arguments: the parser of every subcommand (`build_parser`), and what
argparse leaves to do (a program given as several words, a program that begins with a dash)."""

from __future__ import annotations

import argparse
import sys

import lossdsl

# The choices of `plot --kind` and `docs --images` (lossdsl.plot.KINDS and
# lossdsl.docs.IMAGE_FORMATS: those modules import matplotlib, so they load only when used).
KINDS = ("regression", "positive", "probability", "logits")
IMAGE_FORMATS = ("svg", "png")

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


class UsageError(Exception):
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
    parser.add_argument(
        "--version", action="version", version=f"lossdsl {lossdsl.__version__}"
    )
    subs = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    subs.required = True

    def sub(
        name: str, help_text: str, program_input: bool = True
    ) -> argparse.ArgumentParser:
        p = subs.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if program_input:
            p.add_argument(
                "file",
                nargs="?",
                metavar="FILE",
                help="a .loss file, or - for standard input",
            )
            p.add_argument(
                "-e",
                dest="program",
                action="append",
                metavar="PROGRAM",
                help="the program text itself",
            )
        return p

    p = sub("check", "check programs and print their diagnostics", program_input=False)
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help=".loss files, each checked in turn (- for standard input)",
    )
    p.add_argument(
        "-e",
        dest="programs",
        action="append",
        default=[],
        metavar="PROGRAM",
        help="a program text (repeatable)",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")

    p = sub("compile", "write the Keras loss module for a program")
    p.add_argument(
        "--name",
        action=_Once,
        default=None,
        help="the class name (default: FormulaLoss)",
    )
    p.add_argument(
        "-o",
        dest="output",
        action=_Once,
        metavar="OUT.py",
        help="write here instead of standard output",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    spelling = p.add_mutually_exclusive_group()
    spelling.add_argument(
        "--xla",
        action="store_true",
        help="spell the code for XLA (softplus/sigmoid, log_softmax/softmax written out to share one exp; log1p)",
    )
    spelling.add_argument(
        "--autodiff",
        action="store_true",
        help="leave the gradient to Keras's autodiff: call() computes the loss alone, without the fused"
        " backward pass (shorter to read, slower to train)",
    )

    p = sub("latex", "print the LaTeX of a program")
    p.add_argument(
        "--gradient", action="store_true", help="the gradient with respect to y_pred"
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument(
        "--inline", action="store_true", help="one line, bindings substituted"
    )
    form.add_argument(
        "--display", action="store_true", help="bindings as lines of an aligned block"
    )

    p = sub("plot", "plot losses and their gradients", program_input=False)
    p.add_argument(
        "files", nargs="*", metavar="FILE", help=".loss files (- for standard input)"
    )
    p.add_argument(
        "-e",
        dest="programs",
        action="append",
        default=[],
        metavar="PROGRAM",
        help="a program text",
    )
    p.add_argument(
        "-o",
        dest="output",
        action=_Once,
        required=True,
        metavar="OUT.(png|svg)",
        help="the image to write",
    )
    p.add_argument(
        "--kind",
        action=_Once,
        choices=KINDS,
        default=None,
        help="the x axis: regression (against e), positive (against y_pred > 0), probability "
        "(y_pred in (0, 1)) or logits; default: read from the program",
    )

    p = sub("docs", "write a Markdown page for .loss files", program_input=False)
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help=".loss files (the file names name the losses)",
    )
    # A page names each loss after its file: -e is answered with that (a user test tried it).
    p.add_argument(
        "-e", dest="programs", action="append", default=[], help=argparse.SUPPRESS
    )
    p.usage = f"%(prog)s [-h] -o OUT.md [--images {{{','.join(IMAGE_FORMATS)}}}] FILE [FILE ...]"
    p.add_argument(
        "-o",
        dest="output",
        action=_Once,
        required=True,
        metavar="OUT.md",
        help="the page to write",
    )
    p.add_argument(
        "--images",
        action=_Once,
        choices=IMAGE_FORMATS,
        default="svg",
        help="format of the plots written to OUT_files/ beside the page (default svg)",
    )

    p = sub(
        "library",
        "list the bundled losses, or print one's program (a file to start from)",
        False,
    )
    p.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a bundled loss (default: list their names)",
    )

    p = sub(
        "demo",
        "compile the seed formula, train a small model with it, show what happened",
        False,
    )
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
        raise argparse.ArgumentTypeError(
            f"expected a whole number of epochs, not {text!r}"
        ) from None
    if not MIN_EPOCHS <= value <= MAX_EPOCHS:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: give {MIN_EPOCHS} to {MAX_EPOCHS:,} epochs"
            " (the demo compares the first epoch's loss with the last)"
        )
    return value


def restore_dashes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The value `--` of an option (the program of `-e --`, joined to `-e=--`; `-o=--`): argparse
    takes it for its separator and leaves an empty list in its place, unchecked (an AttributeError
    or a TypeError later, "failed:"; two reviews). It is put back, through the option's own type
    and choices. Only FILEs and the programs of `-e` are lists."""
    sub = subparser(parser, args.command)
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if action.dest in ("program", "programs"):
            if value:
                setattr(
                    args, action.dest, ["--" if item == [] else item for item in value]
                )
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


def join_programs(argv: list[str], options: set[str]) -> list[str]:
    """`-e PROGRAM` as `-e=PROGRAM` where the program starts with `-` (`-e '-y_true*log(y_pred)'`,
    `-e '--y_pred'`) and is not one of `options`.

    argparse would read such a program as an option and stop with a usage error.
    """
    joined, i = [], 0
    while i < len(argv):
        arg = argv[i]
        # `-e -e`: the program `-e` (minus the error), which argparse would take for a second -e
        if (
            arg == "-e"
            and i + 1 < len(argv)
            and (argv[i + 1] == "-e" or _looks_like_program(argv[i + 1], options))
        ):
            joined.append("-e=" + argv[i + 1])
            i += 2
            continue
        joined.append(arg)
        i += 1
    return joined


def _looks_like_program(arg: str, options: set[str]) -> bool:
    """A leading `-` followed by something other than an option of this parser (`-o`, `--strict`)."""
    return arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in options


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of the subcommand `command`."""
    action = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    return action.choices[command]


def program_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The option strings of `parser` and of the subcommand `argv` names (`check`: `-e`, `--strict`)."""
    found: set[str] = set()
    for (
        action
    ) in parser._actions:  # argparse keeps its actions here; there is no public list
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            command = next((arg for arg in argv if arg in action.choices), None)
            if command is not None:
                found.update(
                    o
                    for a in action.choices[command]._actions
                    for o in a.option_strings
                )
    return found
