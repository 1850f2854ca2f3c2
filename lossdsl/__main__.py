"""`python -m lossdsl` runs the command line."""

from lossdsl.cli import entry

entry()
