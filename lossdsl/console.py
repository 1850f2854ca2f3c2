"""The console script's entry point: imports the command line (`cli.entry`) and runs it.

A Ctrl-C while Python imports it (SymPy and Lark, the first second or so) ends the command
quietly with 130, as one during a command does; raised from the script's own import of `cli`,
it printed Python's traceback.
"""

from __future__ import annotations


def entry() -> None:
    """Console-script entry point."""
    try:
        from lossdsl.cli import entry as run
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    run()
